"""One seed's virtual time: a clock, a queue of what happens next, and the trace.

Everything in a simulated day is an event on one heap, ordered by its virtual wall time
and then by when it was scheduled: a message's arrival, a timer, a broker call's answer,
a tick of the market, a fault. One thread takes them in order, so a seed always makes the
same day (the random draws come from the seed's own generators, the clock from here,
and string hashing is fixed by the command that runs it: ``simulation/cli.py``).

The clock is installed as the process's host clock (``mytrading/hosttime.py``) while a
seed runs: every core reads it, none reads the machine's.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mytrading import hosttime


@dataclass
class Trace:
    """Every message, call and fault of a seed, in order, as lines; their digest.

    ``full`` keeps the lines (a replay writes them to a file); otherwise only the digest
    is kept (a sweep of many seeds). Ticks and heartbeats are left out of both unless
    ``noisy``: they are most of the day and say little a failure needs."""

    full: bool = False
    noisy: bool = False
    lines: list[str] = field(default_factory=list)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    n: int = 0

    def add(self, t_ns: int, kind: str, what: str) -> None:
        line = f"{t_ns} {kind} {what}"
        self.n += 1
        self.digest.update(line.encode())
        self.digest.update(b"\n")
        if self.full:
            self.lines.append(line)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()

    def write(self, out: Path | IO[str]) -> None:
        if isinstance(out, Path):
            out.write_text("\n".join(self.lines) + "\n")
        else:
            out.write("\n".join(self.lines) + "\n")


class Crashed(BaseException):
    """A simulated daemon died in the middle of its own code (``SimHost.crash``): raised
    through it, like ``os._exit``, nothing after the call runs; the world's loop (and a
    question another daemon was waiting on, ``SimBus.answer``) takes it. A BaseException,
    so that no ``except Exception`` of the daemon's catches it."""


class World:
    """The virtual clock (wall time in ns; monotonic seconds from it) and the heap."""

    def __init__(self, start_ns: int, trace: Trace) -> None:
        self.start_ns = start_ns
        self.now_ns = start_ns
        self.trace = trace
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.steps = 0
        self.crashes = 0  # events a daemon died in (``Crashed``)
        self.after_step: Callable[[], None] | None = None

    # ------------------------------------------------------------ a hosttime source

    def monotonic(self) -> float:
        return (self.now_ns - self.start_ns) / 1e9 + 1000.0  # never near zero

    def time_ns(self) -> int:
        return self.now_ns

    # ---------------------------------------------------------------- scheduling

    def at(self, due_ns: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(due_ns, self.now_ns), next(self._seq), fn))

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        self.at(self.now_ns + int(seconds * 1e9), fn)

    def run_until(self, end_ns: int) -> None:
        """Take every event due by ``end_ns``, in order; the clock then reads ``end_ns``.
        Re-entrant: an event may run the world on (a command-line tool that waits for a
        heartbeat to confirm its command), time only ever moving forward."""
        heap = self._heap
        while heap and heap[0][0] <= end_ns:
            due, _, fn = heapq.heappop(heap)
            if due > self.now_ns:
                self.now_ns = due
            # a daemon that died in an event: what it did before stays, nothing after
            try:
                fn()
            except Crashed:
                self.crashes += 1
            self.steps += 1
            if self.after_step is not None:
                self.after_step()
        if end_ns > self.now_ns:
            self.now_ns = end_ns

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now_ns + int(seconds * 1e9))

    def __enter__(self) -> World:
        hosttime.install(self)
        return self

    def __exit__(self, *exc: object) -> None:
        hosttime.restore()
