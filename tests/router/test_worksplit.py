"""The router's work per order, stage by stage: the stages add up to its own figure less
the flush, and the flush is taken out of the sync's stage alone."""

from __future__ import annotations

import pytest

from mytrading.router.worksplit import STAGES, WorkSplit


def test_the_stages_add_up_to_the_work_less_the_flush() -> None:
    w = WorkSplit()
    us = 1000  # ns
    recv = 1_000_000
    # read 40 us, queue 20, write 15, sync 310 of which 300 the fdatasync, hand-off 8
    pump = (recv + 40 * us, recv + 60 * us, recv + 75 * us, recv + 385 * us)
    w.add(recv, pump, recv + 393 * us, 300.0)
    assert w.p50() == pytest.approx(
        {"read_to_pump": 40, "queue": 20, "journal_write": 15, "sync_less_flush": 10, "hand_off": 8}
    )
    assert list(w.p50()) == list(STAGES)
    assert w.work_us[-1] == pytest.approx(sum(w.p50().values()))


def test_medians_over_orders_and_nothing_before_the_first() -> None:
    w = WorkSplit()
    assert w.p50() == {} and not w.work_us
    for k in (1, 2, 3):
        pump = (k * 1000, k * 2000, k * 3000, k * 4000)
        w.add(0, pump, k * 5000, 0.0)
    assert w.p50()["read_to_pump"] == pytest.approx(2.0)
    assert w.p50()["hand_off"] == pytest.approx(2.0)
