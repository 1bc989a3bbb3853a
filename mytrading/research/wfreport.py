"""The walk-forward's HTML report and its PNG: the stitched out-of-sample curve on
trading time with each window's start marked, the parameters chosen per window, the
windows' table, parameter stability and the overfitting figures, each explained."""

from __future__ import annotations

import html
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from mytrading.backtest import store
from mytrading.backtest.axis import TradingAxis
from mytrading.backtest.report import metric_rows, thin
from mytrading.domain.refdata import IST
from mytrading.research.plot import add_curve

# ``wf`` below is a ``research.walkforward.WalkForward``, not imported: it imports this module
WalkForward = Any


def _starts(wf: WalkForward, axis: TradingAxis) -> list[tuple[int, int]]:
    """(window, position of its first out-of-sample point) for each window."""
    out = []
    for n, row in wf.windows.iterrows():
        t = pd.Timestamp(row["oos_start"]).tz_localize(IST)
        out.append((int(n), int(axis.x([t])[0])))
    return out


def equity_figure(wf: WalkForward) -> go.Figure:
    """Stitched out-of-sample equity and drawdown on trading time, a dashed line at each
    window's first out-of-sample bar; the chosen parameters per window below."""
    eq = wf.equity
    axis = TradingAxis.of(eq.index)
    params = [c for c in wf.windows.columns if c.startswith("param_")]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.5, 0.2, 0.3],
        vertical_spacing=0.06,
        subplot_titles=[
            "Out-of-sample equity, stitched (rupees)",
            "Drawdown (rupees)",
            "Parameters chosen in sample for each window",
        ],
    )
    add_curve(fig, axis, eq, 1, 2)
    starts = _starts(wf, axis)
    ends = [p for _, p in starts[1:]] + [max(0, len(axis.times) - 1)]
    for k in params:
        xs: list[float | None] = []
        ys: list[Any] = []
        for (n, a), b in zip(starts, ends, strict=True):
            xs += [a, b, None]
            v = wf.windows.loc[n, k]
            ys += [v, v, None]
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name=k.removeprefix("param_")), row=3, col=1
        )
    for n, x in starts:
        fig.add_vline(x=x, line={"color": "#888", "dash": "dot", "width": 1})
        fig.add_annotation(
            x=x, y=1.0, yref="paper", text=f"W{n}", showarrow=False, xanchor="left",
            font={"size": 10, "color": "#555"},
        )  # fmt: skip
    fig.update_layout(
        height=760,
        template="plotly_white",
        title=f"Walk-forward of {wf.strategy}: {len(wf.windows)} windows "
        f"({'anchored' if wf.anchored else 'rolling'})",
    )
    axis.apply(fig)
    return fig


def _png(path: Path, wf: WalkForward) -> None:
    eq = wf.equity
    axis = TradingAxis.of(eq.index)
    e = thin(eq[["equity", "drawdown"]], {"equity": "last", "drawdown": "min"})
    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    x = axis.x(e.index)
    a1.plot(x, e["equity"], color="#2c7bb6")
    a1.set_title(f"{wf.strategy}: stitched out-of-sample equity (rupees, trading time)")
    a1.ticklabel_format(axis="y", style="plain", useOffset=False)
    a2.fill_between(x, e["drawdown"], 0, color="#d7191c", alpha=0.5)
    a2.set_title("Drawdown (rupees)")
    for a in (a1, a2):
        axis.apply_mpl(a)
        a.grid(axis="y", alpha=0.3)
        for n, pos in _starts(wf, axis):
            a.axvline(pos, color="#555", linestyle=":", linewidth=1)
            if a is a1:
                a.annotate(f"W{n}", (pos, 1.0), xycoords=("data", "axes fraction"),
                           xytext=(2, -10), textcoords="offset points", fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:,.4g}"
    return html.escape(str(v))


def _table(df: pd.DataFrame, table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [df.index.name or "", *df.columns])
    rows = "".join(
        f"<tr><th>{html.escape(str(i))}</th>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>"
        for i, r in zip(df.index, df.itertuples(index=False), strict=True)
    )
    return f"<table id='{table_id}'><tr>{head}</tr>{rows}</table>"


EXPLAIN = """
<h2>What the figures mean</h2>
<ul>
<li><b>Out of sample</b> is all that counts: each window's parameters were chosen on the
in-sample days before it and never saw its own days. The curve is those windows' P&amp;L
added in turn.</li>
<li><b>Walk-forward efficiency</b>: the out-of-sample annualised return over the
in-sample one. Near 1, the in-sample result carried over; near 0 or negative, it was
mostly fitted noise.</li>
<li><b>Deflated Sharpe ratio</b> (Bailey and L&oacute;pez de Prado, 2014): the
probability that the in-sample best's true Sharpe ratio is above zero, once the number of
sets tried and the returns' skewness and kurtosis are accounted for. Below 0.95, the best
of the search is not distinguishable from luck.</li>
<li><b>PBO</b>, the probability of backtest overfitting (Bailey, Borwein, L&oacute;pez de
Prado and Zhu, 2015): over many halvings of the in-sample days, how often the set best on
one half ranks at or below the median on the other. Near 0.5 or above, choosing the best
set is no better than choosing at random.</li>
<li><b>Probabilistic Sharpe ratio out of sample</b>: the same probability for the stitched
out-of-sample returns, with no selection to deflate for.</li>
<li><b>Stability</b>: how often the chosen value of each parameter changed from one window
to the next; parameters that jump around are being fitted to noise.</li>
</ul>
"""


def write(wf: WalkForward, out_dir: Path | None = None) -> dict[str, Path]:
    """report.html and equity.png of a walk-forward; their paths by name."""
    if out_dir is None:
        assert wf._settings is not None
        name = wf.run_id or store.new_run_id(datetime.now(IST))
        out_dir = wf._settings.stores.report_dir / f"wf-{name}"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir.parent / "plotly.min.js"
    if not js.exists():
        js.write_text(get_plotlyjs())
    paths = {"html": out_dir / "report.html", "equity": out_dir / "equity.png"}
    _png(paths["equity"], wf)
    from mytrading.backtest.metrics import Metrics

    m = Metrics(**{k: wf.stats[k] for k in Metrics.__dataclass_fields__})
    metrics = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in metric_rows(m)
    )
    psr = f"{wf.oos_psr.probability:.3f}" if wf.oos_psr else "n/a"
    eff = "n/a" if math.isnan(wf.efficiency) else f"{wf.efficiency:.3f}"
    pbo = wf.windows["is_pbo"].dropna()
    figures = (
        f"<tr><th>Walk-forward efficiency</th><td id='wfe'>{eff}</td></tr>"
        f"<tr><th>Probabilistic Sharpe ratio (out of sample)</th><td id='psr'>{psr}</td></tr>"
        f"<tr><th>Deflated Sharpe ratio in sample (median of windows)</th><td>"
        f"{_cell(float(wf.windows['is_deflated_sharpe'].median()))}</td></tr>"
        f"<tr><th>PBO in sample (mean of windows)</th><td id='pbo'>"
        f"{_cell(float(pbo.mean()) if len(pbo) else math.nan)}</td></tr>"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in wf.notes) or "<li>none</li>"
    chart = equity_figure(wf).to_html(full_html=False, include_plotlyjs=False)
    lengths = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in wf.lengths.items())
    title = f"Walk-forward {wf.strategy}: {wf.stats['start']} to {wf.stats['end']} out of sample"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script src="../plotly.min.js"></script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; }} table {{ border-collapse: collapse; margin: 8px 0 20px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th {{ background: #f4f4f4; text-align: left; }}
</style></head><body>
<h1 id="title">{html.escape(title)}</h1>
<p>Run <code>{html.escape(wf.run_id or "not stored")}</code> &middot; {html.escape(lengths)},
{"anchored" if wf.anchored else "rolling"} &middot; chosen by {html.escape(wf.maximize)}
({html.escape(wf.method)}) &middot; times in IST, charts on trading time.</p>
<h2>Out of sample, stitched</h2><table id="metrics">{metrics}</table>
<h2>Is it luck?</h2><table id="luck">{figures}</table>
<h2>Windows</h2>{_table(wf.windows, "windows")}
<h2>Parameter stability</h2>{_table(wf.stability, "stability")}
<h2>Notes</h2><ul id="notes">{notes}</ul>
<section class="chart">{chart}</section>
{EXPLAIN}
</body></html>
"""
    paths["html"].write_text(page)
    return paths
