"""The host's clocks: the one way a daemon's core and the parts it runs read the time.

A daemon run by its shell (``process/shell.py``) reads the machine's clocks: these names
*are* ``time.monotonic``, ``time.time_ns``, ``time.time`` and ``time.perf_counter_ns``,
so the seam costs nothing. The deterministic simulation of the whole stack
(``mytrading/simulation``) runs every daemon in one process on one virtual clock and
installs it here (``install``): a core that read ``time`` itself would make a seed's day
depend on the machine, and its failures impossible to replay. This is how FoundationDB's
flow reads ``now()``: from the network its process was given, real or simulated.

Call them through the module (``hosttime.monotonic()``), never ``from ... import``: an
imported name keeps the clock of the moment it was imported (``tests/shared/
test_layers.py`` refuses that, and refuses ``time``'s clocks in the daemons' cores).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Protocol

monotonic = _time.monotonic
time_ns = _time.time_ns
time = _time.time
perf_counter_ns = _time.perf_counter_ns
# a wait that blocks the loop: at a start only (a simulation refuses it)
sleep: Callable[[float], None] = _time.sleep


class Source(Protocol):
    """A clock to install: monotonic seconds and wall nanoseconds (the rest follow)."""

    def monotonic(self) -> float: ...

    def time_ns(self) -> int: ...


def now(tz: tzinfo) -> datetime:
    """The wall clock now, in ``tz``."""
    return datetime.fromtimestamp(time(), tz)


def _no_sleep(seconds: float) -> None:
    raise RuntimeError(f"a core slept {seconds} s in a simulation (no blocking waits)")


def install(source: Source) -> None:
    """From now on this process's cores read ``source`` (the simulation's world)."""
    global monotonic, time_ns, time, perf_counter_ns, sleep
    monotonic = source.monotonic
    time_ns = source.time_ns

    def wall_s() -> float:
        return source.time_ns() / 1e9

    def perf_ns() -> int:
        return int(source.monotonic() * 1e9)

    time = wall_s
    perf_counter_ns = perf_ns
    sleep = _no_sleep


def restore() -> None:
    """The machine's clocks again."""
    global monotonic, time_ns, time, perf_counter_ns, sleep
    monotonic = _time.monotonic
    time_ns = _time.time_ns
    time = _time.time
    perf_counter_ns = _time.perf_counter_ns
    sleep = _time.sleep


def installed() -> bool:
    """A clock other than the machine's is installed."""
    return monotonic is not _time.monotonic
