"""The core every daemon is built on: heartbeats, peer liveness, and every frame it is
handed read the same way, with no socket, thread or clock of its own.

A daemon is a core (this class and its subclass in each daemon's package) on a ``Host``
(``process/host.py``): the shell of a real process (``process/shell.py``: ZeroMQ, one
poller, signals, threads) or one daemon of the deterministic simulation of the whole
stack (``mytrading/simulation``). The core asks its host for what it sends, its timers
and its connections, reads the time from ``mytrading/hosttime.py``, and is called for
what arrives. So the simulation drives the code that trades.

Every ``heartbeat_s`` the core publishes ``Status`` on ``sys.status.<name>``. It listens
to the heartbeats of the other daemons and declares a peer DOWN after
``peer_missed_beats`` missed beats; a daemon whose required peer is down reports
``degraded``. A malformed frame, a failing handler or a failing timer is logged with
context, counted (``errors``) and dropped; the daemon keeps running.

What a core is given at its birth is composed where its process starts (the shell's
``main``, from ``config.py``'s ``StackConfig``; the simulation, from its own): its
settings, the reference data, the accounts, and what its subclass asks for besides.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from mytrading import hosttime
from mytrading.domain.accounts import Accounts
from mytrading.domain.bars import BarBuilder
from mytrading.domain.clock import MarketClock, build_clock
from mytrading.domain.quantiles import p50_p99
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS, EVENT_HWM, SequenceTracker
from mytrading.messaging.catchup import Ask, FillSequence
from mytrading.process.host import Host
from mytrading.settings import Settings

EARLY_BEATS_S = (0.15, 0.4)


@dataclass
class Peer:
    name: str
    last_seen: float = 0.0  # monotonic seconds; 0 = never
    up: bool = False
    status: wire.Status | None = None


class Daemon:
    name: str = "daemon"
    required_peers: tuple[str, ...] = ()
    sub_prefixes: tuple[str, ...] = ()  # topics this daemon reads besides sys.status.
    sub_hwm: int = 100_000
    pub_hwm: int = EVENT_HWM

    def __init__(
        self, host: Host, settings: Settings, refdata: RefData, accounts: Accounts
    ) -> None:
        self.host = host
        self.settings = settings
        self.refdata = refdata
        self.accounts = accounts
        self.clock: MarketClock = build_clock(settings, refdata.calendar)
        # every bar this process builds waits MT_BAR_GRACE_S for a quiet instrument
        BarBuilder.default_grace_ns = int(settings.bar_grace_s * 1e9)
        self.log = structlog.get_logger(self.name)
        self.peers = {d: Peer(d) for d in DAEMONS if d != self.name}
        self.msgs_in = 0
        self.errors = 0
        self.state = "starting"
        self.set_up = False  # setup() done: a failure after it is a crash, not a failed start
        self.started_ns = hosttime.time_ns()
        self._started_mono = hosttime.monotonic()
        self._lat_us: collections.deque[float] = collections.deque(maxlen=4096)
        self.lat_n = 0  # latencies recorded so far
        self._lat_at = -1  # ... when the percentiles were last worked out
        self._lat = (0.0, 0.0)
        self.sub_seq = SequenceTracker()
        self._trackers: list[SequenceTracker] = []
        self.last_beat: tuple[wire.Status, float] | None = None
        host.on_sub(self._take_sub, ("sys.status.", *self.sub_prefixes))

    # ---------------------------------------------------------------- extension points

    def setup(self) -> None:
        """Create pipes and timers; called once before the loop."""

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        """A decoded message from the SUB socket (other than heartbeats)."""

    def on_peer_change(self, peer: Peer) -> None:
        """A peer came up or went down."""

    def on_peer_status(self, st: wire.Status) -> None:
        """Every heartbeat of a peer, after the bookkeeping above."""

    def on_peer_restart(self, peer: Peer) -> None:
        """A peer's heartbeat came from a new process (it may never have looked down)."""

    def detail(self) -> dict[str, Any]:
        """Daemon-specific figures for the heartbeat."""
        return {}

    def teardown(self) -> None:
        """Release what setup created; called once after the loop."""

    def extra_sent(self) -> int:
        """Messages sent on sockets other than the PUB (pipes), for the heartbeat."""
        return 0

    # ------------------------------------------------------------------ life, by the host

    def start(self) -> None:
        """Set up, then beat: the host calls this once, before its loop."""
        self.setup()
        self.set_up = True
        self.every(self.settings.liveness.heartbeat_s, self.heartbeat, first_in=0)
        # Peers reconnect to a new process every 0.1 s and miss what it sends before:
        # two early beats let them see a restarted daemon within ~0.2 s, not 1 s.
        for early in EARLY_BEATS_S:
            self.after(early, self.heartbeat)
        self.every(self.settings.liveness.heartbeat_s / 2, self._check_peers)
        self.state = "running"

    def finish(self) -> None:
        """The loop is over: tear down and say so in a last beat (the host calls it)."""
        self.state = "stopping"
        if self.set_up:  # a set-up that failed half-way has nothing whole to tear down
            self.teardown()
        self.heartbeat()

    # ------------------------------------------------------------------------ helpers

    def every(self, seconds: float, fn: Callable[[], None], first_in: float | None = None) -> None:
        """``fn`` every ``seconds``; one that raises is counted and runs again next time."""
        self.host.every(seconds, self._guarded(fn), first_in)

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once, ``seconds`` from now."""
        self.host.after(seconds, self._guarded(fn))

    def _guarded(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception:
                self.count_error("timer failed", timer=getattr(fn, "__name__", "?"), exc_info=True)

        run.__name__ = getattr(fn, "__name__", "timer")
        return run

    def guarded(self, fn: Callable[[], None]) -> Callable[[], None]:
        """``fn`` as a socket's or a wake-up's handler: one that raises is counted."""

        def run() -> None:
            try:
                fn()
            except Exception:
                self.count_error("socket handler failed", exc_info=True)

        return run

    def publish(self, topic: str, msg: wire.Msg) -> None:
        self.host.publish(topic, msg)

    def subscribe(self, prefix: str) -> None:
        self.host.subscribe(prefix)

    def pipe_in(
        self,
        name: str,
        handle: Callable[[str, wire.Msg], None],
        then: Callable[[], None] | None = None,
        malformed: Callable[[bytes, wire.WireError], None] | None = None,
    ) -> None:
        """Read the pipe ``name`` with ``handle`` per message; ``then`` after each batch read
        (the router's group commit: one flush for every order the read brought);
        ``malformed`` after a frame that does not decode has been counted (risk answers
        its sender)."""
        tracker = SequenceTracker()
        self._trackers.append(tracker)

        def sink(raw: bytes, via: str) -> None:
            self.take_frame(raw, via, tracker, handle, malformed)

        self.host.pipe_in(name, sink, self.guarded(then) if then is not None else None)

    def ask_router(self) -> Ask:
        """Questions to the router (``rpc.router``), waited for: the catch-up's requester."""
        return lambda msg, timeout_ms=2000: self.host.request("rpc.router", msg, timeout_ms)

    def record_latency_ns(self, ns: int) -> None:
        self._lat_us.append(ns / 1000.0)
        self.lat_n += 1

    def uptime(self) -> float:
        return hosttime.monotonic() - self._started_mono

    def peer_up(self, name: str) -> bool:
        return self.peers[name].up

    def count_error(self, what: str, **ctx: Any) -> None:
        self.errors += 1
        self.log.error(what, **ctx)

    def fills_in_order(self, seq: FillSequence, f: wire.Fill) -> list[wire.Fill]:
        """The fills to apply for ``f`` (``FillSequence``): a hole in the router's
        numbering is filled from the router first, said once, and an alert if it could
        not be (a position is then short of those fills until the router gives them: they
        are asked again at its next heartbeat)."""
        before = seq.lost
        fills, _ = seq.take(f)
        self._say_fills(fills[:-1], seq.lost - before, before=f.fill_no)
        return fills

    def fills_caught_up(self, seq: FillSequence, st: wire.Status) -> list[wire.Fill]:
        """The fills the router's heartbeat shows this daemon missed, and those of a hole
        it did not answer for before (``catch_up``)."""
        published = st.detail.get("last_fill_no")
        if st.name != "router" or not isinstance(published, int):
            return []
        before = seq.lost
        fills = seq.catch_up(published)
        self._say_fills(fills, max(0, seq.lost - before), router_last=published)
        return fills

    def _say_fills(self, taken: list[wire.Fill], missing: int, **where: int) -> None:
        """Fills taken from the router rather than the bus (a warning), and numbers it
        did not give (an alert)."""
        if taken:
            self.log.warning(
                "fills missed on the bus were taken from the router",
                fill_nos=[m.fill_no for m in taken],
                **where,
            )
        if missing:
            self.count_error(
                "ALERT: fills did not reach this daemon and the router did not give them: "
                "positions may be short of them (if it did not answer, asked again at its next "
                "heartbeat)",
                missing=missing,
                **where,
            )

    @property
    def gaps(self) -> int:
        return self.sub_seq.gaps + sum(t.gaps for t in self._trackers)

    # ---------------------------------------------------------------------- internals

    def take_frame(
        self,
        raw: bytes,
        via: str,
        tracker: SequenceTracker,
        handle: Callable[[str, wire.Msg], None],
        malformed: Callable[[bytes, wire.WireError], None] | None = None,
    ) -> None:
        """One frame from a socket: decoded strictly, its sequence checked, handled; a
        frame that does not decode or a handler that raises is logged, counted and
        dropped."""
        self.msgs_in += 1
        try:
            topic, msg = wire.decode(raw)
        except wire.WireError as exc:
            self.count_error("malformed frame dropped", topic=exc.topic, via=via, reason=str(exc))
            if malformed is not None:
                try:
                    malformed(raw, exc)
                except Exception:
                    self.count_error("answering a malformed frame failed", exc_info=True)
            return
        missing = tracker.check(msg.src, topic, msg.seq)
        if missing:
            self.log.warning("sequence gap", src=msg.src, topic=topic, missing=missing)
        try:
            handle(topic, msg)
        except Exception:
            self.count_error("handler failed", topic=topic, exc_info=True)

    def _take_sub(self, raw: bytes, via: str) -> None:
        self.take_frame(raw, via, self.sub_seq, self._on_sub_message)

    def _on_sub_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Status):
            self._on_status(msg)
        else:
            self.on_message(topic, msg)

    def _on_status(self, st: wire.Status) -> None:
        peer = self.peers.get(st.name)
        if peer is None:
            return
        peer.last_seen = hosttime.monotonic()
        restarted = peer.status is not None and peer.status.pid != st.pid
        peer.status = st
        if restarted:
            self.log.warning("peer restarted", peer=st.name, pid=st.pid)
            self.on_peer_restart(peer)
        self.on_peer_status(st)
        if not peer.up:
            peer.up = True
            self.log.info("peer up", peer=st.name, pid=st.pid)
            self.on_peer_change(peer)

    def _check_peers(self) -> None:
        limit = self.settings.liveness.heartbeat_s * self.settings.liveness.peer_missed_beats
        now = hosttime.monotonic()
        for peer in self.peers.values():
            if peer.up and now - peer.last_seen > limit:
                peer.up = False
                self.log.warning(
                    "peer down", peer=peer.name, silent_s=round(now - peer.last_seen, 2)
                )
                self.on_peer_change(peer)
        self._update_state()

    def _update_state(self) -> None:
        if self.state in ("running", "degraded"):
            down = [p for p in self.required_peers if not self.peers[p].up]
            self.state = "degraded" if down else "running"

    def _latency(self) -> tuple[float, float]:
        """p50 and p99 of the latest latencies (worked out again only when new ones came)."""
        n = self.lat_n
        if n != self._lat_at:
            self._lat_at = n
            self._lat = p50_p99(self._lat_us)
        return self._lat

    def heartbeat(self) -> None:
        self._update_state()  # state and peers_down in one beat always agree
        p50, p99 = self._latency()
        st = wire.Status(
            name=self.name,
            pid=self.host.pid,
            state=self.state,
            started_ns=self.started_ns,
            uptime_s=round(hosttime.monotonic() - self._started_mono, 3),
            msgs_in=self.msgs_in,
            msgs_out=self.host.published + self.extra_sent(),
            errors=self.errors,
            gaps=self.gaps,
            lat_p50_us=p50,
            lat_p99_us=p99,
            peers_down=[p for p, v in self.peers.items() if not v.up],
            detail={**self.detail(), **self.host.health()},
        )
        self.host.publish(wire.status_topic(self.name), st)
        self.last_beat = (st, hosttime.monotonic())  # its own, as a peer hears it

    def stop(self) -> None:
        self.host.stop()
