"""The alert rules: what is wrong now (conditions) and what just happened (events), read
from the monitor's ``View``. Pure reading: ``alerting.py`` decides what is said when.

Conditions stay on while true and clear with a recovery message: a daemon DOWN, an order
in UNKNOWN state, a reconciliation mismatch (one in the last ``window_s``), feed coverage
under ``threshold``, a burst of risk rejections or webhook refusals (``threshold`` within
``window_s``), the day's loss at ``threshold`` of its limit (the stack's, and each
strategy's ``max_loss``), the kill switch on, a daemon's memory growing for an hour, the
router's journal damaged or unwritable (a full disk: orders refused), a file system the
stack writes to with less than ``threshold`` % free, an account's broker session expired,
the feed's lag over ``threshold`` seconds at p99, this host's clock off the broker's by
more than ``threshold`` seconds (NTP), late ticks left out of bars.
Events are said once each: a daemon restarted, the feed failed over to another account,
a risk trigger fired, and the morning check: once a day at ``at`` (08:45 IST), everything
that waits for a person (the kill switch, halted or quarantined strategies, orders in
UNKNOWN state, expired broker sessions, an unwritable journal, a disk running low, a
host clock more than a second off the broker's) with
the command that clears each, or that nothing does. A strategy halted by its schedule
(outside its hours) is neither news nor waiting; one inside its hours for ``threshold``
seconds that does not trade is a missed start.
"""

from __future__ import annotations

import collections
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mytrading.domain.refdata import IST
from mytrading.domain.trading_states import SCHEDULE, describe, effective, set_by
from mytrading.monitor.config import AlertConfig
from mytrading.monitor.view import View
from mytrading.process.status import clock_offset_s

_COVERAGE = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Finding:
    rule: str
    key: str  # the subject: a daemon, an order, a strategy; "*" for the whole stack
    text: str
    event: bool = False  # said once, never "recovered"


class Watch:
    def __init__(
        self,
        cfg: AlertConfig,
        started: float | None = None,
        holiday_years: frozenset[int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.started = time.monotonic() if started is None else started
        # the years config/holidays.toml lists (None: not known here, nothing said)
        self.holiday_years = holiday_years
        self._restarts_seen = 0.0  # monotonic time of the last restart reported
        self._risk_seen = 0.0  # wall time of the last risk event read
        self._failovers: int | None = None
        self._refusals: collections.deque[tuple[float, int]] = collections.deque()
        self._morning_said: date | None = None
        self._during: dict[str, float] = {}  # scheduled strategy -> since when in its hours

    def findings(
        self, view: View, now: float | None = None, wall: float | None = None
    ) -> list[Finding]:
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        out: list[Finding] = []
        for name, fn in (
            ("daemon_down", self._down),
            ("daemon_restart", self._restarts),
            ("unknown_order", self._unknown),
            ("recon_mismatch", self._recon),
            ("coverage_low", self._coverage),
            ("feed_failover", self._failover),
            ("risk_trigger", self._triggers),
            ("rejection_burst", self._rejections),
            ("daily_loss", self._daily_loss),
            ("kill_switch", self._kill_switch),
            ("webhook_refusals", self._refused),
            ("memory_growth", self._memory),
            ("journal_damage", self._journal),
            ("journal_unwritable", self._unwritable),
            ("disk_low", self._disk_low),
            ("session_expired", self._session),
            ("strategy_halted", self._halted),
            ("missed_start", self._missed_start),
            ("account_unreachable", self._away),
            ("feed_lag", self._feed_lag),
            ("clock_offset", self._clock_offset),
            ("late_ticks", self._late_ticks),
            ("recording_held", self._recording_held),
            ("morning_check", self._morning),
        ):
            if self.cfg.rule(name).enabled:
                out += fn(name, view, now, wall)
        return out

    # ------------------------------------------------------------ conditions

    def _down(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        limit = self.cfg.rule(rule).threshold or 3.0
        out = []
        for d in view.daemons:
            silent = view.silent_s(d, now)
            if silent is None:
                silent = now - self.started  # never heard since the monitor started
                if silent <= max(limit, 10.0):
                    continue
                out.append(Finding(rule, d, f"{d} is DOWN: never heard since the monitor started"))
            elif silent > limit:
                out.append(Finding(rule, d, f"{d} is DOWN: no heartbeat for {silent:.0f} s"))
        return out

    def _unknown(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        return [
            Finding(
                rule,
                oid,
                f"order {oid} ({u.strategy} {u.action} {u.quantity} {u.symbol}) is UNKNOWN: "
                f"the broker would not say its state ({u.reason or 'no reason'})",
            )
            for oid, u in view.unknown.items()
        ]

    def _recon(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        window = self.cfg.rule(rule).window_s
        latest: dict[str, str] = {}
        for t, ev in view.recon_events:
            if wall - t <= window:
                where = "" if ev.account == "main" else f"{ev.account}/"
                key = f"{where}{ev.exchange}:{ev.symbol}"
                latest[key] = f"{key}: ours {ev.ours}, broker {ev.broker}"
        return [Finding(rule, k, f"reconciliation mismatch {t}") for k, t in latest.items()]

    def _coverage(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        seen = view.beats.get("feed")
        if seen is None or seen.status.uptime_s < 10:
            return []
        m = _COVERAGE.match(str(seen.status.detail.get("coverage", "")))
        if not m or int(m.group(2)) == 0:
            return []
        fresh, total = int(m.group(1)), int(m.group(2))
        floor = self.cfg.rule(rule).threshold or 0.9
        if fresh / total >= floor:
            return []
        return [
            Finding(rule, "feed", f"feed coverage {fresh}/{total} symbols fresh, under {floor:.0%}")
        ]

    def _rejections(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        r = self.cfg.rule(rule)
        n = sum(1 for t, ev in view.risk_events if ev.kind == "rejected" and wall - t <= r.window_s)
        if n < (r.threshold or 10):
            return []
        return [Finding(rule, "*", f"{n} orders refused by risk in the last {r.window_s:.0f} s")]

    def _daily_loss(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        risk = view.detail("risk")
        share = self.cfg.rule(rule).threshold or 0.8
        pnl = risk.get("pnl", {})
        limits = risk.get("limits", {})
        out = []
        stack_limit = float(limits.get("stack", {}).get("daily_loss_limit", 0.0))
        net = sum(float(p.get("net", 0.0)) for p in pnl.values())
        if stack_limit > 0 and -net >= share * stack_limit:
            out.append(
                Finding(
                    rule,
                    "*",
                    f"the day's loss {-net:,.0f} is {-net / stack_limit:.0%} of the stack's "
                    f"daily limit {stack_limit:,.0f}",
                )
            )
        default = float(limits.get("defaults", {}).get("max_loss", 0.0))
        for name, p in pnl.items():
            cap = float(limits.get("strategies", {}).get(name, {}).get("max_loss", default))
            loss = -float(p.get("net", 0.0))
            if cap > 0 and loss >= share * cap:
                out.append(
                    Finding(
                        rule,
                        name,
                        f"{name}: the day's loss {loss:,.0f} is {loss / cap:.0%} of its "
                        f"max_loss {cap:,.0f}",
                    )
                )
        return out

    def _kill_switch(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """On, with who turned it and through what ("kill switch on by api:phone via
        api", as the command layer words it; risk's own reason for a limit)."""
        risk = view.detail("risk")
        if not risk.get("kill_switch"):
            return []
        why = ((risk.get("states") or {}).get("why") or {}).get("*") or {}
        by = f" ({why['reason']})" if why.get("reason") else ""
        if risk.get("kill_mode") == "flatten":
            return [Finding(rule, "*", f"the kill switch is at FLATTEN{by}: no entries, every "
                            "position being closed")]  # fmt: skip
        return [Finding(rule, "*", f"the kill switch is ON{by}: no new entries (exits pass)")]

    def _refused(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        r = self.cfg.rule(rule)
        answered = view.detail("signals").get("answered", {})
        total = sum(int(v) for k, v in answered.items() if str(k) != "200")
        q = self._refusals
        q.append((now, total))
        while len(q) > 1 and now - q[0][0] > r.window_s:
            q.popleft()
        n = total - q[0][1] if total >= q[0][1] else total  # a restarted daemon counts anew
        if n < (r.threshold or 10):
            return []
        return [Finding(rule, "*", f"{n} webhook requests refused in the last {r.window_s:.0f} s")]

    def _journal(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        d = view.detail("router").get("journal_damage")
        if not d:
            return []
        return [
            Finding(
                rule,
                "router",
                f"the router's order journal was damaged: {d.get('lost_bytes')} bytes "
                f"unreadable (kept at {d.get('kept_at')}); rebuilt from the broker: "
                f"{len(d.get('rebuilt_from_broker', []))} orders, "
                f"{d.get('fills_from_broker', 0)} fills; lost: "
                f"{', '.join(d.get('lost_orders', [])) or 'none'}; at the broker, "
                f"unaccounted for: {', '.join(d.get('at_broker_unaccounted', [])) or 'none'}",
            )
        ]

    def _unwritable(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        d = view.detail("router")
        fault = d.get("journal_fault")
        if not fault:
            return []
        return [
            Finding(
                rule,
                "router",
                f"the router cannot write its order journal ({fault}): NEW ORDERS ARE "
                f"REFUSED until it can; {d.get('fills_held', 0)} fills held in memory; free "
                f"space on that disk (the router retries every second)",
            )
        ]

    def _disk_low(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        limit = self.cfg.rule(rule).threshold or 10.0
        worst: dict[str, dict[str, float]] = {}
        for d in view.daemons:
            for fs in (view.detail(d).get("health") or {}).get("disk") or []:
                worst[fs["path"]] = fs
        return [
            Finding(
                rule,
                path,
                f"disk low: {fs['free_pct']:.1f} % free ({fs['free_mb']:.0f} MB) under {path}",
            )
            for path, fs in sorted(worst.items())
            if fs["free_pct"] < limit
        ]

    def _session(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        out = []
        for account, d in (view.detail("router").get("sessions_expired") or {}).items():
            out.append(
                Finding(
                    rule,
                    account,
                    f"account {account}: broker session EXPIRED (OpenAlgo answers "
                    f"'Invalid openalgo apikey'): its orders are refused until you log in "
                    f"to OpenAlgo again; working orders left as they are; "
                    f"{d.get('probes', 0)} probes so far",
                )
            )
        return out

    def _halted(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """Each strategy risk holds HALTED on its own (the stack's halt is the kill
        switch's alert): said once, with why and what lifts it; its recovery when it
        trades again (a hold on unknown orders lifts by itself)."""
        states = view.detail("risk").get("states") or {}
        return [
            Finding(rule, name, f"strategy {name} {describe(states, name)}")
            for name, st in sorted((states.get("strategies") or {}).items())
            if st == "halted" and not by_schedule(states, name)  # its hours: not news
        ]

    def _missed_start(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """A scheduled strategy inside its hours for ``threshold`` seconds (60) that does
        not trade: halted or reducing (by an operator, a limit, the kill switch), not run
        by the engine, or quarantined."""
        limit = self.cfg.rule(rule).threshold or 60.0
        risk = view.detail("risk")
        states = risk.get("states") or {}
        engine = view.detail("engine").get("strategies") if "engine" in view.daemons else None
        out = []
        for name, plan in sorted((risk.get("schedule") or {}).items()):
            if plan.get("phase") != "during":
                self._during.pop(name, None)
                continue
            since = self._during.setdefault(name, now)
            if now - since < limit:
                continue
            state = effective(states, name)
            if state != "active":
                why = f"is {state.upper()}: {describe(states, name)}"
            elif engine is not None and name not in engine:
                why = "the engine does not run it (MT_STRATEGIES)"
            elif engine is not None and engine[name].get("quarantined"):
                why = f"it is QUARANTINED ({engine[name]['quarantined']})"
            else:
                continue
            text = f"missed start: {name} should trade from {plan['start']} ({plan['schedule']})"
            out.append(Finding(rule, name, f"{text} but {why}"))
        return out

    def _away(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        return [
            Finding(
                rule,
                account,
                f"account {account}: its broker does not answer since {since} (funds, orders "
                "and books fail): its orders are refused; its followers catch up once it "
                "answers",
            )
            for account, since in sorted((view.detail("router").get("accounts_away") or {}).items())
        ]

    def _feed_lag(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """A source whose ticks reached us, at p99 over the last minute, more than
        ``threshold`` seconds after their stamps (``feed/timewatch.py``)."""
        limit = self.cfg.rule(rule).threshold or 5.0
        out = []
        for source, lag in sorted((view.detail("feed").get("lag") or {}).items()):
            p99 = float(lag.get("p99_ms", 0.0)) / 1000
            if p99 > limit:
                out.append(
                    Finding(
                        rule,
                        source,
                        f"feed lag from {source}: p99 {p99:.1f} s, p50 "
                        f"{float(lag.get('p50_ms', 0.0)) / 1000:.1f} s over the last minute "
                        f"(over {limit:g} s): every bar reaches the strategies that late",
                    )
                )
        return out

    def _clock_offset(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """This host's clock more than ``threshold`` seconds off the broker's."""
        limit = self.cfg.rule(rule).threshold or 2.0
        off = clock_offset_s(view.detail("feed"))
        if off is None or abs(off) <= limit:
            return []
        return [Finding(rule, "feed", clock_text(off, limit))]

    def _late_ticks(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """More than ``threshold`` ticks in the last minute came after their bar had been
        handed out, and were left out of it (``domain/bars.py``)."""
        feed = view.detail("feed")
        n = int(feed.get("late_ticks_last_minute") or 0)
        if n <= (self.cfg.rule(rule).threshold or 0):
            return []
        return [
            Finding(
                rule,
                "feed",
                f"{n} late ticks left out of bars in the last minute (the latest "
                f"{float(feed.get('late_max_s') or 0):.1f} s after its bar's end): the feed "
                f"delivers out of order or in bursts; raise MT_BAR_GRACE_S if it lasts",
            )
        ]

    def _recording_held(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """Another process has held the feed's recording for more than ``threshold``
        seconds while ticks waited to be written (``stores/recording.py``: a reader
        opened it, the shadow or ``main.py data``), or rows were dropped for it."""
        feed = view.detail("feed")
        held = float(feed.get("recording_held_s") or 0.0)
        dropped = int(feed.get("recording_dropped") or 0)
        if held <= (self.cfg.rule(rule).threshold or 120.0) and not dropped:
            return []
        lost = f"; {dropped:,} rows dropped so far" if dropped else ""
        return [
            Finding(
                rule,
                "feed",
                f"the recording has been held by another process for {held:.0f} s while "
                f"ticks wait in the feed's memory{lost}: close what reads it "
                f"(a notebook, `main.py data`)",
            )
        ]

    def _memory(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        out = []
        for d in view.daemons:
            h = view.detail(d).get("health") or {}
            if h.get("rss_growing"):
                out.append(
                    Finding(
                        rule,
                        d,
                        f"{d}: resident memory grew steadily for an hour, now "
                        f"{h.get('rss_mb', 0):,.0f} MB (a leak?)",
                    )
                )
        return out

    # ---------------------------------------------------------------- events

    def _restarts(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        out = []
        for t, name, pid in view.restarts:
            if t > self._restarts_seen:
                out.append(Finding(rule, name, f"{name} restarted (now pid {pid})", event=True))
        if view.restarts:
            self._restarts_seen = max(self._restarts_seen, view.restarts[-1][0])
        return out

    def _failover(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        feed = view.detail("feed")
        n = feed.get("failovers")
        if n is None:
            return []
        before, self._failovers = self._failovers, int(n)
        if before is None or int(n) <= before:
            return []
        account = feed.get("data_account", "?")
        return [Finding(rule, "feed", f"market data failed over: now from {account}", event=True)]

    def _morning(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        """Once a day, from ``at`` (IST wall time) on: what needs a person, said early."""
        t = datetime.fromtimestamp(wall, IST)
        hh, mm = (int(x) for x in (self.cfg.rule(rule).at or "08:45").split(":"))
        if (t.hour, t.minute) < (hh, mm) or self._morning_said == t.date():
            return []
        if now - self.started < 30:  # every daemon's beat heard first
            return []
        self._morning_said = t.date()
        needs = waiting_for_a_person(view) + calendar_needs(self.holiday_years, t.date())
        text = (
            f"morning check: {len(needs)} thing(s) need you: " + "; ".join(needs)
            if needs
            else "morning check: nothing needs you today"
        )
        off = clock_offset_s(view.detail("feed"))
        if off is None:
            text += " (this host's clock against the broker's: not measured yet)"
        elif abs(off) <= CLOCK_MORNING_S:
            text += f" (this host's clock {off:+.2f} s from the broker's: fine)"
        return [Finding(rule, t.date().isoformat(), text, event=True)]

    def _triggers(self, rule: str, view: View, now: float, wall: float) -> list[Finding]:
        out = []
        for t, ev in view.risk_events:
            if t > self._risk_seen and ev.kind == "trigger":
                out.append(
                    Finding(
                        rule,
                        f"{ev.strategy}:{ev.rule}",
                        f"risk {ev.rule} on {ev.strategy}: {ev.reason} ({ev.action})",
                        event=True,
                    )
                )
        if view.risk_events:
            self._risk_seen = max(self._risk_seen, view.risk_events[-1][0])
        return out


HOLIDAYS_AHEAD_DAYS = 31
CLOCK_MORNING_S = 1.0  # the morning check names a clock off by more than this


def clock_text(off: float, limit: float) -> str:
    """What a clock ``off`` seconds from the broker's (its clock less ours) means."""
    side = "behind" if off > 0 else "ahead of"
    return (
        f"this host's clock is {abs(off):.1f} s {side} the broker's (over {limit:g} s): "
        "bars close that much off and quote ages read wrong; the host needs NTP "
        "(chrony or systemd-timesyncd, then `chronyc tracking` or `timedatectl`)"
    )


def calendar_needs(years: frozenset[int] | None, today: date) -> list[str]:
    """A year the exchange holiday list does not cover, said from a month before it
    begins: without it every weekday of that year is taken as a trading day (the feed,
    the strategies and risk would meet a closed market; the exchange publishes the list
    in December)."""
    if years is None:
        return []
    soon = today + timedelta(days=HOLIDAYS_AHEAD_DAYS)
    return [
        f"config/holidays.toml lists no exchange holidays for {y}: add them from the "
        f"exchange's circular (until then every weekday of {y} counts as a trading day)"
        for y in sorted({today.year, soon.year})
        if y not in years
    ]


def by_schedule(states: dict[str, Any], name: str) -> bool:
    """The strategy's state is its schedule's (outside its hours): nobody need act."""
    return set_by(states, name) == SCHEDULE


def waiting_for_a_person(view: View) -> list[str]:
    """Everything the stack will not resolve by itself, each with what clears it."""
    needs: list[str] = []
    risk = view.detail("risk")
    if risk.get("kill_switch"):
        needs.append(
            f"the kill switch is {str(risk.get('kill_mode', 'on')).upper()} (no entries): "
            "`main.py kill-switch off` when you mean it"
        )
    states = risk.get("states") or {}
    if states.get("stack") in ("halted", "reducing"):
        needs.append(f"the stack is {states['stack'].upper()}: `main.py risk state active`")
    for name, st in sorted((states.get("strategies") or {}).items()):
        if st in ("halted", "reducing") and not by_schedule(states, name):
            needs.append(
                f"strategy {name} is {st.upper()}: `main.py risk state active --strategy {name}`"
            )
    for name, d in sorted((view.detail("engine").get("strategies") or {}).items()):
        if d.get("quarantined"):
            needs.append(
                f"strategy {name} is QUARANTINED ({d['quarantined']}): fix it, then "
                "`main.py restart engine`"
            )
    router = view.detail("router")
    for oid in router.get("unknown_orders") or []:
        needs.append(f"order {oid} is UNKNOWN: check the broker's order book")
    for account in sorted(router.get("sessions_expired") or {}):
        needs.append(f"account {account}: broker session expired: log in to OpenAlgo")
    if router.get("journal_fault"):
        needs.append(f"the order journal cannot be written ({router['journal_fault']}): free space")
    off = clock_offset_s(view.detail("feed"))
    if off is not None and abs(off) > CLOCK_MORNING_S:
        needs.append(clock_text(off, CLOCK_MORNING_S))
    seen: set[str] = set()
    for d in view.daemons:
        for fs in (view.detail(d).get("health") or {}).get("disk") or []:
            if fs["path"] not in seen and fs["free_pct"] < 10:
                seen.add(fs["path"])
                needs.append(f"disk {fs['path']} has {fs['free_pct']:.0f} % free")
    return needs
