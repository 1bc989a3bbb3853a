"""One daemon of the simulation: the ``Host`` its core runs on (``process/host.py``).

Everything a core asks for becomes an event of the seed's world: a published frame
goes onto the virtual bus (``simulation/bus.py``), a timer onto the heap, a wake-up
from "another thread" (a WebSocket client, a lane's worker) is an event at once, a
question to the router is answered by the router's core itself. A host is one
*incarnation*: when the daemon is killed its host dies with every event it had
scheduled, and a new host (a new pid) runs the new core.

A daemon blocked in a call (a broker's REST call on its loop, a question to a router
that does not answer) is **busy**: nothing else of it runs until the call's time is over
(``busy_until``), as in a real process.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from mytrading.messaging import wire
from mytrading.process.host import FrameSink
from mytrading.simulation.world import Crashed

# the ``SimStack`` (``simulation/stack.py``) that composes this part: typed loosely,
# so that no part imports the module that imports it
Sim = Any

if TYPE_CHECKING:
    from mytrading.process.base import Daemon

T = TypeVar("T")
RPC_RTT_S = 0.0004  # a question to the router and its answer, on loopback
CALL_S = 0.002  # a worker's batch handed over and collected, besides its calls' own time
HISTORY_SPACING_S = 0.35  # OpenAlgo's history pacing (``openalgo/paced.py``)
LOOP_NS = 1_000  # the least a daemon's loop takes to come back to a timer


class SimPusher:
    """A PUSH to a pipe: sent when the pipe's reader is up and connected (``IMMEDIATE``),
    else refused at once, as ZeroMQ refuses."""

    def __init__(self, host: SimHost, name: str, topic: str) -> None:
        self.host = host
        self.name = name
        self.topic = topic
        self.sent = 0
        self._seq = 0

    def send(self, msg: wire.Msg) -> bool:
        bus = self.host.stack.bus
        if not bus.pipe_ready(self.name):
            return False
        msg.src = self.host.name
        msg.seq = self._seq + 1
        msg.ts = self.host.stack.world.now_ns
        self._seq += 1
        self.sent += 1
        bus.push(self.host, self.name, wire.encode(self.topic, msg), msg)
        return True

    def close(self) -> None:
        """Nothing to close."""


class SimAsker:
    """Questions to the router answered later (risk's DEALER): the answer comes after a
    round trip; one not answered within ``timeout_s`` is answered None, with every other
    in flight, as ``bus.Asker`` gives up."""

    def __init__(
        self,
        host: SimHost,
        name: str,
        on_reply: Callable[[Hashable, wire.Msg | None], None],
        timeout_s: float,
    ) -> None:
        self.host = host
        self.name = name
        self.on_reply = on_reply
        self.timeout_s = timeout_s
        self.pending: collections.deque[tuple[Hashable, int]] = collections.deque()
        self.timeouts = 0
        self._n = 0

    def in_flight(self, tag: Hashable) -> bool:
        return any(t == tag for t, _ in self.pending)

    def ask(self, tag: Hashable, msg: wire.Msg) -> bool:
        stack = self.host.stack
        if self.in_flight(tag) or not stack.bus.serving(self.name):
            return False
        self._n += 1
        n = self._n
        self.pending.append((tag, n))
        raw = wire.encode_body(msg)
        world = stack.world

        def answered() -> None:
            reply = stack.bus.answer(self.name, raw)  # the router at its time of reading
            world.after(RPC_RTT_S / 2, lambda: self.host.run(lambda: self._deliver(n, reply)))

        world.after(RPC_RTT_S / 2, answered)
        self.host.after(self.timeout_s, lambda: self._expire(n))
        return True

    def _deliver(self, n: int, reply: bytes | None) -> None:
        if not self.pending or self.pending[0][1] != n:
            return  # given up on already
        tag, _ = self.pending.popleft()
        try:
            msg: wire.Msg | None = wire.decode_body(reply) if reply is not None else None
        except wire.WireError:
            msg = None
        self.on_reply(tag, msg)

    def _expire(self, n: int) -> None:
        if not any(k == n for _, k in self.pending):
            return
        given_up = list(self.pending)
        self.pending.clear()
        self.timeouts += 1
        for tag, _ in given_up:
            self.on_reply(tag, None)


class SimPending:
    """A worker's batch: done once its calls' time has passed."""

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        return self._result


class SimWorker:
    """A lane's worker thread: the batch's calls run at once (the broker acts now) and
    the batch is answered, and the loop woken, when their time is over."""

    def __init__(self, host: SimHost, on_done: Callable[[], None]) -> None:
        self.host = host
        self.on_done = on_done

    def submit(self, fn: Callable[[], T]) -> SimPending:
        pending = SimPending()
        stack = self.host.stack

        def run() -> None:
            if not self.host.alive:
                return
            with stack.calls.on_worker() as spent:
                pending._result = fn()
            stack.world.after(spent[0] + CALL_S, finish)

        def finish() -> None:
            pending._done = True
            self.host.run(self.on_done)

        stack.world.after(CALL_S / 2, run)
        return pending

    def close(self) -> None:
        """Nothing to join."""


class SimFetcher:
    """History calls off the loop, paced as OpenAlgo paces them, on virtual time."""

    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.calls = 0
        self._queued: dict[Hashable, Future[Any]] = {}
        self._next_ns = 0

    @property
    def pending(self) -> int:
        return len(self._queued)

    def submit(self, key: Hashable, fn: Callable[[], Any]) -> Future[Any]:
        fut = self._queued.get(key)
        if fut is not None and not fut.cancelled():
            return fut
        fut = Future()
        self._queued[key] = fut
        world = self.host.stack.world
        due = max(world.now_ns, self._next_ns)
        self._next_ns = due + int(HISTORY_SPACING_S * 1e9)

        def run() -> None:
            if not self.host.alive:
                return
            if fut.cancelled():  # given up by whoever asked (a first bar handed as it was)
                if self._queued.get(key) is fut:
                    self._queued.pop(key, None)
                return
            self.calls += 1
            with self.host.stack.calls.on_worker():
                try:
                    fut.set_result(fn())
                except Exception as exc:  # delivered to whoever waits on it
                    fut.set_exception(exc)
            if self._queued.get(key) is fut:  # not a later call of the same key
                self._queued.pop(key, None)

        world.at(due, run)
        return fut

    def close(self) -> None:
        for fut in self._queued.values():
            fut.cancel()
        self._queued.clear()


class SimHost:
    """The host of one incarnation of one daemon."""

    def __init__(self, stack: Sim, name: str, pid: int) -> None:
        self.stack = stack
        self.world = stack.world
        self.name = name
        self._pid = pid
        self.alive = True
        self.busy_until = 0
        self.core: Daemon | None = None
        self.published_n = 0
        self._seq: dict[str, int] = {}
        self.prefixes: list[str] = []
        self.sub_sink: FrameSink | None = None
        self._pokes: set[int] = set()

    # ------------------------------------------------------------ running its events

    def run(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` as this daemon's loop would: not if it is dead, later if it is
        busy, a failure counted as its loop counts one."""
        if not self.alive:
            return
        if self.world.now_ns < self.busy_until:
            self.world.at(self.busy_until, lambda: self.run(fn))
            return
        stack = self.stack
        before, stack.current = stack.current, self
        try:
            fn()
        except Exception:
            if self.core is not None:
                self.core.count_error("socket handler failed", exc_info=True)
        finally:
            stack.current = before

    def busy(self, seconds: float) -> None:
        """The daemon's loop is held for ``seconds`` from now (a call it waited for)."""
        until = self.world.now_ns + int(seconds * 1e9)
        self.busy_until = max(self.busy_until, until)

    # ------------------------------------------------------------------ the Host

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def published(self) -> int:
        return self.published_n

    def publish(self, topic: str, msg: wire.Msg) -> None:
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        msg.src = self.name
        msg.seq = seq
        msg.ts = self.world.now_ns
        self.published_n += 1
        self.stack.bus.publish(self, topic, wire.encode(topic, msg), msg)

    def subscribe(self, prefix: str) -> None:
        if prefix not in self.prefixes:
            self.prefixes.append(prefix)
            self.stack.bus.subscribed(self, prefix)

    def on_sub(self, sink: FrameSink, prefixes: tuple[str, ...]) -> None:
        self.sub_sink = sink
        self.prefixes = list(prefixes)
        self.stack.bus.resubscribed(self)

    def read_sub_now(self) -> bool:
        return self.stack.bus.deliver_due(self)

    def pipe_in(self, name: str, sink: FrameSink, then: Callable[[], None] | None) -> None:
        self.stack.bus.bind_pipe(name, self, sink, then)

    def pipe_out(self, name: str, topic: str) -> SimPusher:
        return SimPusher(self, name, topic)

    def serve(self, name: str, answer: Callable[[bytes], bytes]) -> None:
        self.stack.bus.bind_rpc(name, self, answer)

    def request(self, name: str, msg: wire.Msg, timeout_ms: int = 2000) -> wire.Msg | None:
        """A question waited for: the loop is held for its round trip (or its timeout)."""
        stack = self.stack
        reply = stack.bus.answer(name, wire.encode_body(msg), asker=self)
        if reply is None:
            self.busy(timeout_ms / 1000)
            stack.trace_event("rpc", f"{self.name} {type(msg).__name__} unanswered")
            return None
        self.busy(RPC_RTT_S)
        try:
            return wire.decode_body(reply)
        except wire.WireError:
            return None

    def asker(
        self,
        name: str,
        on_reply: Callable[[Hashable, wire.Msg | None], None],
        timeout_s: float = 3.0,
    ) -> SimAsker:
        return SimAsker(self, name, on_reply, timeout_s)

    def every(self, seconds: float, fn: Callable[[], None], first_in: float | None = None) -> None:
        world = self.world
        period_ns = int(seconds * 1e9)

        def fire(due: int) -> None:
            if not self.alive:
                return
            self.run(fn)
            now = world.now_ns
            nxt = max(due + period_ns, now)  # never catch up missed beats in a burst
            world.at(nxt, lambda: fire(nxt))

        first = world.now_ns + int((seconds if first_in is None else first_in) * 1e9)
        world.at(first, lambda: fire(first))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        # A timer set by code that ran after a blocking call counts from the call's end,
        # as the real loop's clock would read then: the simulated call holds the loop
        # (``busy``) but runs the code after it at the call's start. Counted from the
        # start, a retry shorter than the call's timeout fell inside the held span and
        # ran first at its end, asking (and holding the loop) again, for ever: a daemon
        # asking a dead peer never got to notice it was dead.
        # A loop's turn takes time: never sooner than a microsecond (a wait computed as a
        # rounding error above zero must not come back at the same instant for ever).
        start = max(self.world.now_ns, self.busy_until)
        self.world.at(start + max(int(seconds * 1e9), LOOP_NS), lambda: self.run(fn))

    def wakeup(self, fn: Callable[[], None]) -> Callable[[], None]:
        key = id(fn)

        def fire() -> None:
            self._pokes.discard(key)
            self.run(fn)

        def poke() -> None:
            if key not in self._pokes:
                self._pokes.add(key)
                self.world.after(0, fire)

        return poke

    def worker(self, name: str, on_done: Callable[[], None]) -> SimWorker:
        return SimWorker(self, on_done)

    def fetcher(self, name: str) -> SimFetcher:
        return SimFetcher(self)

    def transport(self, url: str) -> Any:
        return self.stack.venue.transport(url, self)

    def start_ws(self, client: Any) -> None:
        self.stack.venue.connect_ws(client, self)

    def health(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        self.stack.stop_daemon(self.name)

    def crash(self, code: int) -> NoReturn:
        self.stack.trace_event("fault", f"{self.name} crashed (exit {code})")
        self.stack.crashed(self.name)
        raise Crashed(self.name)
