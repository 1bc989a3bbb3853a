"""The status view: one table from the heartbeat topic and supervisor.

It subscribes to every daemon's ``sys.status.*`` heartbeats plus position snapshots,
risk events and reconciliation events, and renders what an operator needs at a glance.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import zmq

from mytrading import compiled
from mytrading.domain.refdata import IST
from mytrading.domain.trading_states import describe, stack_line, why_of
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS, Subscriber
from mytrading.settings import ConfigError, Settings


@dataclass
class Seen:
    status: wire.Status
    at: float  # monotonic
    rate: float = 0.0  # messages per second (in + out) between the last two beats


@dataclass
class StatusCollector:
    settings: Settings
    daemons: dict[str, Seen] = field(default_factory=dict)
    beats: collections.Counter[str] = field(default_factory=collections.Counter)
    positions: dict[tuple[str, str, str, str], wire.PositionSnapshot] = field(default_factory=dict)
    events: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=6))
    bad_frames: int = 0

    def __post_init__(self) -> None:
        from mytrading.messaging.curve import TOOLS, secure_bus

        try:
            secure_bus(self.settings, TOOLS, lambda *_a, **_k: None)  # tcp: the operator's key
        except ConfigError as exc:  # a missing or loose key: said, not a traceback
            raise SystemExit(f"configuration error:\n{exc}") from None
        self.ctx = zmq.Context()
        self._disk_at = -math.inf
        self._disk: list[str] = []
        eps = self.settings.endpoints()
        self.sub = Subscriber(
            self.ctx,
            [eps.pub(d) for d in DAEMONS],
            ["sys.status.", "exec.position.", "risk.event.", "recon."],
        )

    def close(self) -> None:
        self.sub.close()
        self.ctx.term()

    def poll(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not self.sub.sock.poll(int(left * 1000) + 1):
                continue
            try:
                _, msg = self.sub.recv()
            except wire.WireError:
                self.bad_frames += 1
                continue
            self._take(msg)

    def wait_for_all(self, beats: int = 2, timeout: float = 4.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self.beats[d] < beats for d in DAEMONS):
            self.poll(0.2)

    def _take(self, msg: wire.Msg) -> None:
        now = time.monotonic()
        if isinstance(msg, wire.Status):
            prev = self.daemons.get(msg.name)
            seen = Seen(msg, now)
            if prev is not None and msg.uptime_s > prev.status.uptime_s:
                moved = (msg.msgs_in + msg.msgs_out) - (prev.status.msgs_in + prev.status.msgs_out)
                seen.rate = max(0.0, moved / (msg.uptime_s - prev.status.uptime_s))
            self.daemons[msg.name] = seen
            self.beats[msg.name] += 1
        elif isinstance(msg, wire.PositionSnapshot):
            self.positions[(msg.strategy, msg.exchange, msg.symbol, msg.product)] = msg
        elif isinstance(msg, wire.RiskEvent):
            self.events.append(
                f"{_hms()} risk {msg.kind} [{msg.strategy}] {msg.rule}: {msg.reason}"
            )
        elif isinstance(msg, wire.ReconEvent):
            where = "" if msg.account == "main" else f"{msg.account}/"
            self.events.append(
                f"{_hms()} recon mismatch {where}{msg.exchange}:{msg.symbol}"
                f" ours={msg.ours} broker={msg.broker}"
            )

    # --------------------------------------------------------------------- render

    def render(self, procs: dict[str, dict[str, Any]]) -> str:
        now = time.monotonic()
        out = [
            f"mytrading  {datetime.now(IST):%Y-%m-%d %H:%M:%S %Z}   mode={self.settings.mode}"
            f"  broker={self.settings.broker}",
            *self._orders_line(),
            "",
            f"{'DAEMON':<11}{'SUPERVISOR':<11}{'PID':>8} {'STATE':<9}{'UPTIME':>8}"
            f"{'MSG/S':>9}{'ERRORS':>8}{'GAPS':>6}{'P50us':>8}{'P99us':>9}{'HB AGE':>8}"
            f"{'CPU%':>7}{'RSS MB':>8}{'FDS':>5}{'LAG ms':>8}{'GC ms':>7}",
        ]
        if "simserver" in procs:
            p = procs["simserver"]
            out.append(
                f"{'simserver':<11}{p.get('statename', '-'):<11}{p.get('pid') or '-':>8} "
                f"{'(OpenAlgo-compatible simulator: REST + WebSocket, no heartbeat)'}"
            )
        if procs.get("telegram", {}).get("statename", "STOPPED") != "STOPPED":  # enabled
            p = procs["telegram"]
            out.append(
                f"{'telegram':<11}{p.get('statename', '-'):<11}{p.get('pid') or '-':>8} "
                "(the Telegram control bot, no heartbeat: logs/telegram.log)"
            )
        for d in DAEMONS:
            proc = procs.get(d, {}).get("statename", "-")
            seen = self.daemons.get(d)
            if seen is None:
                out.append(f"{d:<11}{proc:<11}{'-':>8} {'no beat':<9}")
                continue
            st = seen.status
            age = now - seen.at
            state = st.state if age <= 3 * self.settings.liveness.heartbeat_s else "DOWN"
            h = st.detail.get("health") or {}
            health = (
                f"{h.get('cpu_pct', 0):>7.1f}{h.get('rss_mb', 0):>8.0f}{h.get('fds', 0):>5}"
                f"{h.get('loop_lag_max_ms', 0):>8.1f}{h.get('gc_pause_max_ms', 0):>7.1f}"
                + ("  RSS GROWING" if h.get("rss_growing") else "")
                if h
                else ""
            )
            out.append(
                f"{d:<11}{proc:<11}{st.pid:>8} {state:<9}{_dur(st.uptime_s):>8}{seen.rate:>9.0f}"
                f"{st.errors:>8}{st.gaps:>6}{st.lat_p50_us:>8.0f}{st.lat_p99_us:>9.0f}{age:>7.1f}s"
                + health
            )
        out += ["", *self._strategies(), "", *self._positions(), "", *self._risk_lines()]
        if self.events:
            out += ["", "recent events:", *[f"  {e}" for e in self.events]]
        out += ["", *self._disk_lines(), "", *build_lines(self.daemons)]
        if self.bad_frames:
            out += ["", f"malformed frames seen by this view: {self.bad_frames}"]
        return "\n".join(out)

    def _disk_lines(self) -> list[str]:
        """Each store's size and the free space (``process/disk.py``), read at most every 30 s:
        ``run`` renders every second."""
        from mytrading.process import disk

        now = time.monotonic()
        if now - self._disk_at > 30.0:
            self._disk_at, self._disk = now, disk.report(self.settings)
        return self._disk

    def _orders_line(self) -> list[str]:
        """Where orders go, as the running router says (LIVE can not be missed), and the
        kill switch when it is on."""
        router = self.daemons.get("router")
        v = router.status.detail.get("venue", {}) if router else {}
        lines = []
        if v.get("live"):
            lines.append(f"!!! {v.get('banner')} !!!")
        elif v:
            lines.append(f"orders: {v.get('banner')}")
        expired = router.status.detail.get("sessions_expired", {}) if router else {}
        for account, d in sorted(expired.items()):
            lines.append(
                f"BROKER SESSION EXPIRED for {account}: its orders are refused until you log "
                f"in to OpenAlgo again ({d.get('probes', 0)} probes so far)"
            )
        fault = router.status.detail.get("journal_fault") if router else None
        if fault:
            lines.append(
                f"ORDERS REFUSED: the order journal cannot be written ({fault}); free space "
                f"on that disk: orders resume by themselves"
            )
        risk = self.daemons.get("risk")
        mode = risk.status.detail.get("kill_mode", "off") if risk else "off"
        states = (risk.status.detail.get("states") or {}) if risk else {}
        if mode != "off":
            d = risk.status.detail if risk else {}
            lines.append(
                f"KILL SWITCH {mode.upper()}: no new entries, exits pass; "
                f"{d.get('entries_halted', 0)} entries being cancelled"
                + (
                    f"; {d.get('positions_open', 0)} positions being closed"
                    if mode == "flatten"
                    else ""
                )
                + f"; set {why_of(states, '*')}; `main.py kill-switch off` resumes"
            )
        elif stack_line(states):
            lines.append(stack_line(states))
        away = router.status.detail.get("accounts_away", {}) if router else {}
        for account, since in sorted(away.items()):
            lines.append(
                f"ACCOUNT {account} NOT ANSWERING since {since}: its orders are refused; "
                "its followers catch up once it answers"
            )
        unknown = router.status.detail.get("unknown_orders", []) if router else []
        if unknown:
            lines.append(
                f"UNKNOWN ORDERS (their strategies halted until each is found or certainly "
                f"absent at the broker): {', '.join(unknown)}"
            )
        fates = router.status.detail.get("unknown_fates", []) if router else []
        if fates:  # the latest three, newest last
            lines.append(
                "unknown orders resolved: "
                + "; ".join(f"{oid} {fate} ({at[11:19]})" for oid, fate, at in fates[-3:])
            )
        return lines

    def _positions(self) -> list[str]:
        if not self.positions:
            return ["positions: none"]
        lines = [
            f"{'STRATEGY':<22}{'SYMBOL':<24}{'QTY':>7}{'AVG':>11}{'LTP':>11}"
            f"{'REALIZED':>12}{'UNREAL.':>12}"
        ]
        total = 0.0
        for (strat, _, sym, _), p in sorted(self.positions.items()):
            total += p.realized_pnl + p.unrealized_pnl
            lines.append(
                f"{strat[:21]:<22}{sym:<24}{p.quantity:>7}{p.avg_price:>11.2f}{p.ltp:>11.2f}"
                f"{p.realized_pnl:>12.2f}{p.unrealized_pnl:>12.2f}"
            )
        lines.append(f"{'total P&L (gross of charges)':<86}{total:>10.2f}")
        return lines

    def _strategies(self) -> list[str]:
        eng = self.daemons.get("engine")
        strategies = dict(eng.status.detail.get("strategies", {})) if eng else {}
        sig = self.daemons.get("signals")
        hooks = sig.status.detail.get("strategies", {}) if sig else {}
        strategies.update(hooks)
        if not strategies:
            return ["strategies: none reported"]
        risk = self.daemons.get("risk")
        states = risk.status.detail.get("states") if risk else None
        lines = [
            f"{'STRATEGY':<22}{'FILLS':>6}{'OPEN':>6}{'P&L':>11}{'ERRORS':>8}"
            f"{'HOOK P50us':>12}{'HOOK P99us':>12}  STATE"
        ]
        for name, d in sorted(strategies.items()):
            lat = d.get("hook_latency", {})
            main = lat.get("bar") or lat.get("tick") or lat.get("timer") or {}
            if d.get("kind") == "webhook":
                state = (
                    "webhook"
                    + ("" if d.get("enabled") else ", DISABLED")
                    + (f", squared off {d['squared_off']}" if d.get("squared_off") else "")
                    + (", NAME CLASH with a Python strategy" if d.get("name_clash") else "")
                )
            else:
                # as risk holds it (the engine's copy can lag it by a heartbeat)
                state = describe(states, name) if isinstance(states, dict) else "trading (?)"
                if d.get("quarantined"):
                    state = f"QUARANTINED: {d['quarantined']}"
                elif d.get("warming") and state == "trading":
                    state = f"warming up: history on the way for {', '.join(d['warming'])}"
                if d.get("entries_held") and state != "trading":
                    state += f" [{d['entries_held']} entries held]"
            lines.append(
                f"{name[:21]:<22}{d.get('fills', 0):>6}{d.get('open_orders', 0):>6}"
                f"{d.get('pnl', 0.0):>11.2f}{d.get('hook_errors', 0):>8}"
                f"{main.get('p50_us', '-'):>12}{main.get('p99_us', '-'):>12}  {state}"
            )
        lines += greek_lines(strategies)
        if sig:
            d = sig.status.detail
            lines.append(
                f"signals: {d.get('http', '?')}, answered {d.get('answered', {}) or 0}, "
                f"intents {d.get('intents', 0)}, refused {d.get('refused', 0)}, "
                f"queued {d.get('queued_jobs', 0)}"
            )
        return lines

    def _risk_lines(self) -> list[str]:
        lines = []
        risk = self.daemons.get("risk")
        if risk:
            d = risk.status.detail
            lines.append(
                f"risk: kill switch {d.get('kill_mode', 'off').upper()}, "
                f"stack {d.get('states', {}).get('stack', '?').upper()}"
                + "".join(
                    f", {k} {v.upper()}"
                    for k, v in d.get("states", {}).get("strategies", {}).items()
                )
                + ", approved "
                f"{d.get('approved', 0)}, rejected {sum(d.get('rejected', {}).values())} "
                f"{d.get('rejected', {}) or ''}"
            )
            behind = d.get("followers_behind") or {}
            if behind:
                lines.append(
                    "followers off their lead (have/target): "
                    + "; ".join(
                        f"{fb} " + ", ".join(f"{sym} {v}" for sym, v in sorted(syms.items()))
                        for fb, syms in sorted(behind.items())
                    )
                )
        rec = self.daemons.get("reconciler")
        if rec:
            d = rec.status.detail
            lines.append(
                f"reconciler: {d.get('checks', 0)} checks, {d.get('mismatches', 0)} mismatches, "
                f"last {d.get('last_check') or '-'}: {d.get('last_result', '')}"
            )
        feed = self.daemons.get("feed")
        if feed:
            d = feed.status.detail
            lines.append(
                f"feed: {d.get('source')}"
                + (f" via {d['data_account']}" if "data_account" in d else "")
                + f", {d.get('coverage')}"
                f"{' ALERT' if d.get('coverage_alert') else ''}, market time {d.get('market_time')}"
                + (f", reconnects {d.get('reconnects')}" if "reconnects" in d else "")
                + (f", failovers {d['failovers']}" if d.get("failovers") else "")
            )
            lines.append(time_line(d))
        router = self.daemons.get("router")
        accounts = router.status.detail.get("accounts", {}) if router else {}
        if accounts:
            lines.append(
                "accounts: "
                + "; ".join(
                    f"{name} queued {a.get('queued', 0)}"
                    + ("" if a.get("order_ws_up", True) else ", order updates DOWN")
                    for name, a in accounts.items()
                )
            )
        return lines


def clock_offset_s(feed: dict[str, Any]) -> float | None:
    """The broker's clock less ours as the feed measured it (``feed/timewatch.py``):
    from OpenAlgo's ``ping`` when there is one (the two wall clocks, no delivery delay in
    it), else from the freshest tick of the last minute."""
    for name in ("clock_offset_ping_s", "clock_offset_ticks_s"):
        v = feed.get(name)
        if isinstance(v, int | float) and math.isfinite(v):
            return float(v)
    return None


def time_line(feed: dict[str, Any]) -> str:
    """The feed's watch on time in one line: lag per source, the clock, late ticks."""
    lag = feed.get("lag") or {}
    parts = [
        f"{src} lag p50 {d.get('p50_ms', 0) / 1000:.2f} s p99 {d.get('p99_ms', 0) / 1000:.2f} s"
        for src, d in sorted(lag.items())
    ] or ["lag: no full minute yet"]
    off = clock_offset_s(feed)
    if off is not None:
        parts.append(f"broker clock {off:+.2f} s vs ours")
    parts.append(
        f"late ticks {feed.get('late_ticks', 0)} ({feed.get('late_ticks_last_minute', 0)} "
        f"last minute), bars by clock {feed.get('bars_by_clock', 0)} of "
        f"{feed.get('bars_by_clock', 0) + feed.get('bars_by_data', 0)}"
    )
    return "time: " + ", ".join(parts)


def _dur(s: float) -> str:
    s = int(s)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _hms() -> str:
    return datetime.now(IST).strftime("%H:%M:%S")


def greek_lines(strategies: dict[str, Any]) -> list[str]:
    """Greeks per strategy and underlying, and the stack's per underlying: delta in units
    of the underlying, gamma per point, theta in rupees a day, vega per volatility point."""
    rows: list[tuple[str, str, dict[str, float]]] = []
    stack: dict[str, dict[str, float]] = {}
    for name, d in sorted(strategies.items()):
        for und, g in sorted((d.get("greeks") or {}).items()):
            rows.append((name, und, g))
            t = stack.setdefault(und, {"delta": 0.0, "gamma": 0.0, "theta": 0.0, "vega": 0.0})
            for k in t:
                t[k] += g.get(k, 0.0)
    if not rows:
        return []

    def fmt(who: str, und: str, g: dict[str, float]) -> str:
        unpriced = f"  ({int(g['unpriced'])} unpriced)" if g.get("unpriced") else ""
        return (
            f"{who[:21]:<22}{und:<11}{g['delta']:>+10.1f}{g['gamma']:>+10.3f}"
            f"{g['theta']:>+11,.0f}{g['vega']:>+11,.0f}{unpriced}"
        )

    out = [f"{'GREEKS':<22}{'UNDERLYING':<11}{'DELTA':>10}{'GAMMA':>10}{'THETA/D':>11}{'VEGA':>11}"]
    out += [fmt(n, u, g) for n, u, g in rows]
    out += [fmt("stack", u, g) for u, g in sorted(stack.items())]
    return out


def build_lines(daemons: dict[str, Seen]) -> list[str]:
    """Which build each daemon runs, from its beat (issue 54): one line when all agree,
    else a line per build; a daemon whose build is of other sources than the checkout's
    now (started before a change, a pull or a rebuild) is said, as a restart would change
    what it runs. Then the build a process started now would run."""
    now = compiled.sources()[:12]
    groups: dict[tuple[str, str], list[str]] = {}
    for name in DAEMONS:
        seen = daemons.get(name)
        if seen is None or "build" not in seen.status.detail:
            continue  # no beat, or a daemon of a release before the field
        d = seen.status.detail
        groups.setdefault((str(d["build"]), str(d.get("build_of", ""))), []).append(name)
    out = []
    for (build, of), names in groups.items():
        who = "every daemon" if names == list(DAEMONS) else ", ".join(names)
        stale = (f" (sources {of}, the checkout's are now {now}: a restart runs the new "
                 "ones)") if of != now else ""  # fmt: skip
        out.append(f"build: {who}: {build}{stale}")
    return [*out, f"build: a process started now: {compiled.build()}"]
