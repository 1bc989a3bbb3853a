from __future__ import annotations

import pytest

from mytrading.domain.positions import Ledger


def test_average_realized_and_reversal() -> None:
    led = Ledger()
    led.apply("k", 10, 100.0)
    p = led.apply("k", 10, 110.0)
    assert (p.qty, p.avg, p.realized) == (20, 105.0, 0.0)
    p = led.apply("k", -5, 120.0)
    assert (p.qty, p.avg, p.realized) == (15, 105.0, 75.0)
    p = led.apply("k", -25, 100.0)  # close 15 (loss 75) and go short 10 at 100
    assert (p.qty, p.avg, p.realized) == (-10, 100.0, 0.0)
    led.mark("k", 90.0)
    assert p.unrealized() == pytest.approx(100.0)
    p = led.apply("k", 10, 95.0)
    assert (p.qty, p.avg, p.realized, p.unrealized()) == (0, 0.0, 50.0, 0.0)
