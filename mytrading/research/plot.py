"""A run's chart for a notebook: price with fills, equity and drawdown, on trading time
(``backtest/axis.py``), thinned as the report's."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mytrading.backtest.axis import TradingAxis
from mytrading.backtest.report import thin, trading_line


def result_figure(r: Any, instrument: str | None = None) -> go.Figure:
    """``r`` is a ``research.result.Result`` (not imported: it imports this module)."""
    eq = r.equity
    prices = r.prices
    key = next(
        (k for k in prices if instrument in (None, k[1], f"{k[0]}:{k[1]}")),
        None,
    )
    if instrument and key is None:
        have = ", ".join(f"{e}:{s}" for e, s in prices) or "none"
        raise ValueError(f"no bars of {instrument!r} in this run; traded: {have}")
    px = prices[key] if key else None
    axis = TradingAxis.of(eq.index, *([px.index] if px is not None else []))
    rows = 3 if px is not None else 2
    titles = ([f"{key[1]} with fills"] if key else []) + ["Equity (rupees)", "Drawdown (rupees)"]
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.5, 0.3, 0.2][-rows:],
        vertical_spacing=0.05,
        subplot_titles=titles,
    )
    if px is not None and key is not None:
        bars = thin(px, {"open": "first", "high": "max", "low": "min", "close": "last"})
        fig.add_trace(
            go.Candlestick(
                x=axis.x(bars.index, starts=True), open=bars["open"], high=bars["high"],
                low=bars["low"], close=bars["close"], name=key[1], showlegend=False,
                hovertext=axis.labels(bars.index),
            ),
            row=1, col=1,
        )  # fmt: skip
        f = r.fills
        mine = f[(f["exchange"] == key[0]) & (f["symbol"] == key[1])] if len(f) else f
        for side, color, symbol in (
            ("BUY", "#1a9850", "triangle-up"),
            ("SELL", "#d73027", "triangle-down"),
        ):
            m = mine[mine["action"] == side] if len(mine) else mine
            if len(m):
                fig.add_trace(_points(axis, m, side, color, symbol), row=1, col=1)
    add_curve(fig, axis, eq, rows - 1, rows)
    s = r.stats
    fig.update_layout(
        title=f"{', '.join(r.strategies)} {r.start}..{r.end}: net {s['net_pnl']:,.0f}, "
        f"Sharpe {s['sharpe']:.2f}, {s['trades']} trades",
        height=720,
        template="plotly_white",
        xaxis_rangeslider_visible=False,
    )
    axis.apply(fig)
    return fig


def add_curve(
    fig: go.Figure, axis: TradingAxis, eq: pd.DataFrame, equity_row: int, drawdown_row: int
) -> None:
    """A run's equity and drawdown (thinned as the report's) into two rows of ``fig``."""
    e = thin(eq[["equity", "drawdown"]], {"equity": "last", "drawdown": "min"})
    fig.add_trace(
        trading_line(axis, e["equity"], name="equity", line={"color": "#2c7bb6"}),
        row=equity_row,
        col=1,
    )
    fig.add_trace(
        trading_line(
            axis, e["drawdown"], name="drawdown", line={"color": "#d7191c"}, fill="tozeroy"
        ),
        row=drawdown_row,
        col=1,
    )


def _points(axis: TradingAxis, m: Any, side: str, color: str, symbol: str) -> go.Scatter:
    return go.Scatter(
        x=axis.x(m["time"], starts=True),
        y=m["price"],
        mode="markers",
        name=side,
        marker={"color": color, "symbol": symbol, "size": 9},
        text=[
            f"{side} {q} @ {p}<br>{t}"
            for q, p, t in zip(m["quantity"], m["price"], axis.labels(m["time"]), strict=True)
        ],
        hoverinfo="text",
    )
