"""A daemon's own work per order: a read cause to its first send, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mytrading import hosttime
from mytrading.process.ownwork import OwnWork


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000

    def monotonic(self) -> float:
        return self.ns / 1e9

    def time_ns(self) -> int:
        return self.ns


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock()
    hosttime.install(c)
    try:
        yield c
    finally:
        hosttime.restore()


def test_a_read_to_its_first_send_is_timed_and_nothing_else(clock: Clock) -> None:
    w = OwnWork()
    assert w.p50_us() is None  # no send yet: no figure, not a zero
    w.read("tick-1", clock.ns)
    clock.ns += 40_000
    w.sent("tick-0")  # another cause's send (a timer's, an older message's): not timed
    assert w.p50_us() is None
    clock.ns += 20_000
    w.sent("tick-1")
    assert w.p50_us() == 60.0
    clock.ns += 500_000
    w.sent("tick-1")  # the same cause's second order: its first was the figure
    w.sent(None)
    assert list(w.us) == [60.0]
    w.read("tick-2", clock.ns)
    clock.ns += 100_000
    w.sent("tick-2")
    w.read("tick-3", clock.ns)
    clock.ns += 30_000
    w.sent("tick-3")
    assert list(w.us) == [60.0, 100.0, 30.0] and w.p50_us() == 60.0
