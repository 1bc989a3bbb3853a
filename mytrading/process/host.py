"""What a daemon's core is given to run on: its ``Host``.

A core (``process/base.py``: ``Daemon`` and each daemon's subclass) owns no socket, no
thread and no clock. Everything it sends, every timer it needs, every wake-up from
another thread and every connection to the outside world (a broker's REST and WebSocket)
it asks of its host; everything that reaches it comes as a call from its host. Two hosts
exist:

* ``process/shell.py``: ``ZmqHost``, the shell every daemon process runs in: ZeroMQ
  sockets, one poller, signals, threads, the machine's clocks;
* ``simulation/host.py``: ``SimHost``, one daemon of the deterministic simulation of the
  whole stack: a virtual bus with faults, a virtual clock, the simulated broker's
  request handling behind the same HTTP client.

So the code under test in the simulation is the code that runs: only what is below this
line differs. The time a core reads comes from ``mytrading/hosttime.py``, installed once
per process.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, NoReturn, Protocol, TypeVar

from mytrading.messaging import wire
from mytrading.messaging.bus import PipeOut
from mytrading.openalgo.paced import Fetcher

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# A frame's bytes and where it came in (the socket: "pipe.intents", "bus"; the simulation
# names the sender): what a socket hands the core to decode (``Daemon.take_frame``), which
# names it only in the log line of a frame that does not decode. The shell reads frames
# as bytes (``recv`` with ``copy=True``), not as ZeroMQ frames whose sender address could
# be asked: a frame object is 0.4 us more per frame warm and ~18 us after 100 ms idle
# (measured on an ipc pair; in the stack the order path's p50 moved less than its noise),
# on every hop of every tick, for a line that is rarely written.
FrameSink = Callable[[bytes, str], None]


class Asking(Protocol):
    """Questions to a REP endpoint the loop does not wait for (``bus.Asker``): each
    answer (None: given up after its timeout) comes back as a call."""

    @property
    def timeouts(self) -> int: ...

    def ask(self, tag: Hashable, msg: wire.Msg) -> bool: ...

    def in_flight(self, tag: Hashable) -> bool: ...


class Pending(Protocol[T_co]):
    """A batch handed to a worker: done or not, and its result once done."""

    def done(self) -> bool: ...

    def result(self) -> T_co: ...


class Worker(Protocol):
    """Where a lane's broker calls run off the loop (a thread in the shell); the loop is
    woken (``on_done``) when a batch is answered."""

    def submit(self, fn: Callable[[], T]) -> Pending[T]: ...

    def close(self) -> None: ...


class Host(Protocol):
    """What a daemon's core asks of what runs it."""

    @property
    def pid(self) -> int:
        """This incarnation's process id (a peer that sees it change knows we restarted)."""
        ...

    @property
    def published(self) -> int:
        """Messages published so far."""
        ...

    def publish(self, topic: str, msg: wire.Msg) -> None:
        """Stamp the header (src, seq per topic, ts) and publish on our PUB."""
        ...

    def subscribe(self, prefix: str) -> None:
        """Receive topics starting with ``prefix`` too."""
        ...

    def on_sub(self, sink: FrameSink, prefixes: tuple[str, ...]) -> None:
        """Connect the SUB to every other daemon's PUB with these prefixes; every frame
        goes to ``sink``."""
        ...

    def read_sub_now(self) -> bool:
        """Hand ``sink`` what the SUB holds now, before anything else; True when there
        was something (risk judges an intent on the fills its sender had seen)."""
        ...

    def pipe_in(self, name: str, sink: FrameSink, then: Callable[[], None] | None) -> None:
        """Bind the pipe ``name`` (PULL): each frame to ``sink``, ``then`` after a batch."""
        ...

    def pipe_out(self, name: str, topic: str) -> PipeOut:
        """Connect to the pipe ``name`` (PUSH), frames under ``topic``."""
        ...

    def serve(self, name: str, answer: Callable[[bytes], bytes]) -> None:
        """Bind ``name`` (REP): each request's bytes answered at once."""
        ...

    def request(self, name: str, msg: wire.Msg, timeout_ms: int = 2000) -> wire.Msg | None:
        """One question to ``name`` (REQ), waited for: the answer, or None on timeout."""
        ...

    def asker(
        self,
        name: str,
        on_reply: Callable[[Hashable, wire.Msg | None], None],
        timeout_s: float = 3.0,
    ) -> Asking:
        """Questions to ``name`` whose answers come back later (``on_reply``)."""
        ...

    def every(self, seconds: float, fn: Callable[[], None], first_in: float | None = None) -> None:
        """``fn`` every ``seconds`` (the first after ``first_in``); never in a burst."""
        ...

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        """``fn`` once, ``seconds`` from now."""
        ...

    def wakeup(self, fn: Callable[[], None]) -> Callable[[], None]:
        """A poke another thread may call: the loop then runs ``fn``."""
        ...

    def worker(self, name: str, on_done: Callable[[], None]) -> Worker:
        """A worker for calls that must not hold the loop up (a broker's)."""
        ...

    def fetcher(self, name: str) -> Fetcher:
        """History calls off the loop, paced as OpenAlgo paces them (``openalgo/paced.py``)."""
        ...

    def transport(self, url: str) -> Any:
        """The HTTP transport to ``url`` (an ``httpx.BaseTransport``); None: the network."""
        ...

    def start_ws(self, client: Any) -> None:
        """Run an OpenAlgo WebSocket client (``openalgo/ws.py``: its connection loop)."""
        ...

    def health(self) -> dict[str, Any]:
        """The process's health for the heartbeat (CPU, RSS, loop lag...)."""
        ...

    def stop(self) -> None:
        """End the loop: the core's ``finish`` runs, then the host closes."""
        ...

    def crash(self, code: int) -> NoReturn:
        """Die at once, like ``kill -9`` (fault injection: ``MT_ROUTER_CRASH_AT``, the
        simulator's ``crash_at``): nothing after the call runs, no ``finish``, what was
        written stays."""
        ...
