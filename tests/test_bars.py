from __future__ import annotations

from datetime import datetime

from mytrading.feed.bars import BarBuilder
from mytrading.refdata import IST, RefData
from mytrading.wire import Tick


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
    b = BarBuilder(refdata.calendar, "1m")
    assert b.on_tick(tk(ns(9, 15, 2), 100, 10)) is None
    assert b.on_tick(tk(ns(9, 15, 30), 103, 15)) is None
    assert b.on_tick(tk(ns(9, 15, 59.9), 99, 20)) is None
    bar = b.on_tick(tk(ns(9, 16, 0), 101, 26))
    assert bar is not None
    assert (bar.start_ns, bar.open, bar.high, bar.low, bar.close) == (ns(9, 15), 100, 103, 99, 99)
    assert bar.volume == 10  # 20 - 10: the change of cumulative volume within the bar


def test_ten_minute_bars_start_at_0915_not_on_the_hour(refdata: RefData) -> None:
    b = BarBuilder(refdata.calendar, "10m")
    b.on_tick(tk(ns(9, 24, 0), 1, 0))
    bar = b.on_tick(tk(ns(9, 25, 0), 2, 0))
    assert bar is not None and bar.start_ns == ns(9, 15)
    b.on_tick(tk(ns(9, 34, 59), 3, 0))
    assert b.close_due(ns(9, 34, 59.5)) == []
    (bar,) = b.close_due(ns(9, 35, 0))
    assert bar.start_ns == ns(9, 25)


def test_quiet_instrument_bar_closes_by_time(refdata: RefData) -> None:
    b = BarBuilder(refdata.calendar, "1m")
    b.on_tick(tk(ns(10, 0, 5), 50, 0))
    assert b.close_due(ns(10, 0, 59)) == []
    (bar,) = b.close_due(ns(10, 1, 0))
    assert bar.close == 50 and bar.start_ns == ns(10, 0)
    assert b.close_due(ns(10, 5, 0)) == []  # no tick, no bar: nothing is invented
