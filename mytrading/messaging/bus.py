"""The message bus: the endpoint map and thin, measured wrappers over ZeroMQ sockets.

Socket policy (each choice is deliberate; docs/architecture.md explains them):

* Every daemon binds one PUB socket (``pub.<daemon>``) and publishes all its topics there.
  Readers connect one SUB socket to every publisher they need.
* PUB drops for a subscriber whose queue is full. Market data may be dropped under
  overload (``MD_HWM``), and the per-topic sequence number makes the loss visible as a
  gap. Execution and risk events must never be dropped, so their publishers use
  ``EVENT_HWM`` = 0 (no limit): their volume is bounded by the order rate limits.
* PUSH/PULL pipes (intents, approved orders, commands) are connected with
  ``IMMEDIATE`` so nothing queues towards a peer that is not there, and sent with
  ``NOBLOCK``: when the peer is down the sender learns it at once (``send`` returns
  False) and keeps the message in its own bounded queue instead of losing it in a
  socket buffer.
* Every receiving socket has a maximum message size (``MAXMSGSIZE``) suited to what it
  carries: ZeroMQ drops a larger frame (and the connection that sent it) before
  allocating it, so one 300 MB frame cannot grow a daemon by 300 MB.
* Over tcp every socket uses CURVE (``messaging/curve.py``): encrypted, and a ZAP handler
  admits only the stack's own keys, each only where it has business (``use_curve``).
* No ``sleep`` covers the slow-joiner problem: a daemon treats a peer as reachable only
  after it has *received* that peer's heartbeat, which proves the subscription is live.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zmq

from mytrading import hosttime
from mytrading.messaging import wire

DAEMONS: tuple[str, ...] = (
    "feed",
    "engine",
    "risk",
    "router",
    "reconciler",
    "signals",
    "monitor",
)
PIPES: tuple[str, ...] = ("pipe.intents", "pipe.orders", "pipe.commands", "rpc.router")
# pub.signals and pub.monitor came later: last, so with tcp every other endpoint keeps
# its port number
LATER = ("signals", "monitor")
ENDPOINT_NAMES: tuple[str, ...] = (
    *(f"pub.{d}" for d in DAEMONS if d not in LATER),
    *PIPES,
    *(f"pub.{d}" for d in LATER),
    "pipe.interest",  # to the feed: what a tool (the chain view) wants quoted
)

MD_HWM = 100_000  # ticks queued per slow subscriber before PUB drops (gap counted)
EVENT_HWM = 0  # execution/risk/status: never drop
PIPE_HWM = 10_000  # intents/orders queued towards a connected peer
# Largest frame each kind of receiving socket accepts (bytes)
SUB_MAX_MSG = 8 << 20  # ticks, bars, statuses, position snapshots
PIPE_MAX_MSG = 4 << 20  # intents, orders, commands, interest lists
RPC_REQUEST_MAX_MSG = 64 << 10  # a query to the router
RPC_REPLY_MAX_MSG = 256 << 20  # the router's answer: a whole day of fills at most

# pyzmq's generics: a socket whose frames are bytes, and the context that makes them
Sock = zmq.Socket[Any]
Ctx = zmq.Context[Any]


class Security(Protocol):
    """What ``bind`` and ``connect`` ask of the bus's security (``buscurve.CurveBus``)."""

    def server(self, sock: Sock, endpoint: str) -> None: ...
    def client(self, sock: Sock, endpoint: str) -> None: ...
    def stop(self, ctx: Ctx) -> None: ...


_security: Security | None = None


def use_curve(security: Security | None) -> None:
    """From now on, this process's tcp sockets use ``security`` (None: plain)."""
    global _security
    _security = security


def stop_security(ctx: Ctx) -> None:
    """Before a context is destroyed: stop its ZAP handler (it holds a socket)."""
    if _security is not None:
        _security.stop(ctx)


@dataclass(frozen=True)
class EndpointMap:
    """Where every socket lives. ipc in a private directory by default; tcp on request."""

    endpoints: dict[str, str]

    @classmethod
    def build(
        cls,
        transport: str,
        run_dir: str,
        host: str = "127.0.0.1",
        base_port: int = 7100,
        overrides: dict[str, str] | None = None,
    ) -> EndpointMap:
        eps: dict[str, str] = {}
        for i, name in enumerate(ENDPOINT_NAMES):
            if transport == "ipc":
                eps[name] = f"ipc://{os.path.join(run_dir, name)}.sock"
            else:
                eps[name] = f"tcp://{host}:{base_port + i}"
        eps.update(overrides or {})
        unknown = set(eps) - set(ENDPOINT_NAMES)
        if unknown:
            raise ValueError(f"unknown bus endpoint names: {sorted(unknown)}")
        return cls(eps)

    def __getitem__(self, name: str) -> str:
        return self.endpoints[name]

    def pub(self, daemon: str) -> str:
        return self.endpoints[f"pub.{daemon}"]


@dataclass
class SequenceTracker:
    """Per (publisher, topic) sequence check: counts missing messages and restarts."""

    last: dict[tuple[str, str], int] = field(default_factory=dict)
    gaps: int = 0
    restarts: int = 0

    def check(self, src: str, topic: str, seq: int) -> int:
        key = (src, topic)
        prev = self.last.get(key)
        self.last[key] = seq
        if prev is None:
            return 0  # first message seen from this stream: nothing to compare
        if seq == prev + 1:
            return 0
        if seq <= prev:
            self.restarts += 1  # the publisher restarted and counts from 1 again
            return 0
        missing = seq - prev - 1
        self.gaps += missing
        return missing


class Publisher:
    """A bound PUB socket that stamps the header of everything it sends."""

    def __init__(self, ctx: Ctx, endpoint: str, src: str, hwm: int = EVENT_HWM) -> None:
        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        bind(self.sock, endpoint)
        self.src = src
        self._seq: dict[str, int] = {}
        self.sent = 0

    def publish(self, topic: str, msg: wire.Msg) -> None:
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        msg.src = self.src
        msg.seq = seq
        msg.ts = hosttime.time_ns()
        self.sock.send(wire.encode(topic, msg), zmq.NOBLOCK)
        self.sent += 1

    def close(self) -> None:
        self.sock.close(0)


class Subscriber:
    """A SUB socket connected to many publishers, with strict decoding and gap counting."""

    def __init__(
        self,
        ctx: Ctx,
        endpoints: Iterable[str],
        prefixes: Iterable[str],
        hwm: int = MD_HWM,
    ) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        # A subscription travels to each publisher as a message on the socket's outgoing
        # pipe, and ZeroMQ drops it, silently, where that pipe holds its high-water mark
        # (1,000 by default): an engine whose strategies asked for 2,041 instruments' ticks
        # and bars at once got the first ~500 instruments and never a tick of the rest
        # (bench/scale.py, 2026-11-28). The pipe carries nothing else upstream: no bound.
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, SUB_MAX_MSG)
        for p in prefixes:
            self.sock.setsockopt(zmq.SUBSCRIBE, p.encode())
        for ep in endpoints:
            connect(self.sock, ep)
        self.seq = SequenceTracker()

    def subscribe(self, prefix: str) -> None:
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def recv(self) -> tuple[str, wire.Msg]:
        """One message; raises WireError on a malformed frame (the frame is consumed)."""
        topic, msg = wire.decode(self.sock.recv(copy=True))
        self.seq.check(msg.src, topic, msg.seq)
        return topic, msg

    def close(self) -> None:
        self.sock.close(0)


class PipeOut(Protocol):
    """The sending end of a pipe, as a sender uses it (``Pusher``, or the simulation's):
    ``send`` never waits and says whether it went."""

    sent: int

    def send(self, msg: wire.Msg) -> bool: ...

    def close(self) -> None: ...


class Pusher:
    """The sending end of a pipe; ``send`` never blocks and says whether it went."""

    def __init__(self, ctx: Ctx, endpoint: str, src: str, topic: str) -> None:
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, PIPE_HWM)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.setsockopt(zmq.LINGER, 2000)  # flush on close, but never hang a stop
        connect(self.sock, endpoint)
        self.src = src
        self.topic = topic
        self._seq = 0
        self.sent = 0

    def send(self, msg: wire.Msg) -> bool:
        msg.src = self.src
        msg.seq = self._seq + 1
        msg.ts = hosttime.time_ns()
        try:
            self.sock.send(wire.encode(self.topic, msg), zmq.NOBLOCK)
        except zmq.Again:
            return False  # no live peer (or its queue is full): the caller keeps the message
        self._seq += 1
        self.sent += 1
        return True

    def close(self) -> None:
        self.sock.close()


class Puller:
    """The bound receiving end of a pipe."""

    def __init__(self, ctx: Ctx, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.PULL)
        self.sock.setsockopt(zmq.RCVHWM, PIPE_HWM)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, PIPE_MAX_MSG)
        bind(self.sock, endpoint)
        self.seq = SequenceTracker()

    def recv(self) -> tuple[str, wire.Msg]:
        topic, msg = wire.decode(self.sock.recv(copy=True))
        self.seq.check(msg.src, topic, msg.seq)
        return topic, msg

    def close(self) -> None:
        self.sock.close(0)


def request(ctx: Ctx, endpoint: str, msg: wire.Msg, timeout_ms: int = 2000) -> wire.Msg | None:
    """One request/reply exchange on a fresh REQ socket (Lazy Pirate): None on timeout.

    A fresh socket per call means a lost reply can never wedge the REQ state machine.
    """
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, RPC_REPLY_MAX_MSG)
    connect(sock, endpoint)
    try:
        sock.send(wire.encode_body(msg))
        if sock.poll(timeout_ms, zmq.POLLIN):
            return wire.decode_body(sock.recv())
        return None
    finally:
        sock.close(0)


def asking(ctx: Ctx, endpoint: str) -> Callable[..., wire.Msg | None]:
    """``request`` to one endpoint as a catch-up's requester (``catchup.Ask``)."""
    return lambda msg, timeout_ms=2000: request(ctx, endpoint, msg, timeout_ms)


class Asker:
    """Questions to a REP endpoint that the asking loop does not wait for.

    A DEALER socket speaking REP's envelope (an empty delimiter frame); the answers come
    back in the order asked and go to ``on_reply(tag, reply)`` when the loop finds the
    socket readable (``readable``). One question per tag is in flight. A question left
    unanswered for ``timeout_s`` (the peer restarting, or gone) is answered ``None``
    with every other in flight, and a fresh socket replaces the old one (``expire``
    returns the old one so the loop can swap its registration): a lost reply never
    holds up the next question, and nothing stale is matched to it.
    """

    def __init__(
        self,
        ctx: Ctx,
        endpoint: str,
        on_reply: Callable[[Hashable, wire.Msg | None], None],
        timeout_s: float = 3.0,
    ) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self.on_reply = on_reply
        self.timeout_s = timeout_s
        self.pending: collections.deque[tuple[Hashable, float]] = collections.deque()
        self.timeouts = 0
        self.sock = self._socket()

    def _socket(self) -> Sock:
        sock: Sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # no peer connected: refuse, never queue
        sock.setsockopt(zmq.MAXMSGSIZE, RPC_REPLY_MAX_MSG)
        connect(sock, self.endpoint)
        return sock

    def in_flight(self, tag: Hashable) -> bool:
        return any(t == tag for t, _ in self.pending)

    def ask(self, tag: Hashable, msg: wire.Msg) -> bool:
        """Send the question unless one with this tag is in flight (False: not sent)."""
        if self.in_flight(tag):
            return False
        try:
            self.sock.send_multipart([b"", wire.encode_body(msg)], zmq.NOBLOCK)
        except zmq.Again:  # no peer to queue for: the caller asks again later
            return False
        self.pending.append((tag, hosttime.monotonic()))
        return True

    def readable(self) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not self.pending:
                continue  # an answer to a question already given up on
            tag, _ = self.pending.popleft()
            try:
                reply: wire.Msg | None = wire.decode_body(frames[-1])
            except wire.WireError:
                reply = None
            self.on_reply(tag, reply)

    def expire(self) -> Sock | None:
        """Give up on questions unanswered for ``timeout_s``; returns the replaced socket
        (to unregister and close), or None when nothing expired."""
        if not self.pending or hosttime.monotonic() - self.pending[0][1] < self.timeout_s:
            return None
        given_up = list(self.pending)
        self.pending.clear()
        old, self.sock = self.sock, self._socket()
        self.timeouts += 1
        for tag, _ in given_up:
            self.on_reply(tag, None)
        return old

    def close(self) -> None:
        self.sock.close(0)


def bind(sock: Sock, endpoint: str) -> None:
    """Bind, as a CURVE server when the bus uses CURVE (tcp)."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        from mytrading.process.rundir import ensure_private_dir

        ensure_private_dir(Path(os.path.dirname(path)))
        # A socket file left by a killed predecessor would make bind fail or, worse,
        # be silently shadowed; a fresh bind replaces it.
        if os.path.exists(path):
            os.unlink(path)
    elif _security is not None and not endpoint.startswith("inproc://"):
        _security.server(sock, endpoint)
    sock.bind(endpoint)


def connect(sock: Sock, endpoint: str) -> None:
    """Connect, as a CURVE client of the endpoint's owner when the bus uses CURVE."""
    if _security is not None and not endpoint.startswith(("ipc://", "inproc://")):
        _security.client(sock, endpoint)
    sock.connect(endpoint)
