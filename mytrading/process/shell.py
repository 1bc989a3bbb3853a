"""The shell every daemon process runs in: ZeroMQ sockets, one poller, signals, threads
and the machine's clocks, around the daemon's core (``process/base.py``).

One thread, one ``zmq.Poller``: the loop blocks until a socket is readable or the next
timer is due (busy polling ruins latency on two cores). SIGTERM/SIGINT wake the poller
through a self-pipe, so a stop begins at once and finishes well inside 5 seconds. Another
thread (a broker lane's worker, a WebSocket client, the webhook server) wakes the loop
through a socket pair of its own (``wakeup``).

A daemon holds its checkout's lock (``process/instance.py``) from before it binds a socket
until it exits, so a second copy refuses at once. Under supervisord it also stops when its
supervisor dies (a parent-death SIGHUP, and a ``getppid()`` watch behind it): the same
orderly stop as SIGTERM, staggered producers first (``STOP_ORDER``) so the router and the
broker stop last, with nothing new arriving while they finish.

``main`` is where a daemon's process is composed: the stack's configuration
(``config.py``: ``StackConfig``) is loaded here, not by the core, and the core is handed
its settings, the reference data, the accounts and what its daemon's entry point asks
for besides (``compose``).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import math
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

import structlog
import zmq

from mytrading import compiled, hosttime
from mytrading.config import StackConfig, for_process
from mytrading.messaging import bus, wire
from mytrading.messaging.bus import DAEMONS, Publisher, Puller, Pusher, Subscriber, stop_security
from mytrading.messaging.curve import secure_bus
from mytrading.openalgo.paced import PacedFetcher
from mytrading.process import instance, prestart, startguard
from mytrading.process.base import Daemon
from mytrading.process.health import ProcessHealth
from mytrading.process.host import FrameSink
from mytrading.process.logsetup import setup_logging
from mytrading.process.rundir import private_umask
from mytrading.settings import ConfigError, Settings

T = TypeVar("T")

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
ASK_EXPIRE_S = 0.5  # how often unanswered questions are looked at


def stop_delay(name: str) -> float:
    """How long ``name`` waits, once its supervisor is gone, before its orderly stop."""
    return (STOP_ORDER.index(name) if name in STOP_ORDER else 0) * STOP_STAGGER_S


class ThreadWorker:
    """One thread for a lane's broker calls; the loop is woken when a batch is done (and
    not by a batch the loop's own thread ran)."""

    def __init__(self, name: str, poke: Callable[[], None]) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._poke = poke
        self._loop_thread = threading.get_ident()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        fut = self._pool.submit(fn)
        # Only once the future holds the answers (a wake-up sent from inside the call
        # could reach the loop before they are there, and none would follow).
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _: Future[Any]) -> None:
        if threading.get_ident() != self._loop_thread:  # else the loop collects it next
            self._poke()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class AskerHandle:
    """``bus.Asker`` on the loop: its socket registered, and questions left unanswered
    given up (``None`` to their asker) with a fresh socket swapped in."""

    def __init__(self, host: ZmqHost, asker: bus.Asker) -> None:
        self.host = host
        self.asker = asker
        host.add_socket(asker.sock, asker.readable)
        host.every(ASK_EXPIRE_S, self._expire)

    @property
    def timeouts(self) -> int:
        return self.asker.timeouts

    def ask(self, tag: Hashable, msg: wire.Msg) -> bool:
        return self.asker.ask(tag, msg)

    def in_flight(self, tag: Hashable) -> bool:
        return self.asker.in_flight(tag)

    def _expire(self) -> None:
        old = self.asker.expire()
        if old is not None:
            self.host.remove_socket(old)
            old.close(0)
            self.host.add_socket(self.asker.sock, self.asker.readable)


class ZmqHost:
    """A daemon's host in its own process (``process/host.py``)."""

    def __init__(self, name: str, settings: Settings, pub_hwm: int, sub_hwm: int) -> None:
        self.name = name
        self.settings = settings
        self.sub_hwm = sub_hwm
        self.log = structlog.get_logger(name)
        self.endpoints = settings.endpoints()
        self.ctx: zmq.Context[Any] = zmq.Context()
        # tcp: CURVE, this daemon's key (a missing or loose key stops the start: ConfigError)
        self.curve = secure_bus(settings, name, self.log.warning)
        self.pub = Publisher(self.ctx, self.endpoints.pub(name), name, pub_hwm)
        self.sub: Subscriber | None = None
        self._sub_sink: FrameSink | None = None
        self.poller = zmq.Poller()
        self._sockets: dict[Any, Callable[[], None]] = {}
        self._timers: list[tuple[float, int, float, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._stop = False
        self._hangup = False  # SIGHUP: the supervisor (or the terminal) is gone
        self._leaving = False
        self._parent_pid: int | None = None
        self._closers: list[Callable[[], None]] = []
        # CPU, RSS, files, loop lag, GC pauses, free disk: each beat
        self._health = ProcessHealth([settings.state_dir, settings.log_dir])
        # which build this process runs, and of which sources (``main.py status`` says a
        # daemon started before a change or a rebuild)
        self._build = {"build": compiled.build(), "build_of": compiled.sources()[:12]}

    # ----------------------------------------------------------------- the Host

    @property
    def pid(self) -> int:
        return os.getpid()

    @property
    def published(self) -> int:
        return self.pub.sent

    def publish(self, topic: str, msg: wire.Msg) -> None:
        self.pub.publish(topic, msg)

    def subscribe(self, prefix: str) -> None:
        assert self.sub is not None
        self.sub.subscribe(prefix)

    def on_sub(self, sink: FrameSink, prefixes: tuple[str, ...]) -> None:
        others = [d for d in DAEMONS if d != self.name]
        self.sub = Subscriber(
            self.ctx, [self.endpoints.pub(d) for d in others], prefixes, self.sub_hwm
        )
        self._sub_sink = sink
        self.add_socket(self.sub.sock, self._on_sub_readable)

    def read_sub_now(self) -> bool:
        assert self.sub is not None
        if not self.sub.sock.poll(0):
            return False
        self._on_sub_readable()
        return True

    def pipe_in(self, name: str, sink: FrameSink, then: Callable[[], None] | None) -> None:
        puller = Puller(self.ctx, self.endpoints[name])
        self._closers.append(lambda: puller.close())

        def readable() -> None:
            self._drain(puller.sock, sink, name)
            if then is not None:
                then()

        self.add_socket(puller.sock, readable)

    def pipe_out(self, name: str, topic: str) -> Pusher:
        pusher = Pusher(self.ctx, self.endpoints[name], self.name, topic)
        self._closers.append(pusher.close)
        return pusher

    def serve(self, name: str, answer: Callable[[bytes], bytes]) -> None:
        rep = self.ctx.socket(zmq.REP)
        rep.setsockopt(zmq.LINGER, 0)
        rep.setsockopt(zmq.MAXMSGSIZE, bus.RPC_REQUEST_MAX_MSG)
        bus.bind(rep, self.endpoints[name])
        self._closers.append(lambda: rep.close(0))

        def readable() -> None:
            try:
                raw = rep.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            rep.send(answer(raw))

        self.add_socket(rep, readable)

    def request(self, name: str, msg: wire.Msg, timeout_ms: int = 2000) -> wire.Msg | None:
        return bus.request(self.ctx, self.endpoints[name], msg, timeout_ms)

    def asker(
        self,
        name: str,
        on_reply: Callable[[Hashable, wire.Msg | None], None],
        timeout_s: float = 3.0,
    ) -> AskerHandle:
        asker = bus.Asker(self.ctx, self.endpoints[name], on_reply, timeout_s)
        self._closers.append(lambda: asker.close())
        return AskerHandle(self, asker)

    def every(self, seconds: float, fn: Callable[[], None], first_in: float | None = None) -> None:
        due = hosttime.monotonic() + (seconds if first_in is None else first_in)
        heapq.heappush(self._timers, (due, next(self._timer_seq), seconds, fn))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        due = hosttime.monotonic() + seconds
        heapq.heappush(self._timers, (due, next(self._timer_seq), -1.0, fn))

    def wakeup(self, fn: Callable[[], None]) -> Callable[[], None]:
        rfd, wfd = socket.socketpair()
        rfd.setblocking(False)
        wfd.setblocking(False)
        self._closers += [rfd.close, wfd.close]

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                while rfd.recv(4096):
                    continue  # every wake-up byte: the state, not the bytes, says what to do
            fn()

        self.add_socket(rfd.fileno(), readable)

        def poke() -> None:
            with contextlib.suppress(BlockingIOError, OSError):  # full: the loop is awake
                wfd.send(b"\0")

        return poke

    def worker(self, name: str, on_done: Callable[[], None]) -> ThreadWorker:
        return ThreadWorker(name, self.wakeup(on_done))

    def fetcher(self, name: str) -> PacedFetcher:
        return PacedFetcher(name=name)

    def transport(self, url: str) -> None:
        return None  # the network

    def start_ws(self, client: Any) -> None:
        client.start()

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"health": self._health.sample(), **self._build}
        if self.curve is not None:  # connections the bus's ZAP handler refused (CURVE)
            out["bus_refused"] = self.curve.admit.refused
        return out

    def stop(self) -> None:
        self._stop = True

    def crash(self, code: int) -> NoReturn:
        os._exit(code)

    # ------------------------------------------------------------------ the loop

    def add_socket(self, sock: Any, callback: Callable[[], None]) -> None:
        self.poller.register(sock, zmq.POLLIN)
        self._sockets[sock] = callback

    def remove_socket(self, sock: Any) -> None:
        """Stop polling ``sock`` (the caller closes it)."""
        self.poller.unregister(sock)
        self._sockets.pop(sock, None)

    def watch_parent(self, parent_pid: int) -> None:
        """Stop in order when ``parent_pid`` (our supervisor) is no longer our parent."""
        self._parent_pid = parent_pid

    def _on_sub_readable(self) -> None:
        assert self.sub is not None and self._sub_sink is not None
        self._drain(self.sub.sock, self._sub_sink, "bus")

    @staticmethod
    def _drain(sock: Any, sink: FrameSink, via: str) -> None:
        """Hand ``sink`` what is waiting on the socket ``via``, in bounded batches so
        timers still run under load. Read as bytes (``FrameSink``)."""
        recv = sock.recv
        for _ in range(1000):
            try:
                raw = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            sink(raw, via)

    def _leave(self, core: Daemon, why: str) -> None:
        """Our supervisor is gone: stop after our rank's delay, as on SIGTERM."""
        if self._leaving:
            return
        self._leaving = True
        delay = stop_delay(self.name)
        self.log.warning("supervisor gone, stopping", why=why, in_s=delay)
        self.after(delay, self.stop)

    def run(self, core: Daemon, config: StackConfig) -> int:
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
                      config=config.fingerprint())  # fmt: skip
        # where every value came from (environment, .env, default; each file's digest)
        self.log.info("configuration", **config.provenance())
        if self._parent_pid is not None:
            parent = self._parent_pid

            def watch() -> None:
                if instance.parent_gone(parent):
                    self._leave(core, f"parent {parent} exited")

            self.every(self.settings.liveness.heartbeat_s / 2, watch)
        try:
            core.start()
            startguard.clear(self.name, self.settings.state_dir / "startfail")
            # Everything alive now (imported modules: numba, numpy, pandas, duckdb; config;
            # the journal replayed) lives as long as the process. Frozen, a full collection
            # no longer walks it: 60-110 ms pauses of the router and the feed at 1,000
            # orders/s became the stack's p99 (bench/latency.py).
            prestart.settled()  # the collector back on (off since the daemon's first line)
            self._loop(core, rfd)
        finally:
            t0 = hosttime.monotonic()
            try:
                core.finish()
            except Exception:
                self.log.exception("teardown failed")
            signal.set_wakeup_fd(-1)
            gc.unfreeze()  # an extension's leak check at exit would take frozen objects for leaks
            self._health.close()
            for close in reversed(self._closers):
                with contextlib.suppress(Exception):
                    close()
            self.pub.close()
            if self.sub is not None:
                self.sub.close()
            stop_security(self.ctx)
            self.ctx.destroy(linger=1000)
            rfd.close()
            wfd.close()
            self.log.info("stopped", stop_ms=round((hosttime.monotonic() - t0) * 1000, 1))
        return 0

    def _loop(self, core: Daemon, rfd: socket.socket) -> None:
        while not self._stop:
            if self._hangup:
                self._hangup = False
                self._leave(core, "SIGHUP")
            now = hosttime.monotonic()
            while self._timers and self._timers[0][0] <= now:
                due, seq, period, fn = heapq.heappop(self._timers)
                self._health.lag(now - due)
                fn()  # the core guards its own timers (``Daemon.every``)
                if period >= 0:  # a negative period: a one-shot timer (``after``)
                    nxt = max(due + period, now)  # never catch up missed beats in a burst
                    heapq.heappush(self._timers, (nxt, seq, period, fn))
            # Round up: poll() takes whole milliseconds, and a sub-millisecond wait rounded
            # down to 0 would spin the CPU until the timer is due (ruinous on two cores).
            wait_s = self._timers[0][0] - hosttime.monotonic() if self._timers else 1.0
            timeout_ms = max(0, math.ceil(wait_s * 1000))
            ready = self.poller.poll(timeout_ms)
            if len(ready) > 1:  # pipes (orders, intents, commands) before the bulk SUB stream
                sub = self.sub.sock if self.sub is not None else None
                ready.sort(key=lambda r: r[0] is sub)
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
                    core.count_error("socket handler failed", exc_info=True)


Compose = Callable[[StackConfig], dict[str, Any]]


def main(cls: type[Daemon], compose: Compose | None = None) -> None:
    """Entry point of a daemon process: the configuration loaded and composed here, the
    core made on its shell and run; exit code 2 on bad configuration. ``compose`` gives
    what the daemon's core takes besides its settings, reference data and accounts."""
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
        host = ZmqHost(cls.name, settings, cls.pub_hwm, cls.sub_hwm)
        if parent is not None:
            host.watch_parent(parent)
        extra = compose(config) if compose is not None else {}
        daemon = cls(host, settings, config.refdata, config.accounts, **extra)
        code = host.run(daemon, config)
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
