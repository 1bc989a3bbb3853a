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
    assert bar.volume == 20  # the session's first bar: the day's volume up to its last trade
    (bar2,) = b.close_due(ns(9, 17, 0))
    assert bar2.volume == 6  # 26 - 20: its one trade, counted (it was 0 before the fix)


def test_a_bars_volume_is_what_traded_in_it_its_first_trade_included(refdata: RefData) -> None:
    """A bar's volume is its ticks' traded volume: the cumulative volume of its last
    trade less that of the last trade before it. A bar of one trade has that trade's."""
    b = BarBuilder(refdata.calendar, "1m", grace_ns=0)
    assert b.on_tick(tk(ns(10, 0, 5), 100, 1_000)) is None  # joined mid-session
    first = b.on_tick(tk(ns(10, 1, 5), 101, 1_050))
    assert first is not None and first.volume == 0  # what came before its tick is unknown
    one = b.on_tick(tk(ns(10, 2, 5), 102, 1_075))
    assert one is not None and one.volume == 50  # one trade of 50: counted
    b.on_tick(tk(ns(10, 2, 30), 103, 1_100))
    two = b.on_tick(tk(ns(10, 3, 1), 104, 1_130))
    assert two is not None and two.volume == 25 + 25
    late = b.on_tick(tk(ns(10, 2, 59), 103, 1_120))  # late: belongs to a bar handed out
    assert late is None and b.stats.late == 1
    (three,) = b.close_due(ns(10, 4, 1))
    assert three.volume == 30  # 1_130 - 1_100: the late tick's trades are in it
    # a new day: its cumulative volume starts again; the first bar counts from zero
    nxt = int(ns(9, 15, 3) + 3 * 86_400e9)  # Monday 2026-11-23
    b.on_tick(tk(nxt, 99, 40))
    (monday,) = b.close_due(nxt + 60 * 10**9)
    assert monday.volume == 40


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
