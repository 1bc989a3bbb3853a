from __future__ import annotations

from datetime import datetime

import pytest

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging.wire import Tick


def ns(h: int, m: int, s: float = 0) -> int:
    return int(
        datetime(2026, 11, 20, h, m, int(s), int((s % 1) * 1e6), tzinfo=IST).timestamp() * 1e9
    )


def tk(t: int, ltp: float, vol: int) -> Tick:
    return Tick(
        exchange="NFO",
        symbol="X",
        ltp=ltp,
        bid=ltp,
        ask=ltp,
        bid_qty=0,
        ask_qty=0,
        volume=vol,
        exch_ns=t,
    )


def test_bars_align_to_session_open_and_close_on_next_tick(refdata: RefData) -> None:
    b = BarBuilder(refdata.calendar, "1m", grace_ns=0)
    assert b.on_tick(tk(ns(9, 15, 2), 100, 10)) is None
    assert b.on_tick(tk(ns(9, 15, 30), 103, 15)) is None
    assert b.on_tick(tk(ns(9, 15, 59.9), 99, 20)) is None
    bar = b.on_tick(tk(ns(9, 16, 0), 101, 26))
    assert bar is not None
    assert (bar.start_ns, bar.open, bar.high, bar.low, bar.close) == (ns(9, 15), 100, 103, 99, 99)
    assert bar.volume == 10  # 20 - 10: the change of cumulative volume within the bar


def test_ten_minute_bars_start_at_0915_not_on_the_hour(refdata: RefData) -> None:
    b = BarBuilder(refdata.calendar, "10m", grace_ns=0)
    b.on_tick(tk(ns(9, 24, 0), 1, 0))
    bar = b.on_tick(tk(ns(9, 25, 0), 2, 0))
    assert bar is not None and bar.start_ns == ns(9, 15)
    b.on_tick(tk(ns(9, 34, 59), 3, 0))
    assert b.close_due(ns(9, 34, 59.5)) == []
    (bar,) = b.close_due(ns(9, 35, 0))
    assert bar.start_ns == ns(9, 25)


def test_quiet_instrument_bar_closes_by_time(refdata: RefData) -> None:
    b = BarBuilder(refdata.calendar, "1m", grace_ns=0)
    b.on_tick(tk(ns(10, 0, 5), 50, 0))
    assert b.close_due(ns(10, 0, 59)) == []
    (bar,) = b.close_due(ns(10, 1, 0))
    assert bar.close == 50 and bar.start_ns == ns(10, 0)
    assert b.close_due(ns(10, 5, 0)) == []  # no tick, no bar: nothing is invented


def test_longer_timeframes_align_to_the_open_and_end_at_the_close(refdata: RefData) -> None:
    three = BarBuilder(refdata.calendar, "3m", grace_ns=0)
    assert three.span("NFO", ns(9, 20, 5)) == (ns(9, 18), ns(9, 21))
    hour = BarBuilder(refdata.calendar, "1h", grace_ns=0)
    assert hour.span("NFO", ns(10, 14, 59)) == (ns(9, 15), ns(10, 15))
    assert hour.span("NFO", ns(15, 20)) == (ns(15, 15), ns(15, 30))  # cut at the close
    hour.on_tick(tk(ns(15, 16), 100, 10))
    assert hour.close_due(ns(15, 29, 59)) == []
    (bar,) = hour.close_due(ns(15, 30))
    assert bar.start_ns == ns(15, 15) and bar.tf == "1h"


def test_daily_bar_spans_the_session(refdata: RefData) -> None:
    d = BarBuilder(refdata.calendar, "D", grace_ns=0)
    assert d.span("NFO", ns(11, 0)) == (ns(9, 15), ns(15, 30))
    for t, px, vol in ((ns(9, 15, 1), 100, 0), (ns(12, 0), 110, 50), (ns(15, 29, 59), 95, 80)):
        assert d.on_tick(tk(t, px, vol)) is None
    (bar,) = d.close_due(ns(15, 30))
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100, 110, 95, 95, 80)
    with pytest.raises(ValueError, match="timeframe"):
        BarBuilder(refdata.calendar, "2m")
