"""The figures people compare backtests by, from an equity curve and a list of trades.

Conventions (``docs/backtesting.md`` will carry them for users):

* **Returns are daily.** The equity curve is sampled at the last point of each IST trading
  day; a day's return is its close over the previous day's close (the first day over the
  starting capital). Intraday curves are therefore compared fairly with daily ones, and
  the annualisation is the usual one for Indian markets: ``TRADING_DAYS`` (252) a year.
* **Sharpe** = mean daily return / sample standard deviation (ddof 1) x sqrt(252), with a
  risk-free rate of 0 unless given (annual, converted to a daily rate).
* **Sortino** = mean daily excess return / downside deviation x sqrt(252), where the downside
  deviation is sqrt(mean of min(r, 0)^2) over every day (the Sortino-Price definition).
* **Max drawdown** is the largest fall from a running peak of the full-resolution curve,
  in rupees and as a share of that peak; its **duration** runs from the peak to the first
  point back at or above it (to the end of the curve if it never recovers).
* **CAGR** = (end / start) ^ (365.25 / calendar days) - 1.
* **Trades** are closed round trips with their net P&L (after charges): win rate,
  profit factor (gross profit / gross loss; infinite with no loss), expectancy (mean net
  P&L per trade), average win and loss.
* **Exposure** is the share of the curve's points with a position open.

An undefined figure (no trades, a flat curve, a single day) is NaN, never 0: a report
must not show a Sharpe of 0 for a strategy that never traded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from mytrading.domain.refdata import IST

TRADING_DAYS = 252
IST_NS = 19_800 * 1_000_000_000  # India keeps one offset, +05:30, all year
DAY_NS = 86_400 * 1_000_000_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Metrics:
    start_capital: float
    end_equity: float
    net_pnl: float
    charges: float
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float  # rupees
    max_drawdown_pct: float  # of the peak it fell from
    max_drawdown_duration: timedelta
    trades: int
    win_rate: float
    profit_factor: float
    expectancy: float
    avg_win: float
    avg_loss: float
    exposure: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def daily_returns(equity: pd.Series, start_capital: float) -> pd.Series:
    """The return of each IST trading day, from the last equity point of each day (its
    last that is a number: a day of none has NaN), indexed by the day (``datetime.date``).
    ``equity`` is in time order. Worked on the nanoseconds, IST's one offset added, not by
    grouping on ``index.date`` (a Python date for every point: half of a walk-forward
    trial's time outside its backtest, and asked twice a trial)."""
    if len(equity) == 0 or getattr(equity.index, "tz", None) is None:
        return _daily_returns_grouped(equity, start_capital)  # its error, as before
    day = (equity.index.as_unit("ns").asi8 + IST_NS) // DAY_NS  # days since 1970-01-01 IST
    ends = np.flatnonzero(np.r_[day[1:] != day[:-1], True])  # each day's last point
    values = equity.to_numpy(dtype=float)
    if np.isnan(values).any():
        valid = np.maximum.accumulate(np.where(np.isnan(values), -1, np.arange(len(values))))
        last = valid[ends]
        starts = np.r_[0, ends[:-1] + 1]
        closes = np.where(last >= starts, values[np.maximum(last, 0)], np.nan)
    else:
        closes = values[ends]
    days = [date.fromordinal(EPOCH_ORDINAL + int(d)) for d in day[ends]]
    out = pd.Series(closes, index=pd.Index(days, dtype=object), name=equity.name)
    prev = out.shift(1)
    prev.iloc[0] = start_capital
    return out / prev - 1.0


def _daily_returns_grouped(equity: pd.Series, start_capital: float) -> pd.Series:
    """``daily_returns`` by pandas' grouping on each point's IST date: the definition the
    fast one is tested against (``tests/backtest/test_backtest_metrics.py``)."""
    closes = equity.tz_convert(IST).groupby(equity.tz_convert(IST).index.date).last()
    prev = closes.shift(1)
    prev.iloc[0] = start_capital
    return closes / prev - 1.0


def sharpe(returns: pd.Series, risk_free_annual: float = 0.0) -> float:
    if len(returns) < 2:
        return math.nan
    excess = returns - risk_free_annual / TRADING_DAYS
    sd = float(excess.std(ddof=1))
    if not sd:
        return math.nan
    return float(excess.mean()) / sd * math.sqrt(TRADING_DAYS)


def sortino(returns: pd.Series, risk_free_annual: float = 0.0) -> float:
    if len(returns) < 2:
        return math.nan
    excess = returns - risk_free_annual / TRADING_DAYS
    downside = math.sqrt(float(np.mean(np.minimum(excess.to_numpy(), 0.0) ** 2)))
    if not downside:
        return math.nan
    return float(excess.mean()) / downside * math.sqrt(TRADING_DAYS)


def drawdown(equity: pd.Series) -> tuple[float, float, timedelta]:
    """(largest fall in rupees, as a share of its peak, time from that peak to recovery)."""
    values = equity.to_numpy(dtype=float)
    if values.size == 0:
        return math.nan, math.nan, timedelta(0)
    peaks = np.maximum.accumulate(values)
    falls = peaks - values
    trough = int(np.argmax(falls))
    worst = float(falls[trough])
    if worst <= 0:
        return 0.0, 0.0, timedelta(0)
    peak_value = float(peaks[trough])
    peak_at = int(np.flatnonzero(values[: trough + 1] == peak_value)[0])
    recovered = np.flatnonzero(values[trough:] >= peak_value)
    end_at = trough + int(recovered[0]) if recovered.size else values.size - 1
    index = equity.index
    return worst, worst / peak_value, (index[end_at] - index[peak_at]).to_pytimedelta()


def compute(
    equity: pd.Series,
    trade_pnls: list[float] | np.ndarray,
    start_capital: float,
    charges: float = 0.0,
    in_market: np.ndarray | None = None,
    risk_free_annual: float = 0.0,
) -> Metrics:
    """Every figure for one strategy (or the total) of a run.

    ``equity``: net of charges, indexed by timezone-aware timestamps, in time order.
    ``trade_pnls``: the net P&L of each closed round trip. ``in_market``: one flag per
    point of ``equity``, True while a position is open (None: exposure unknown, NaN)."""
    if equity.index.tz is None:
        raise ValueError("equity needs a timezone-aware index (market time is IST)")
    if len(equity) == 0:
        raise ValueError("an empty equity curve has no metrics")
    pnls = np.asarray(trade_pnls, dtype=float)
    end = float(equity.iloc[-1])
    days = (equity.index[-1] - equity.index[0]).total_seconds() / 86400.0
    rets = daily_returns(equity, start_capital)
    wins, losses = pnls[pnls > 0], pnls[pnls < 0]
    gross_loss = -float(losses.sum())
    dd, dd_pct, dd_time = drawdown(pd.concat([_start_point(equity, start_capital), equity]))
    return Metrics(
        start_capital=start_capital,
        end_equity=end,
        net_pnl=end - start_capital,
        charges=charges,
        total_return=end / start_capital - 1.0,
        cagr=(end / start_capital) ** (365.25 / days) - 1.0 if days > 0 and end > 0 else math.nan,
        sharpe=sharpe(rets, risk_free_annual),
        sortino=sortino(rets, risk_free_annual),
        max_drawdown=dd,
        max_drawdown_pct=dd_pct,
        max_drawdown_duration=dd_time,
        trades=int(pnls.size),
        win_rate=wins.size / pnls.size if pnls.size else math.nan,
        profit_factor=(float(wins.sum()) / gross_loss if gross_loss else math.inf)
        if pnls.size
        else math.nan,
        expectancy=float(pnls.mean()) if pnls.size else math.nan,
        avg_win=float(wins.mean()) if wins.size else math.nan,
        avg_loss=float(losses.mean()) if losses.size else math.nan,
        exposure=float(np.mean(in_market))
        if in_market is not None and len(in_market)
        else math.nan,
    )


def _start_point(equity: pd.Series, start_capital: float) -> pd.Series:
    """The starting capital just before the first point: a fall on the very first bar is
    a drawdown from the capital, not from that bar."""
    return pd.Series([start_capital], index=[equity.index[0] - pd.Timedelta(microseconds=1)])
