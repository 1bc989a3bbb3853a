"""The base class of every process: event loop, signals, heartbeats, peer liveness, logs.

One thread, one ``zmq.Poller``: the loop blocks until a socket is readable or the next
timer is due (busy polling ruins latency on two cores). SIGTERM/SIGINT wake the poller
through a self-pipe, so a stop begins at once and finishes well inside 5 seconds.

Every ``heartbeat_s`` the daemon publishes ``Status`` on ``sys.status.<name>``. It listens
to the heartbeats of the other daemons and declares a peer DOWN after
``peer_missed_beats`` missed beats; a daemon whose required peer is down reports
``degraded``. A malformed frame or a failing handler is logged with context, counted,
and dropped; the loop keeps running.

A daemon holds its checkout's lock (``process/instance.py``) from before it binds a socket until
it exits, so a second copy refuses at once. Under supervisord it also stops when its
supervisor dies (a parent-death SIGHUP, and a ``getppid()`` watch behind it): the same
orderly stop as SIGTERM, staggered producers first (``STOP_ORDER``) so the router and
the broker stop last, with nothing new arriving while they finish.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import heapq
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog
import zmq

from mytrading.config import StackConfig, for_process
from mytrading.domain.bars import BarBuilder
from mytrading.domain.clock import MarketClock, build_clock
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.messaging.bus import (
    DAEMONS,
    EVENT_HWM,
    Publisher,
    Puller,
    SequenceTracker,
    Subscriber,
    stop_security,
)
from mytrading.messaging.catchup import FillSequence
from mytrading.messaging.curve import secure_bus
from mytrading.process import instance, startguard
from mytrading.process.health import ProcessHealth
from mytrading.process.logsetup import setup_logging
from mytrading.process.rundir import private_umask
from mytrading.settings import ConfigError, Settings

EARLY_BEATS_S = (0.15, 0.4)
# Who stops first when the supervisor is gone (producers first, the broker last), and the
# gap between ranks: the last one still stops well inside the 3 s a test allows.
STOP_ORDER: tuple[str, ...] = (
    "monitor",
    "feed",
    "signals",
    "engine",
    "reconciler",
    "risk",
    "router",
    "simserver",
)
STOP_STAGGER_S = 0.25
EXIT_ALREADY_RUNNING = 3


def stop_delay(name: str) -> float:
    """How long ``name`` waits, once its supervisor is gone, before its orderly stop."""
    return (STOP_ORDER.index(name) if name in STOP_ORDER else 0) * STOP_STAGGER_S


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

    def __init__(self, config: StackConfig) -> None:
        # the process's configuration (config.py): each section loaded as it is used, the
        # same loaders and object that ``config check`` validates
        self.config = config
        self.settings = settings = config.settings
        self.refdata: RefData = config.refdata
        self.clock: MarketClock = build_clock(settings, self.refdata.calendar)
        # every bar this process builds waits MT_BAR_GRACE_S for a quiet instrument
        BarBuilder.default_grace_ns = int(settings.bar_grace_s * 1e9)
        self.endpoints = settings.endpoints()
        self.log = structlog.get_logger(self.name)
        self.ctx = zmq.Context()
        # tcp: CURVE, this daemon's key (a missing or loose key stops the start: ConfigError)
        self.curve = secure_bus(settings, self.name, self.log.warning)
        self.pub = Publisher(self.ctx, self.endpoints.pub(self.name), self.name, self.pub_hwm)
        others = [d for d in DAEMONS if d != self.name]
        self.sub = Subscriber(
            self.ctx,
            [self.endpoints.pub(d) for d in others],
            ("sys.status.", *self.sub_prefixes),
            self.sub_hwm,
        )
        self.peers = {d: Peer(d) for d in others}
        self.msgs_in = 0
        self.errors = 0
        self.state = "starting"
        self.set_up = False  # setup() done: a failure after it is a crash, not a failed start
        self.started_ns = time.time_ns()
        self._started_mono = time.monotonic()
        self._lat_us: collections.deque[float] = collections.deque(maxlen=4096)
        self._sockets: dict[Any, Callable[[], None]] = {}
        self._timers: list[tuple[float, int, float, Callable[[], None]]] = []
        self._timer_seq = 0
        self._stop = False
        self._hangup = False  # SIGHUP: the supervisor (or the terminal) is gone
        self._leaving = False
        self._parent_pid: int | None = None
        self._trackers: list[SequenceTracker] = []
        self.poller = zmq.Poller()
        self.add_socket(self.sub.sock, self._on_sub_readable)
        # CPU, RSS, files, loop lag, GC pauses, free disk: each beat
        self.health = ProcessHealth([self.settings.state_dir, self.settings.log_dir])

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

    # ------------------------------------------------------------------------ helpers

    def add_socket(self, sock: Any, callback: Callable[[], None]) -> None:
        self.poller.register(sock, zmq.POLLIN)
        self._sockets[sock] = callback

    def remove_socket(self, sock: Any) -> None:
        """Stop polling ``sock`` (the caller closes it)."""
        self.poller.unregister(sock)
        self._sockets.pop(sock, None)

    def every(self, seconds: float, fn: Callable[[], None], first_in: float | None = None) -> None:
        due = time.monotonic() + (seconds if first_in is None else first_in)
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, seconds, fn))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once, ``seconds`` from now."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (time.monotonic() + seconds, self._timer_seq, -1.0, fn))

    def record_latency_ns(self, ns: int) -> None:
        self._lat_us.append(ns / 1000.0)

    def uptime(self) -> float:
        return time.monotonic() - self._started_mono

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
        return self.sub.seq.gaps + sum(t.gaps for t in self._trackers)

    # ---------------------------------------------------------------------- internals

    def add_puller(
        self,
        puller: Puller,
        handle: Callable[[str, wire.Msg], None],
        then: Callable[[], None] | None = None,
        malformed: Callable[[bytes, wire.WireError], None] | None = None,
    ) -> None:
        """Read ``puller`` with ``handle`` per message; ``then`` after each batch read (the
        router's group commit: one flush for every order the read brought); ``malformed``
        after a frame that does not decode has been counted (risk answers its sender)."""
        self._trackers.append(puller.seq)

        def readable() -> None:
            self.drain(puller.sock, puller.seq, handle, malformed)
            if then is not None:
                then()

        self.add_socket(puller.sock, readable)

    def _on_sub_readable(self) -> None:
        self.drain(self.sub.sock, self.sub.seq, self._on_sub_message)

    def drain(
        self,
        sock: zmq.Socket,
        tracker: SequenceTracker,
        handle: Callable[[str, wire.Msg], None],
        malformed: Callable[[bytes, wire.WireError], None] | None = None,
    ) -> None:
        """Read what is waiting, in bounded batches so timers still run under load."""
        for _ in range(1000):
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.msgs_in += 1
            try:
                topic, msg = wire.decode(frame.bytes)
            except wire.WireError as exc:
                self.count_error(
                    "malformed frame dropped", topic=exc.topic, peer=_peer(frame), reason=str(exc)
                )
                if malformed is not None:
                    try:
                        malformed(frame.bytes, exc)
                    except Exception:
                        self.count_error("answering a malformed frame failed", exc_info=True)
                continue
            missing = tracker.check(msg.src, topic, msg.seq)
            if missing:
                self.log.warning("sequence gap", src=msg.src, topic=topic, missing=missing)
            try:
                handle(topic, msg)
            except Exception:
                self.count_error("handler failed", topic=topic, exc_info=True)

    def _on_sub_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Status):
            self._on_status(msg)
        else:
            self.on_message(topic, msg)

    def _on_status(self, st: wire.Status) -> None:
        peer = self.peers.get(st.name)
        if peer is None:
            return
        peer.last_seen = time.monotonic()
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

    def watch_parent(self, parent_pid: int) -> None:
        """Stop in order when ``parent_pid`` (our supervisor) is no longer our parent."""
        self._parent_pid = parent_pid

    def _leave(self, why: str) -> None:
        """Our supervisor is gone: stop after our rank's delay, as on SIGTERM."""
        if self._leaving:
            return
        self._leaving = True
        delay = stop_delay(self.name)
        self.log.warning("supervisor gone, stopping", why=why, in_s=delay)
        self.after(delay, self.stop)

    def _check_peers(self) -> None:
        if self._parent_pid is not None and instance.parent_gone(self._parent_pid):
            self._leave(f"parent {self._parent_pid} exited")
        limit = self.settings.liveness.heartbeat_s * self.settings.liveness.peer_missed_beats
        now = time.monotonic()
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

    def heartbeat(self) -> None:
        self._update_state()  # state and peers_down in one beat always agree
        lat = np.fromiter(self._lat_us, float) if self._lat_us else None
        st = wire.Status(
            name=self.name,
            pid=os.getpid(),
            state=self.state,
            started_ns=self.started_ns,
            uptime_s=round(time.monotonic() - self._started_mono, 3),
            msgs_in=self.msgs_in,
            msgs_out=self.pub.sent + self.extra_sent(),
            errors=self.errors,
            gaps=self.gaps,
            lat_p50_us=float(np.percentile(lat, 50)) if lat is not None else 0.0,
            lat_p99_us=float(np.percentile(lat, 99)) if lat is not None else 0.0,
            peers_down=[p for p, v in self.peers.items() if not v.up],
            detail={**self.detail(), "health": self.health.sample(), **self._bus_detail()},
        )
        self.pub.publish(wire.status_topic(self.name), st)
        self.last_beat = (st, time.monotonic())  # its own, as a peer hears it

    def _bus_detail(self) -> dict[str, Any]:
        """Connections the bus's ZAP handler refused (tcp with CURVE only)."""
        return {"bus_refused": self.curve.admit.refused} if self.curve is not None else {}

    def extra_sent(self) -> int:
        """Messages sent on sockets other than the PUB (pipes), for the heartbeat."""
        return 0

    def stop(self) -> None:
        self._stop = True

    def run(self) -> int:
        rfd, wfd = socket.socketpair()
        rfd.setblocking(False)
        wfd.setblocking(False)
        signal.set_wakeup_fd(wfd.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        # Handled in the loop, not here: scheduling a timer inside a signal handler could
        # interleave with the loop's own use of the timer heap.
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_hangup", True))
        self.poller.register(rfd.fileno(), zmq.POLLIN)
        self.log.info("starting", pid=os.getpid(), mode=self.settings.mode,
                      config=self.config.fingerprint())  # fmt: skip
        # where every value came from (environment, .env, default; each file's digest)
        self.log.info("configuration", **self.config.provenance())
        try:
            self.setup()
            self.set_up = True
            startguard.clear(self.name, self.settings.state_dir / "startfail")
            # Everything alive now (imported modules: numba, numpy, pandas, duckdb; config;
            # the journal replayed) lives as long as the process. Frozen, a full collection
            # no longer walks it: 60-110 ms pauses of the router and the feed at 1,000
            # orders/s became the stack's p99 (bench/latency.py).
            gc.collect()
            gc.freeze()
            self.every(self.settings.liveness.heartbeat_s, self.heartbeat, first_in=0)
            # Peers reconnect to a new process every 0.1 s and miss what it sends before:
            # two early beats let them see a restarted daemon within ~0.2 s, not 1 s.
            for early in EARLY_BEATS_S:
                self.after(early, self.heartbeat)
            self.every(self.settings.liveness.heartbeat_s / 2, self._check_peers)
            self.state = "running"
            self._loop(rfd)
        finally:
            self.state = "stopping"
            t0 = time.monotonic()
            try:
                if self.set_up:  # a set-up that failed half-way has nothing whole to tear down
                    self.teardown()
                self.heartbeat()
            except Exception:
                self.log.exception("teardown failed")
            signal.set_wakeup_fd(-1)
            gc.unfreeze()  # an extension's leak check at exit would take frozen objects for leaks
            self.health.close()
            self.pub.close()
            self.sub.close()
            stop_security(self.ctx)
            self.ctx.destroy(linger=1000)
            rfd.close()
            wfd.close()
            self.log.info("stopped", stop_ms=round((time.monotonic() - t0) * 1000, 1))
        return 0

    def _loop(self, rfd: socket.socket) -> None:
        while not self._stop:
            if self._hangup:
                self._hangup = False
                self._leave("SIGHUP")
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                due, seq, period, fn = heapq.heappop(self._timers)
                self.health.lag(now - due)
                try:
                    fn()
                except Exception:
                    self.count_error(
                        "timer failed", timer=getattr(fn, "__name__", "?"), exc_info=True
                    )
                if period >= 0:  # a negative period: a one-shot timer (``after``)
                    nxt = max(due + period, now)  # never catch up missed beats in a burst
                    heapq.heappush(self._timers, (nxt, seq, period, fn))
            # Round up: poll() takes whole milliseconds, and a sub-millisecond wait rounded
            # down to 0 would spin the CPU until the timer is due (ruinous on two cores).
            wait_s = self._timers[0][0] - time.monotonic() if self._timers else 1.0
            timeout_ms = max(0, math.ceil(wait_s * 1000))
            ready = self.poller.poll(timeout_ms)
            if len(ready) > 1:  # pipes (orders, intents, commands) before the bulk SUB stream
                ready.sort(key=lambda r: r[0] is self.sub.sock)
            for sock, _ in ready:
                if sock == rfd.fileno():
                    with contextlib.suppress(BlockingIOError):
                        rfd.recv(64)
                    continue
                handler = self._sockets.get(sock)
                if handler is None:  # removed by a handler before it in this round
                    continue
                try:
                    handler()
                except Exception:
                    self.count_error("socket handler failed", exc_info=True)


def _peer(frame: zmq.Frame) -> str:
    try:
        return str(frame.get("Peer-Address"))
    except (zmq.ZMQError, AttributeError):
        return "unknown"


def main(cls: type[Daemon]) -> None:
    """Entry point of a daemon process: exit code 2 on bad configuration."""
    private_umask()
    try:
        config = for_process()
        settings = config.settings
        _ = config.refdata, config.accounts  # a bad accounts.toml stops every daemon at once
    except (ConfigError, ValueError) as exc:
        print(f"{cls.name}: configuration error:\n{exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(
        cls.name, settings.log_dir, settings.logs.level, rotation=settings.logs.rotation()
    )
    lock = hold_instance_lock(cls.name, settings)
    parent = None
    if instance.supervised():
        # Until run() handles it, a parent-death SIGHUP must not kill us mid-setup; the
        # getppid() watch catches a death in that window.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        parent = instance.die_with_parent()
    daemon: Daemon | None = None
    try:
        daemon = cls(config)
        if parent is not None:
            daemon.watch_parent(parent)
        code = daemon.run()
    except Exception as exc:
        structlog.get_logger(cls.name).critical("daemon failed", exc_info=True)
        code = 1
        if daemon is None or not daemon.set_up:
            n = startguard.record_failure(
                cls.name, f"{type(exc).__name__}: {exc}", settings.state_dir / "startfail"
            )
            structlog.get_logger(cls.name).critical(
                "failed at start", failed_starts=n, gives_up_after=startguard.MAX_FAILED_STARTS
            )
    lock.release()
    sys.exit(code)


def hold_instance_lock(name: str, settings: Settings) -> instance.InstanceLock:
    """This checkout's lock for ``name``, or exit at once (code 3) naming its holder."""
    try:
        return instance.acquire(settings.state_dir, name)
    except instance.AlreadyRunningError as exc:
        structlog.get_logger(name).error("refused: already running", holder=exc.pid)
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(EXIT_ALREADY_RUNNING)
