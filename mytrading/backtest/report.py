"""The report of a run: one HTML page with interactive charts (plotly) and the same charts
as PNG images (matplotlib) for a terminal or an email.

Charts: the price of each traded instrument with its entries and exits, the equity curve
(total and per strategy), the drawdown, and monthly returns as a heatmap; beside them the
metrics per strategy and in total, charges apart, and the run's parameters and notes.
Long runs are thinned for drawing (at most ``POINTS`` points a chart: the last equity and
the deepest drawdown of each span, each bar span's open/high/low/close); the figures in
the tables always come from the full data.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from mytrading import compiled
from mytrading.backtest.axis import TradingAxis
from mytrading.backtest.metrics import Metrics
from mytrading.domain.refdata import IST

POINTS = 4000
MARKERS = 1500  # entries and exits drawn per instrument (all are in the tables)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


@dataclass
class ReportInput:
    run_id: str
    title: str
    params: dict[str, dict[str, Any]]
    metrics: dict[str, Metrics]  # by strategy, "*" the total
    tables: dict[str, pd.DataFrame]
    prices: dict[str, pd.DataFrame]  # symbol -> time-indexed open/high/low/close
    notes: list[str]
    equity_by_strategy: dict[str, pd.Series]


def write(out_dir: Path, r: ReportInput) -> dict[str, Path]:
    """report.html and the PNGs in ``out_dir``; returns their paths by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir.parent / "plotly.min.js"
    if not js.exists():
        js.write_text(get_plotlyjs())
    eq = r.tables["equity"].set_index("time")
    monthly = monthly_returns(eq["equity"], r.metrics["*"].start_capital)
    paths = {
        "price": out_dir / "price.png",
        "equity": out_dir / "equity.png",
        "monthly": out_dir / "monthly.png",
        "html": out_dir / "report.html",
    }
    axis = axis_of(r)
    _png_price(paths["price"], r, axis)
    _png_equity(paths["equity"], eq, r.equity_by_strategy, axis)
    _png_monthly(paths["monthly"], monthly)
    figs = [
        fig_price(r, axis),
        fig_equity(eq, r.equity_by_strategy, axis),
        _fig_monthly(monthly),
    ]
    greeks = r.tables.get("greeks")
    if greeks is not None and not greeks.empty:
        paths["greeks"] = out_dir / "greeks.png"
        _png_greeks(paths["greeks"], greeks, axis)
        figs.append(_fig_greeks(greeks, axis))
    body = "".join(
        f'<section class="chart">{f.to_html(full_html=False, include_plotlyjs=False)}</section>'
        for f in figs
    )
    paths["html"].write_text(_page(r, body))
    return paths


# ----------------------------------------------------------------------- figures


def axis_of(r: ReportInput) -> TradingAxis:
    """The run's trading-time axis: the points of its equity curve (its prices' bars when
    it has none)."""
    eq = r.tables["equity"]["time"] if "equity" in r.tables else []
    return TradingAxis.of(eq, *(px.index for px in r.prices.values()))


def thin(df: pd.DataFrame | pd.Series, how: dict[str, str] | str) -> Any:
    """At most ``POINTS`` rows, each the aggregate of a span of consecutive rows."""
    n = len(df)
    if n <= POINTS:
        return df
    groups = np.arange(n) // math.ceil(n / POINTS)
    out = df.groupby(groups).agg(how)
    out.index = df.index[np.searchsorted(groups, np.unique(groups))]
    return out


def monthly_returns(equity: pd.Series, capital: float) -> pd.DataFrame:
    """Year x month table of returns (fractions), from the month-end equity."""
    ends = equity.resample("ME").last().dropna()
    prev = ends.shift(1).fillna(capital)
    ret = ends / prev - 1.0
    table = pd.DataFrame({"year": ret.index.year, "month": ret.index.month, "ret": ret.values})
    return table.pivot(index="year", columns="month", values="ret").reindex(columns=range(1, 13))


def _side_marks(r: ReportInput, symbol: str, side: str) -> pd.DataFrame:
    """One side's fills of an instrument, thinned to ``MARKERS / 2`` (each side apart: a
    stride over alternating buys and sells would keep only one side)."""
    fills = r.tables["fills"]
    if fills.empty:
        return fills
    f = fills[(fills["symbol"] == symbol) & (fills["action"] == side)]
    half = MARKERS // 2
    return f.iloc[:: math.ceil(len(f) / half)] if len(f) > half else f


def fig_price(r: ReportInput, axis: TradingAxis) -> go.Figure:
    n = max(1, len(r.prices))
    fig = make_subplots(rows=n, cols=1, subplot_titles=list(r.prices) or ["no prices"])
    for i, (sym, px) in enumerate(r.prices.items(), 1):
        bars = thin(px, {"open": "first", "high": "max", "low": "min", "close": "last"})
        fig.add_trace(
            go.Candlestick(
                x=axis.x(bars.index, starts=True),
                open=bars["open"],
                high=bars["high"],
                low=bars["low"],
                close=bars["close"],
                name=sym,
                showlegend=False,
                hovertext=axis.labels(bars.index),
            ),
            row=i,
            col=1,
        )
        for side, color, symbol in (
            ("BUY", "#1a9850", "triangle-up"),
            ("SELL", "#d73027", "triangle-down"),
        ):
            m = _side_marks(r, sym, side)
            if m.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=axis.x(m["time"], starts=True),
                    y=m["price"],
                    mode="markers",
                    name=f"{side} {sym}",
                    marker={"color": color, "symbol": symbol, "size": 9},
                    text=[
                        f"{a} {q} @ {p}<br>{t}"
                        for a, q, p, t in zip(
                            m["action"],
                            m["quantity"],
                            m["price"],
                            axis.labels(m["time"]),
                            strict=True,
                        )
                    ],
                    hoverinfo="text",
                ),
                row=i,
                col=1,
            )
    fig.update_layout(title="Price with entries and exits", height=380 * n, template="plotly_white")
    axis.apply(fig)
    return fig


def trading_line(axis: TradingAxis, s: pd.Series, **kw: Any) -> go.Scatter:
    """A line on trading time whose hover gives the real time."""
    return go.Scatter(
        x=axis.x(s.index),
        y=s.values,
        customdata=axis.labels(s.index),
        hovertemplate="%{customdata}<br>%{y:,.2f}<extra>%{fullData.name}</extra>",
        **kw,
    )


def fig_equity(eq: pd.DataFrame, per: dict[str, pd.Series], axis: TradingAxis) -> go.Figure:
    e = thin(eq[["equity", "drawdown"]], {"equity": "last", "drawdown": "min"})
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        subplot_titles=["Equity (rupees)", "Drawdown (rupees)"],
    )
    fig.add_trace(
        trading_line(axis, e["equity"], name="total", line={"color": "#2c7bb6"}), row=1, col=1
    )
    if len(per) > 1:
        for name, s in per.items():
            t = thin(s, "last")
            fig.add_trace(trading_line(axis, t, name=name, line={"width": 1}), row=1, col=1)
    fig.add_trace(
        trading_line(
            axis, e["drawdown"], name="drawdown", fill="tozeroy", line={"color": "#d7191c"}
        ),
        row=2,
        col=1,
    )
    fig.update_layout(height=560, template="plotly_white", title="Equity and drawdown")
    axis.apply(fig)
    return fig


def _fig_monthly(monthly: pd.DataFrame) -> go.Figure:
    z = (monthly.values * 100).round(2)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=MONTHS,
            y=[str(y) for y in monthly.index],
            colorscale="RdYlGn",
            zmid=0,
            text=[["" if np.isnan(v) else f"{v:.2f}%" for v in row] for row in z],
            texttemplate="%{text}",
            colorbar={"title": "%"},
        )
    )
    fig.update_layout(
        title="Monthly returns", height=140 + 40 * len(monthly), template="plotly_white"
    )
    return fig


GREEK_PANELS = (
    ("delta", "Delta (units of the underlying)"),
    ("gamma", "Gamma (delta per point)"),
    ("theta", "Theta (rupees a day)"),
    ("vega", "Vega (rupees per volatility point)"),
)


def _greek_series(greeks: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``strategy / underlying`` -> its Greeks at each sample (only while it held
    options: a day's exit leaves a gap to the next day's entry)."""
    out = {}
    for (strat, und), g in greeks.groupby(["strategy", "underlying"], sort=True):
        out[f"{strat} / {und}"] = g.set_index("time")[[k for k, _ in GREEK_PANELS]]
    return out


def _fig_greeks(greeks: pd.DataFrame, axis: TradingAxis) -> go.Figure:
    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, subplot_titles=[t for _, t in GREEK_PANELS]
    )
    for label, g in _greek_series(greeks).items():
        for i, (k, _) in enumerate(GREEK_PANELS, start=1):
            fig.add_trace(
                trading_line(
                    axis, g[k], name=label, mode="lines+markers", marker={"size": 3},
                    showlegend=i == 1, legendgroup=label,
                ),
                row=i,
                col=1,
            )  # fmt: skip
    fig.update_layout(
        height=820, template="plotly_white", title="Greeks of the option positions (every 15 min)"
    )
    axis.apply(fig)
    return fig


# --------------------------------------------------------------------------- PNG


def _png_greeks(path: Path, greeks: pd.DataFrame, axis: TradingAxis) -> None:
    """Greeks over trading time, as the interactive chart."""
    series = _greek_series(greeks)
    fig, axes = plt.subplots(4, 1, figsize=(12, 9), sharex=True)
    for label, g in series.items():
        x = axis.x(g.index)
        for ax, (k, title) in zip(axes, GREEK_PANELS, strict=True):
            ax.plot(x, g[k].values, marker=".", markersize=3, linewidth=0.8, label=label)
            ax.set_title(title)
    for ax in axes:
        ax.axhline(0, color="#999", linewidth=0.6)
        axis.apply_mpl(ax)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle("Greeks of the option positions (every 15 min of market time)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _png_price(path: Path, r: ReportInput, axis: TradingAxis) -> None:
    n = max(1, len(r.prices))
    fig, axes = plt.subplots(n, 1, figsize=(12, 3.6 * n), squeeze=False)
    for ax, (sym, px) in zip(axes[:, 0], r.prices.items(), strict=False):
        bars = thin(px, {"open": "first", "high": "max", "low": "min", "close": "last"})
        ax.plot(
            axis.x(bars.index, starts=True), bars["close"], color="#444", linewidth=0.8, label=sym
        )
        for side, color, m in (("BUY", "#1a9850", "^"), ("SELL", "#d73027", "v")):
            f = _side_marks(r, sym, side)
            if not f.empty:
                x = axis.x(f["time"], starts=True)
                ax.scatter(x, f["price"], color=color, marker=m, s=28, label=side, zorder=3)
        ax.set_title(f"{sym}: price with entries and exits (trading time)")
        ax.legend(loc="best")
        axis.apply_mpl(ax)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _png_equity(path: Path, eq: pd.DataFrame, per: dict[str, pd.Series], axis: TradingAxis) -> None:
    e = thin(eq[["equity", "drawdown"]], {"equity": "last", "drawdown": "min"})
    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    x = axis.x(e.index)
    a1.plot(x, e["equity"], color="#2c7bb6", label="total")
    if len(per) > 1:
        for name, s in per.items():
            t = thin(s, "last")
            a1.plot(axis.x(t.index), t.values, linewidth=0.8, label=name)
    a1.set_title("Equity (rupees, trading time)")
    a1.ticklabel_format(axis="y", style="plain", useOffset=False)
    a1.legend(loc="upper left")
    a2.fill_between(x, e["drawdown"], 0, color="#d7191c", alpha=0.5)
    a2.set_title("Drawdown (rupees)")
    for a in (a1, a2):
        axis.apply_mpl(a)
        a.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _png_monthly(path: Path, monthly: pd.DataFrame) -> None:
    z = monthly.values * 100
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.45 * max(1, len(monthly))))
    lim = np.nanmax(np.abs(z)) if np.isfinite(z).any() else 1.0
    im = ax.imshow(z, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(monthly)), [str(y) for y in monthly.index])
    for (i, j), v in np.ndenumerate(z):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.1f}%", ha="center", va="center", fontsize=8)
    ax.set_title("Monthly returns")
    fig.colorbar(im, ax=ax, label="%")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -------------------------------------------------------------------------- page


def metric_rows(m: Metrics) -> list[tuple[str, str]]:
    """(label, text) of every figure, formatted for people."""

    def rupees(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:,.2f}"

    def pct(x: float) -> str:
        return "n/a" if math.isnan(x) or math.isinf(x) else f"{x * 100:.2f} %"

    def num(x: float) -> str:
        return "n/a" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.2f}")

    return [
        ("Net P&L (after charges)", rupees(m.net_pnl)),
        ("Charges", rupees(m.charges)),
        ("Return", pct(m.total_return)),
        ("CAGR", pct(m.cagr)),
        ("Sharpe", num(m.sharpe)),
        ("Sortino", num(m.sortino)),
        ("Max drawdown", f"{rupees(m.max_drawdown)} ({pct(m.max_drawdown_pct)})"),
        (
            "Max drawdown duration",
            str(timedelta(seconds=round(m.max_drawdown_duration.total_seconds()))),
        ),
        ("Trades", str(m.trades)),
        ("Win rate", pct(m.win_rate)),
        ("Profit factor", num(m.profit_factor)),
        ("Expectancy (per trade)", rupees(m.expectancy)),
        ("Average win", rupees(m.avg_win)),
        ("Average loss", rupees(m.avg_loss)),
        ("Exposure", pct(m.exposure)),
    ]


def _page(r: ReportInput, charts: str) -> str:
    names = [n for n in r.metrics if n != "*"]
    cols = ["*", *names] if len(names) > 1 else ["*"]
    head = "".join(f"<th>{html.escape('total' if c == '*' else c)}</th>" for c in cols)
    rows: dict[str, list[str]] = {label: [] for label, _ in metric_rows(r.metrics["*"])}
    for c in cols:
        for label, text in metric_rows(r.metrics[c]):
            rows[label].append(text)
    body = "".join(
        f"<tr><th>{html.escape(k)}</th>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in vs)
        + "</tr>"
        for k, vs in rows.items()
    )
    params = "".join(
        f"<li><b>{html.escape(s)}</b>: "
        + html.escape(", ".join(f"{k}={v}" for k, v in p.items()))
        + "</li>"
        for s, p in r.params.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in r.notes) or "<li>none</li>"
    rolls = _rolls(r.tables.get("events")) + _legs(r.tables.get("trades"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(r.title)}</title>
<script src="../plotly.min.js"></script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; }} table {{ border-collapse: collapse; margin: 8px 0 20px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th {{ background: #f4f4f4; text-align: left; }} .chart {{ margin: 18px 0; }}
</style></head><body>
<h1 id="title">{html.escape(r.title)}</h1>
<p>Run <code>{html.escape(r.run_id)}</code> &middot; times in IST &middot; figures from every
bar; charts thinned to {POINTS:,} points &middot;
<span id="build">{html.escape(compiled.build())}</span></p>
<h2>Metrics</h2>
<table id="metrics"><tr><th></th>{head}</tr>{body}</table>
<h2>Parameters</h2><ul>{params}</ul>
<h2>Notes</h2><ul id="notes">{notes}</ul>
{rolls}
{charts}
</body></html>
"""


def _legs(trades: pd.DataFrame | None) -> str:
    """P&L per instrument traded (an option strategy's legs), rupees, over the run."""
    if trades is None or trades.empty:
        return ""
    g = trades.groupby(["strategy", "symbol"], sort=True).agg(
        trades=("net_pnl", "size"),
        gross=("gross_pnl", "sum"),
        charges=("charges", "sum"),
        net=("net_pnl", "sum"),
    )
    if len(g) > 200:  # a year of daily legs: the strategies' biggest movers
        g = g.reindex(g["net"].abs().sort_values(ascending=False).index[:200])
        what = "the 200 instruments with the largest net P&L (of " + f"{len(trades):,} trades)"
    else:
        what = "every instrument traded"
    rows = "".join(
        f"<tr><td style='text-align:left'>{html.escape(s)}</td>"
        f"<td style='text-align:left'>{html.escape(sym)}</td><td>{int(v.trades)}</td>"
        f"<td>{v.gross:,.2f}</td><td>{v.charges:,.2f}</td><td>{v.net:,.2f}</td></tr>"
        for (s, sym), v in g.iterrows()
    )
    return (
        f"<h2>P&amp;L by instrument</h2><p>{what}; rupees.</p><table id='legs'><tr>"
        "<th>strategy</th><th>instrument</th><th>trades</th><th>gross</th><th>charges</th>"
        f"<th>net</th></tr>{rows}</table>"
    )


def _rolls(events: pd.DataFrame | None) -> str:
    """The futures rolls of the run (``roll_days``): when, whose, and how each ended."""
    if events is None or events.empty:
        return ""
    done = events[(events["kind"] == "roll") & (events["action"] != "approved")]
    if done.empty:
        return ""
    rows = "".join(
        f"<tr><td>{pd.Timestamp(e.time).tz_convert(IST):%Y-%m-%d %H:%M}</td>"
        f"<td>{html.escape(e.strategy)}</td><td>{html.escape(e.action)}</td>"
        f"<td style='text-align:left'>{html.escape(e.reason)}</td></tr>"
        for e in done.itertuples()
    )
    return (
        "<h2>Futures rolls</h2><table id='rolls'><tr><th>time</th><th>strategy</th>"
        f"<th>outcome</th><th>what</th></tr>{rows}</table>"
    )


def prices_from(source: Any, symbols: list[tuple[str, str]], start: Any, end: Any) -> dict:
    """Time-indexed OHLC of each traded instrument, read again from the run's source."""
    out = {}
    for ex, sym in symbols[:4]:
        parts = list(source.batches(ex, sym, start, end))
        if not parts:
            continue
        idx = pd.to_datetime(np.concatenate([p.start_ns for p in parts]), utc=True).tz_convert(IST)
        out[sym] = pd.DataFrame(
            {
                k: np.concatenate([getattr(p, k) for p in parts])
                for k in ("open", "high", "low", "close")
            },
            index=idx,
        )
    return out
