"""What one backtest gives a notebook: its figures as a pandas Series, its curve, its
round trips (with how far each went for and against), its orders and fills, and a chart.

The numbers are the run's own (``backtest/results.py`` and ``backtest/metrics.py``, the
ones the command line prints and stores); this module only shapes them for pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mytrading.backtest.metrics import Metrics, daily_returns
from mytrading.domain.refdata import IST

# the stats Series, in this order (a notebook prints it as a column)
STATS = (
    "start",
    "end",
    "net_pnl",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_pct",
    "max_drawdown_duration",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "trades",
    "exposure",
    "charges",
    "start_capital",
    "end_equity",
    "bars",
    "n_trials",
)


def stats_of(m: Metrics, start: date, end: date, bars: int, n_trials: int = 1) -> pd.Series:
    """Every figure of a run as one Series. Calmar is CAGR over the largest drawdown as a
    share of its peak (NaN without a drawdown). ``n_trials``: the parameter sets tried to
    choose this one (1 for a plain backtest), which the deflated Sharpe ratio needs."""
    d = m.as_dict()
    dd = m.max_drawdown_pct
    d["calmar"] = m.cagr / dd if dd and not math.isnan(dd) and not math.isnan(m.cagr) else math.nan
    d.update(start=start, end=end, bars=bars, n_trials=n_trials)
    return pd.Series({k: d[k] for k in STATS}, name="stats", dtype=object)


def excursions(trades: pd.DataFrame, prices: dict[tuple[str, str], pd.DataFrame]) -> pd.DataFrame:
    """Each round trip's maximum adverse and favourable excursion, in rupees for its
    largest quantity: the worst and best the open position was worth against its entry
    price, from the highs and lows of the bars it was held through (the bar it was
    entered on, up to the bar it was left on; fills are at bar starts) and its exit price.
    MAE is <= 0, MFE >= 0. With no bars for its instrument (a tick replay) both are NaN."""
    mae = np.full(len(trades), np.nan)
    mfe = np.full(len(trades), np.nan)
    arrays = {
        k: (px.index.as_unit("ns").asi8, px["high"].to_numpy(), px["low"].to_numpy())
        for k, px in prices.items()
    }
    for i, t in enumerate(trades.itertuples(index=False)):
        got = arrays.get((t.exchange, t.symbol))
        if got is None:
            continue
        at, highs, lows = got
        a = np.searchsorted(at, pd.Timestamp(t.entry_time).value, side="left")
        b = np.searchsorted(at, pd.Timestamp(t.exit_time).value, side="left")
        hi = max(float(highs[a:b].max()) if b > a else -math.inf, t.exit_price)
        lo = min(float(lows[a:b].min()) if b > a else math.inf, t.exit_price)
        side = 1 if t.side == "long" else -1
        best, worst = (hi, lo) if side > 0 else (lo, hi)
        mfe[i] = max(0.0, side * (best - t.entry_price) * t.quantity)
        mae[i] = min(0.0, side * (worst - t.entry_price) * t.quantity)
    out = trades.copy()
    out["mae"] = np.round(mae, 2)
    out["mfe"] = np.round(mfe, 2)
    return out


def bars_of(source: Any, keys: list[tuple[str, str]], start: date, end: date) -> dict:
    """(exchange, symbol) -> IST-indexed open/high/low/close bars, read again from the
    run's data source."""
    out = {}
    for ex, sym in keys:
        parts = list(source.batches(ex, sym, start, end))
        if not parts:
            continue
        idx = pd.to_datetime(np.concatenate([p.start_ns for p in parts]), utc=True).tz_convert(IST)
        out[(ex, sym)] = pd.DataFrame(
            {
                k: np.concatenate([getattr(p, k) for p in parts])
                for k in ("open", "high", "low", "close")
            },
            index=idx,
        )
    return out


@dataclass
class Result:
    """One backtest. ``stats`` (a Series), ``equity`` (a DataFrame: equity, drawdown,
    and each strategy's equity when there are several), ``trades`` (one row a round trip),
    ``orders``, ``fills``, ``returns`` (daily), ``plot()``. ``run_id`` is its id in
    ``backtest list``."""

    run_id: str
    strategies: list[str]
    params: dict[str, dict[str, Any]]
    start: date
    end: date
    stats: pd.Series
    tables: dict[str, pd.DataFrame]
    notes: list[str]
    _source: Any = field(repr=False)
    _fills_on: str = field(default="bars", repr=False)
    report: dict[str, Path] = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<Result {self.run_id} {', '.join(self.strategies)} {self.start}..{self.end}: "
            f"net {s['net_pnl']:,.0f}, sharpe {s['sharpe']:.2f}, {s['trades']} trades>"
        )

    @property
    def equity(self) -> pd.DataFrame:
        return self.tables["equity"].set_index("time")

    @property
    def orders(self) -> pd.DataFrame:
        return self.tables["orders"]

    @property
    def fills(self) -> pd.DataFrame:
        return self.tables["fills"]

    @property
    def returns(self) -> pd.Series:
        """Each trading day's return (the per-period returns of the overfitting figures)."""
        return daily_returns(self.equity["equity"], float(self.stats["start_capital"]))

    @cached_property
    def prices(self) -> dict[tuple[str, str], pd.DataFrame]:
        """The bars of every instrument traded, read again from the data."""
        if self._fills_on != "bars":
            return {}
        t = self.tables["trades"]
        f = self.tables["fills"]
        keys = sorted(
            {(e, s) for e, s in zip(f.get("exchange", []), f.get("symbol", []), strict=True)}
            | {(e, s) for e, s in zip(t.get("exchange", []), t.get("symbol", []), strict=True)}
        )
        return bars_of(self._source, keys, self.start, self.end)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """One row a round trip: entry and exit time and price, quantity, gross, charges,
        net, MAE, MFE, duration."""
        t = self.tables["trades"]
        if t.empty:
            cols = ["entry_time", "exit_time", "entry_price", "exit_price", "quantity", "side"]
            return pd.DataFrame(columns=[*cols, "gross_pnl", "charges", "net_pnl", "mae", "mfe"])
        out = excursions(t, self.prices)
        out["duration"] = out["exit_time"] - out["entry_time"]
        return out

    def plot(self, instrument: str | None = None) -> Any:
        """A plotly figure on trading time: the price of one traded instrument (the first,
        or ``instrument``) with the fills, the equity and the drawdown. Renders inline in
        Jupyter."""
        from mytrading.research.plot import result_figure

        return result_figure(self, instrument)
