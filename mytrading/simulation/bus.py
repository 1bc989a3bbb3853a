"""The simulation's bus: ZeroMQ's PUB/SUB, PUSH/PULL and REQ/REP as the daemons see
them, on virtual time, with the faults a real bus can bring.

* **PUB/SUB**: a frame goes to every live subscriber whose prefixes match its topic
  (ZeroMQ's prefix match; an exact topic ends in a space), each over its own channel.
  A channel (one publisher to one subscriber) keeps its order, as a ZeroMQ connection
  does; channels interleave by their latencies, so frames from two publishers arrive in
  any order (``reorder`` widens that).
* **PUSH/PULL**: a pipe has one reader (the daemon that binds it). A send while it is
  down, or before a restarted reader is connected again, is refused at once
  (``IMMEDIATE``); frames queued to a reader that dies are gone with it.
* **REQ/REP**: the router's core answers at once when it is up and not busy; else the
  asker waits out its timeout.

Faults (``simulation/faults.py`` turns them on and off): a subscriber's frames **lost**
(a SUB queue over its high-water mark) or **duplicated**, a channel **delayed** (a busy
reader), frames **reordered** across channels (jitter), a router that does not answer.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mytrading.messaging import wire
from mytrading.process.host import FrameSink
from mytrading.simulation.world import Crashed

# the ``SimStack`` (``simulation/stack.py``) that composes this part: typed loosely,
# so that no part imports the module that imports it
Sim = Any

if TYPE_CHECKING:
    from mytrading.simulation.host import SimHost

BASE_LATENCY_NS = 60_000  # a frame across loopback ipc
JITTER_NS = 60_000
RECONNECT_NS = 100_000_000  # ZMQ_RECONNECT_IVL: a connecting end finds a restarted peer
QUIET_TOPICS = (  # left out of the trace: most of a day, and little a failure needs
    "md.",
    "sys.status.",
    "ctl.interest.",
    "exec.position.",
    "exec.funds",
    "exec.margin",
)


@dataclass
class BusFaults:
    """What is wrong with the bus now (each a probability per frame, or seconds)."""

    lose: float = 0.0  # a subscriber's frame dropped
    dup: float = 0.0  # a subscriber's frame delivered twice
    delay_s: float = 0.0  # every channel held this much longer
    reorder_s: float = 0.0  # extra jitter per frame: channels interleave more
    rpc_lost: float = 0.0  # a question to the router gets no answer

    def any(self) -> bool:
        return bool(self.lose or self.dup or self.delay_s or self.reorder_s or self.rpc_lost)


class Channel:
    """Frames from one sender to one incarnation of a reader, in order."""

    __slots__ = ("dst", "last_due", "peer", "q", "scheduled", "sink", "then")

    def __init__(
        self, src: str, dst: SimHost, sink: FrameSink, then: Callable[[], None] | None
    ) -> None:
        self.peer = src  # who sent its frames (a malformed frame's log line names it)
        self.dst = dst
        self.sink = sink
        self.then = then
        self.q: collections.deque[tuple[int, bytes]] = collections.deque()
        self.scheduled = False
        self.last_due = 0


class SimBus:
    def __init__(self, stack: Sim, rng: random.Random) -> None:
        self.stack = stack
        self.world = stack.world
        self.rng = rng
        self.faults = BusFaults()
        self.hosts: dict[str, SimHost] = {}  # the live incarnation of each daemon
        self._channels: dict[tuple[str, int, str], Channel] = {}
        self._match: dict[int, dict[str, bool]] = {}  # per reader: topic -> subscribed
        self._pipes: dict[str, tuple[SimHost, FrameSink, Callable[[], None] | None, int]] = {}
        self._rpc: dict[str, tuple[SimHost, Callable[[bytes], bytes]]] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.observers: list[Callable[[SimHost, str, wire.Msg], None]] = []
        self.pipe_observers: list[Callable[[SimHost, str, wire.Msg], None]] = []

    # ---------------------------------------------------------------- membership

    def join(self, host: SimHost) -> None:
        self.hosts[host.name] = host
        self._match[id(host)] = {}

    def leave(self, host: SimHost) -> None:
        """A daemon died: what was queued to it is gone, its pipes and REP unbound."""
        if self.hosts.get(host.name) is host:
            del self.hosts[host.name]
        self._match.pop(id(host), None)
        for key in [k for k, ch in self._channels.items() if ch.dst is host]:
            del self._channels[key]
        for name in [n for n, b in self._pipes.items() if b[0] is host]:
            del self._pipes[name]
        for name in [n for n, b in self._rpc.items() if b[0] is host]:
            del self._rpc[name]

    def resubscribed(self, host: SimHost) -> None:
        self._match[id(host)] = {}

    def subscribed(self, host: SimHost, prefix: str) -> None:
        """One prefix more: the topics it matches are taken, the rest stay as matched (an
        engine subscribes instrument by instrument; starting over cost a scan of every
        prefix for every topic again)."""
        match = self._match.get(id(host))
        if match is None:
            return
        for topic, hit in match.items():
            if not hit and (topic + " ").startswith(prefix):
                match[topic] = True

    # ------------------------------------------------------------------- PUB/SUB

    def publish(self, src: SimHost, topic: str, raw: bytes, msg: wire.Msg) -> None:
        for obs in self.observers:
            obs(src, topic, msg)
        quiet = topic.startswith(QUIET_TOPICS)
        if not quiet:
            self.stack.trace_event("pub", f"{src.name} {topic} {_key(msg)}")
        faults = self.faults
        key = topic + " "
        for dst in self.hosts.values():
            if dst is src or dst.sub_sink is None:
                continue
            match = self._match[id(dst)]
            hit = match.get(topic)
            if hit is None:
                hit = match[topic] = any(key.startswith(p) for p in dst.prefixes)
            if not hit:
                continue
            if faults.lose and self.rng.random() < faults.lose:
                self.counts["bus_lost"] += 1
                if not quiet:
                    self.stack.trace_event("fault", f"bus lost {topic} to {dst.name}")
                continue
            ch = self._channel(src.name, dst, "sub", dst.sub_sink, None)
            self._enqueue(ch, raw)
            if faults.dup and self.rng.random() < faults.dup:
                self.counts["bus_duplicated"] += 1
                self._enqueue(ch, raw)

    def deliver_due(self, dst: SimHost) -> bool:
        """What has reached ``dst``'s SUB by now, handed over now (``read_sub_now``)."""
        now = self.world.now_ns
        got = False
        for (_, _, kind), ch in list(self._channels.items()):
            if ch.dst is not dst or kind != "sub":
                continue
            while ch.q and ch.q[0][0] <= now:
                _, raw = ch.q.popleft()
                ch.sink(raw, ch.peer)
                got = True
        return got

    # ------------------------------------------------------------------- PUSH/PULL

    def bind_pipe(
        self, name: str, host: SimHost, sink: FrameSink, then: Callable[[], None] | None
    ) -> None:
        self._pipes[name] = (host, sink, then, self.world.now_ns + RECONNECT_NS)

    def pipe_ready(self, name: str) -> bool:
        bound = self._pipes.get(name)
        return bound is not None and bound[0].alive and self.world.now_ns >= bound[3]

    def push(self, src: SimHost, name: str, raw: bytes, msg: wire.Msg) -> None:
        dst, sink, then, _ = self._pipes[name]
        for obs in self.pipe_observers:
            obs(src, name, msg)
        self.stack.trace_event("push", f"{src.name} {name} {_key(msg)}")
        self._enqueue(self._channel(src.name, dst, name, sink, then), raw)

    # ------------------------------------------------------------------- REQ/REP

    def bind_rpc(self, name: str, host: SimHost, answer: Callable[[bytes], bytes]) -> None:
        self._rpc[name] = (host, answer)

    def serving(self, name: str) -> bool:
        bound = self._rpc.get(name)
        return bound is not None and bound[0].alive

    def answer(self, name: str, raw: bytes, asker: SimHost | None = None) -> bytes | None:
        """The server's answer now, or None: down, busy past a question's patience, or
        the question lost (a fault)."""
        bound = self._rpc.get(name)
        if bound is None or not bound[0].alive:
            return None
        server, answer = bound
        if server.busy_until > self.world.now_ns + 1_500_000_000:
            return None
        if self.faults.rpc_lost and self.rng.random() < self.faults.rpc_lost:
            self.counts["rpc_lost"] += 1
            self.stack.trace_event("fault", f"rpc lost {name} from {asker.name if asker else '?'}")
            return None
        stack = self.stack
        before, stack.current = stack.current, server
        try:
            return answer(raw)
        except Crashed:  # it died answering: the asker waits out its timeout
            return None
        except Exception:
            if server.core is not None:
                server.core.count_error("socket handler failed", exc_info=True)
            return None
        finally:
            stack.current = before

    # ---------------------------------------------------------------- channels

    def _channel(
        self, src: str, dst: SimHost, kind: str, sink: FrameSink, then: Callable[[], None] | None
    ) -> Channel:
        key = (src, id(dst), kind)
        ch = self._channels.get(key)
        if ch is None:
            ch = self._channels[key] = Channel(src, dst, sink, then)
        return ch

    def _enqueue(self, ch: Channel, raw: bytes) -> None:
        now = self.world.now_ns
        f = self.faults
        due = now + BASE_LATENCY_NS + int(self.rng.random() * JITTER_NS)
        if f.delay_s:
            due += int(f.delay_s * 1e9)
        if f.reorder_s:
            due += int(self.rng.random() * f.reorder_s * 1e9)
        due = max(due, ch.last_due)  # one connection keeps its order
        ch.last_due = due
        ch.q.append((due, raw))
        if not ch.scheduled:
            ch.scheduled = True
            self.world.at(due, lambda: self._drain(ch))

    def _drain(self, ch: Channel) -> None:
        ch.scheduled = False
        dst = ch.dst
        if not dst.alive:
            ch.q.clear()
            return
        now = self.world.now_ns
        if now < dst.busy_until:  # its loop is held: the frames wait in its socket
            ch.scheduled = True
            self.world.at(dst.busy_until, lambda: self._drain(ch))
            return
        stack = self.stack
        before, stack.current = stack.current, dst
        try:
            n = 0
            while ch.q and ch.q[0][0] <= now and n < 1000:
                _, raw = ch.q.popleft()
                ch.sink(raw, ch.peer)
                n += 1
                if not dst.alive:
                    ch.q.clear()
                    return
            if ch.then is not None and n:
                ch.then()
        finally:
            stack.current = before
        if ch.q and not ch.scheduled:
            ch.scheduled = True
            self.world.at(max(ch.q[0][0], now), lambda: self._drain(ch))


def _key(msg: wire.Msg) -> str:
    """A message in a trace line: its kind and the ids that tell it apart."""
    if isinstance(msg, wire.Fill):
        return f"fill#{msg.fill_no} {msg.order_id} {msg.action} {msg.quantity}@{msg.price}"
    if isinstance(msg, wire.OrderUpdate):
        return f"update {msg.order_id or msg.intent_id} {msg.status} {msg.filled_qty}"
    if isinstance(msg, wire.Order):
        return f"order {msg.order_id} {msg.op} {msg.action} {msg.quantity} {msg.symbol}"
    if isinstance(msg, wire.RiskEvent):
        return f"risk {msg.kind} {msg.strategy} {msg.intent_id} {msg.rule}"
    if isinstance(msg, wire.Command):
        return f"command {msg.command} {msg.value} {msg.target}"
    if isinstance(msg, wire.ReconEvent):
        return f"recon {msg.kind} {msg.symbol} {msg.ours} {msg.broker}"
    intent_id = getattr(msg, "intent_id", "")
    return f"{type(msg).__name__} {intent_id}".strip()
