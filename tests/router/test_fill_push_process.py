"""A resting order's fill reaches the strategy on the push, not the 10-second poll: the
router subscribes to order updates (the simulator, like OpenAlgo's proxy, sends none to a
client that did not), through real processes (``bench/fill_latency.py``'s run, shorter)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mytrading.settings import PROJECT_ROOT


@pytest.mark.integration
def test_a_resting_orders_fill_reaches_the_strategy_within_a_second(tmp_path: Path) -> None:
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    try:
        from fill_latency import measure
    finally:
        sys.path.remove(str(PROJECT_ROOT / "bench"))
    ms = measure(tmp_path, fills=3, timeout_s=90)
    assert len(ms) >= 3, ms
    assert max(ms) < 1000, ms  # the order-book poll comes every 10 s
