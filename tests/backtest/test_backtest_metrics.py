"""Backtest metrics against values worked out by hand on a small series (issue 13)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mytrading.backtest.metrics import TRADING_DAYS, compute, drawdown
from mytrading.domain.refdata import IST

CAPITAL = 100_000.0


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=IST)


# Four trading days, intraday points; the day closes are 102,000, 100,000, 103,000, 101,970.
CURVE = pd.Series(
    [101_000.0, 102_000.0, 99_000.0, 100_000.0, 103_000.0, 101_970.0],
    index=pd.DatetimeIndex(
        [at(16, 10), at(16, 15), at(17, 11), at(17, 15), at(18, 15), at(19, 15)]
    ),
)
TRADES = [1_500.0, -500.0, 2_000.0, -1_030.0]


def test_every_figure_on_a_small_series() -> None:
    m = compute(CURVE, TRADES, CAPITAL, charges=120.0, in_market=np.array([1, 1, 0, 1, 1, 0]))
    # Daily returns, each close over the one before (the first over the capital).
    r = [102_000 / 100_000 - 1, 100_000 / 102_000 - 1, 103_000 / 100_000 - 1, 101_970 / 103_000 - 1]
    mean = sum(r) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / 4)
    assert m.sharpe == pytest.approx(mean / sd * math.sqrt(TRADING_DAYS), rel=1e-12)
    assert m.sortino == pytest.approx(mean / down * math.sqrt(TRADING_DAYS), rel=1e-12)
    # Worked out on paper: mean 0.0050980, sd 0.0236679 -> 0.215398 x 15.8745
    assert m.sharpe == pytest.approx(3.4194, abs=1e-4)
    # The worst fall: 102,000 (16th, 15:00) -> 99,000; back above it on the 18th at 15:00.
    assert (m.max_drawdown, m.max_drawdown_pct) == (3_000.0, pytest.approx(3_000 / 102_000))
    assert m.max_drawdown_duration == timedelta(days=2)
    days = (at(19, 15) - at(16, 10)).total_seconds() / 86400
    assert m.cagr == pytest.approx(1.0197 ** (365.25 / days) - 1)
    assert (m.net_pnl, m.total_return, m.charges) == (1_970.0, pytest.approx(0.0197), 120.0)
    assert (m.trades, m.win_rate) == (4, 0.5)
    assert m.profit_factor == pytest.approx(3_500 / 1_530)
    assert (m.expectancy, m.avg_win, m.avg_loss) == (492.5, 1_750.0, -765.0)
    assert m.exposure == pytest.approx(4 / 6)


def test_nothing_undefined_is_reported_as_zero() -> None:
    """A strategy that never traded has no win rate, profit factor or Sharpe: NaN, which a
    report shows as a dash, not a 0 that reads like a result."""
    flat = pd.Series([CAPITAL] * 3, index=pd.DatetimeIndex([at(16, 15), at(17, 15), at(18, 15)]))
    m = compute(flat, [], CAPITAL)
    assert m.trades == 0 and m.net_pnl == 0.0 and m.max_drawdown == 0.0
    for v in (m.win_rate, m.profit_factor, m.expectancy, m.sharpe, m.sortino, m.exposure):
        assert math.isnan(v)
    only_wins = compute(CURVE, [100.0, 50.0], CAPITAL)
    assert only_wins.profit_factor == math.inf and math.isnan(only_wins.avg_loss)


def test_drawdown_from_the_capital_and_one_that_never_recovers() -> None:
    falls = pd.Series(
        [98_000.0, 99_000.0, 97_000.0], index=pd.DatetimeIndex([at(16, 10), at(16, 11), at(16, 12)])
    )
    m = compute(falls, [], CAPITAL)
    assert (m.max_drawdown, m.max_drawdown_pct) == (3_000.0, pytest.approx(0.03))
    # from the capital (just before the first point) to the end: it never came back
    assert m.max_drawdown_duration == timedelta(hours=2, microseconds=1)
    assert drawdown(pd.Series([], dtype=float))[2] == timedelta(0)


def test_bad_input_is_refused() -> None:
    naive = pd.Series([1.0], index=pd.DatetimeIndex([datetime(2026, 11, 16, 10)]))
    with pytest.raises(ValueError, match="timezone-aware"):
        compute(naive, [], CAPITAL)
    with pytest.raises(ValueError, match="empty"):
        compute(pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz=IST)), [], CAPITAL)


@pytest.mark.parametrize("seed", range(6))
def test_daily_returns_are_pandas_grouping_on_each_ist_date(seed: int) -> None:
    """The fast daily returns (on the nanoseconds) equal pandas' grouping on each point's
    IST date: points at any time of day (late evening UTC is the next IST day), days with
    NaN last points, a day of NaN only, a curve in another timezone."""
    from mytrading.backtest.metrics import _daily_returns_grouped, daily_returns

    rng = np.random.default_rng(seed)
    n = 3_000
    ns = np.cumsum(rng.integers(1, 40 * 60, n)) * 1_000_000_000 + 1_767_225_600_000_000_000
    values = 1e6 + np.cumsum(rng.normal(0, 500, n))
    values[rng.random(n) < 0.05] = np.nan
    day = (ns + 19_800 * 10**9) // (86_400 * 10**9)
    values[day == day[n // 2]] = np.nan  # a whole IST day without a number
    tz = ["Asia/Kolkata", "UTC", "America/New_York"][seed % 3]
    equity = pd.Series(values, index=pd.to_datetime(ns, utc=True).tz_convert(tz), name="equity")
    got, want = daily_returns(equity, 1e6), _daily_returns_grouped(equity, 1e6)
    assert len(got) > 20 and got.isna().any()
    pd.testing.assert_series_equal(got, want)
