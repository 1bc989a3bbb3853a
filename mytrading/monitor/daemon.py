"""The monitor daemon: watches the stack through the bus and tells people about it.

It reads every heartbeat, order update, fill, position, funds report, risk and
reconciliation event (``view.py``); twice a second it runs the alert rules
(``rules.py``), queues what they call for (``alerting.py``, into ``store.py``), and a
sender thread delivers it to each channel (``sender.py``, ``channels.py``). An HTTP
thread serves Prometheus metrics, the dashboard and its event stream (``web.py``) from a
snapshot the loop makes each half second.

It trades nothing and nothing waits for it: no daemon requires it, and its channels and
HTTP run on their own threads, so a slow Telegram or a scraping Prometheus costs the
trading path nothing.
"""

from __future__ import annotations

import time
from datetime import date
from datetime import time as dt_time
from typing import Any

from mytrading.control.api import BeatsView, ControlApi
from mytrading.control.strategyfile import StrategyFile
from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.monitor import eodshadow
from mytrading.monitor.alerting import Alerter
from mytrading.monitor.channels import build_channels
from mytrading.monitor.config import AlertConfig
from mytrading.monitor.eod import DayMarks, EodReporter, build, summary
from mytrading.monitor.metrics import registry
from mytrading.monitor.rules import Finding, Watch
from mytrading.monitor.sender import Sender
from mytrading.monitor.shadowrun import ShadowRun
from mytrading.monitor.snapshot import snapshot
from mytrading.monitor.store import AlertStore
from mytrading.monitor.view import View
from mytrading.monitor.web import MonitorServer
from mytrading.process.base import Daemon
from mytrading.process.shell import ZmqHost
from mytrading.settings import Settings

ALERTS_SHOWN = 20


class MonitorDaemon(Daemon):
    """A daemon of the process's shell only (HTTP servers, a sender thread, the control
    API on the shell's own sockets): the simulation does not run it."""

    name = "monitor"
    sub_prefixes = ("exec.", "risk.event.", "recon.")

    def __init__(
        self,
        host: ZmqHost,
        settings: Settings,
        refdata: RefData,
        accounts: Accounts,
        alerts: AlertConfig,
    ) -> None:
        super().__init__(host, settings, refdata, accounts)
        self.shell = host
        self.cfg = alerts

    def setup(self) -> None:
        s = self.settings
        self.store = AlertStore(s.stores.alerts_db)
        channels, problems = build_channels(self.cfg, s)
        self.channel_problems: dict[str, str] = {}
        for p in problems:
            self.count_error("alert channel not usable", problem=p)
            name, _, why = p.partition(": ")
            self.channel_problems[name] = f"DISABLED: {why}"
        self.channel_names = [c.name for c in channels]
        self.view = View(tuple(d for d in DAEMONS if d != self.name))
        holidays = self.refdata.calendar.holidays
        years = frozenset(d.year for days in holidays.values() for d in days)
        self.watch = Watch(self.cfg, holiday_years=years)
        self.alerter = Alerter(self.cfg, self.store, self.channel_names)
        self.sender = Sender(self.store, channels)  # the store's connections are per thread
        self.sender.start()
        self.down_after_s = s.liveness.heartbeat_s * s.liveness.peer_missed_beats
        self._snap: dict[str, Any] = {}
        self._alerts_version: tuple[int, int, int] | None = None
        self._alerts: tuple[list[dict], int, list[list[Any]]] = ([], 0, [])
        self.registry, self.latency = registry(lambda: self._snap)
        names = s.http_names(s.monitor.host)
        self.api = ControlApi(
            BeatsView(
                self._beats,
                lambda: list(self.view.positions.values()),
                self.shell.ctx,
                self.shell.endpoints["pipe.commands"],
                max(5.0, self.down_after_s),
                self.shell.endpoints["rpc.router"],
            ),
            s.stores.control_db,
            lambda: s.enabled_strategies(),
            names,
            s.monitor.token.get_secret_value(),
            s.control.rate_per_min,
            StrategyFile(s),
            s.log_dir / "reports",
        )
        self.http = MonitorServer(
            s.monitor.host,
            s.monitor.port,
            lambda: self._snap,
            self.registry,
            names,
            s.monitor.token.get_secret_value(),
            s.http.shed_limits(),
            self.api,
        )
        self.http.start()
        if self.http.error:
            self.count_error("monitor HTTP not listening: metrics and dashboard off",
                             reason=self.http.error)  # fmt: skip
        else:
            self.log.info("monitor listening", url=f"http://{s.monitor.host}:{s.monitor.port}/")
        self.log.info("alert channels", channels=self.channel_names or "none configured")
        # the end-of-day report, once a trading day at its time (market time, IST)
        self.marks = DayMarks()
        eod = self.cfg.rule("eod_report")
        hh, mm = (int(x) for x in (eod.at or "15:40").split(":"))
        self.eod = EodReporter(s.log_dir / "reports", dt_time(hh, mm)) if eod.enabled else None
        self.eod_shadow = eod.shadow  # the day's shadow in the report (a child process)
        # the report made, waiting for its shadow: (report, its run)
        self._eod_pending: tuple[dict[str, Any], ShadowRun] | None = None
        self._recon_since = time.time()
        self.every(3600.0, self._retention, first_in=0)
        self.every(0.5, self._evaluate, first_in=0.5)
        self.every(0.5, self._refresh, first_in=0)

    # ----------------------------------------------------------------- inputs

    def _on_status(self, st: wire.Status) -> None:
        super()._on_status(st)
        self.view.on_status(st)

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        latency = self.view.on_message(msg)
        if latency is not None:
            self.latency.observe(latency)

    # ------------------------------------------------------------------ work

    def _retention(self) -> None:
        """Alerts older than ``MT_ALERTS_KEEP_DAYS`` go (their delivery records with them)."""
        try:
            gone = self.store.prune(time.time() - self.settings.retention.alerts_keep_days * 86400)
        except Exception as exc:  # the audit is kept as it is; alerts still go out
            self.log.warning("alert retention failed", error=repr(exc))
            return
        if gone:
            self.log.info("old alerts pruned", alerts=gone)

    def _evaluate(self) -> None:
        findings = self.watch.findings(self.view)
        findings += self._end_of_day()
        said = self.alerter.step(findings, time.time())
        for a in said:
            self.log.warning("alert", rule=a.rule, key=a.key, kind=a.kind, text=a.text)
        if said:
            self.sender.wake()

    def _end_of_day(self) -> list[Finding]:
        """The day's report, when it is due: its figures taken, then (``eod_shadow``) its
        shadow run in a child process without waiting for it; once that is over, the
        report is written with it and said on the channels, with the strategies whose
        live results part from their shadows' (``shadow_gap``)."""
        if self.eod is None:
            return []
        if self._eod_pending is not None:
            report, run = self._eod_pending
            outcome = run.step()
            if outcome is None:
                return []
            self._eod_pending = None
            if outcome.got is None:
                self.count_error("end-of-day shadow not made", day=report["day"],
                                 reason=outcome.why_not)  # fmt: skip
            report["shadow"] = eodshadow.section(outcome)
            return self._say_report(report)
        now = self.clock.now()
        calendar = self.refdata.calendar
        day = self.eod.due(self.marks, now, lambda d: calendar.has_session("NSE", d))
        if day is None or time.monotonic() - self._started_mono < 5:
            return []  # (just started: risk's figures first)
        report = build(day, self.view, self._recon_since)
        self._recon_since = time.time()
        if not self.eod_shadow:
            report["shadow"] = eodshadow.section(None)
            return self._say_report(report)
        self._eod_pending = (report, ShadowRun(day.day, self.eod.dir))
        self.log.info("end-of-day shadow started", day=report["day"])
        return []

    def _say_report(self, report: dict[str, Any]) -> list[Finding]:
        assert self.eod is not None
        try:
            page = self.eod.write(report)
        except OSError as exc:
            self.count_error("end-of-day report not written", reason=str(exc))
            self.eod.said = date.fromisoformat(report["day"])  # said on the channels still, once
            page = None
        self.log.info("end-of-day report", day=report["day"], page=str(page),
                      net=report["stack"]["net"])  # fmt: skip
        text = summary(report) + (f"\n{page}" if page else "")
        out = [Finding("eod_report", report["day"], text, event=True)]
        gap = self.cfg.rule("shadow_gap")
        if gap.enabled and report["shadow"].get("made"):
            upto = date.fromisoformat(report["day"])
            for g in eodshadow.gaps(self.eod.dir, upto, gap.window_days, gap.threshold):
                out.append(Finding("shadow_gap", g.strategy, g.text(), event=True))
        return out

    def _market_open(self) -> bool:
        now = self.clock.now()
        hours = self.refdata.calendar.hours("NSE", now.date())
        return hours is not None and hours[0] <= now.time() <= hours[1]

    def _refresh(self) -> None:
        self.view.sample_curve(market_open=self._market_open())
        self.marks.sample(self.view, self.clock.now())
        # the alerts file changes when something is said, sent or fails (or `alerts test`
        # adds a row): one query to know, the full read only then
        version = (self.store.last_id(), self.sender.sent, self.sender.failures)
        if version != self._alerts_version:
            self._alerts_version = version
            self._alerts = (
                self.store.log(ALERTS_SHOWN),
                self.store.pending(),
                [[r, k, n] for (r, k), n in sorted(self.store.counts().items())],
            )
        shown, pending, counts = self._alerts
        snap = snapshot(self.view, shown, pending, self.down_after_s)
        snap["alert_counts"] = counts
        self._snap = snap  # swapped whole: the HTTP thread reads one or the other

    # ----------------------------------------------------------------- status

    def detail(self) -> dict[str, Any]:
        return {
            "http": (
                f"listening {self.settings.monitor.host}:{self.settings.monitor.port}"
                if self.http.listening
                else f"DOWN: {self.http.error}"
            ),
            "http_connections": self.http.shed.detail(),  # open, and slow clients shed
            "channels": self.channel_names,
            # each channel: ok, retrying, or DISABLED with why (and those never enabled)
            "channel_state": {**self.channel_problems, **self.sender.states()},
            "alerts_active": len(self.alerter.active),
            "alerts_sent": self.sender.sent,
            "alert_failures": self.sender.failures,
            "alerts_pending": self._snap.get("alerts_pending", 0),
            "alerts_suppressed": dict(self.alerter.suppressed),
            "dashboard_clients": self.http.clients,
            "control_refused": dict(self.api.refused),  # the control API's refusals by cause
        }

    def _beats(self) -> dict[str, tuple[wire.Status, float]]:
        """Every daemon's latest heartbeat, this one's too (the control API's status)."""
        beats = {n: (b.status, b.at) for n, b in list(self.view.beats.items())}
        own = getattr(self, "last_beat", None)
        if own is not None:
            beats[self.name] = own
        return beats

    def teardown(self) -> None:
        if self._eod_pending is not None:  # the report is made again after a restart
            self._eod_pending[1].close()
        self.sender.stop()
        self.http.stop()
        self.api.close()
        self.store.close()
