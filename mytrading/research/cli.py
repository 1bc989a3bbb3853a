"""What ``main.py backtest --sweep`` and ``main.py backtest walk-forward`` do: the notebook
API's search and walk-forward with a progress line, a table, the luck figures and a
report. The typer commands are in ``backtest/cli.py`` (imported lazily: this module loads
pandas)."""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from mytrading.backtest import store
from mytrading.backtest.session import InputError, Prepared
from mytrading.backtest.sweep import heatmap, parse_axes, store_runs
from mytrading.domain.refdata import IST
from mytrading.research.optimize import Constraint, luck, returns_table, search
from mytrading.research.result import STATS
from mytrading.settings import Settings


def constraint_of(expr: str | None) -> Constraint | None:
    """``--constraint "slow >= 2 * fast"``: a Python expression over the parameters, the
    operator's own (no builtins)."""
    if not expr:
        return None
    try:
        code = compile(expr, "--constraint", "eval")
    except SyntaxError as exc:
        raise InputError(f"--constraint {expr!r}: not an expression ({exc.msg})") from None

    def check(params: dict[str, Any]) -> bool:
        try:
            return bool(eval(code, {"__builtins__": {}}, dict(params)))
        except NameError as exc:
            have = sorted(params)
            raise InputError(f"--constraint {expr!r}: {exc} (parameters: {have})") from None

    return check


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:,.4g}"
    return str(v)


def run_sweep(
    s: Settings,
    p: Prepared,
    specs: list[str],
    rank: str,
    workers: int,
    cluster: str | None,
    out: Console,
    err: Console,
    method: str = "grid",
    n_trials: int | None = None,
    constraint: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The search, stored (each set a run tagged with the sweep's id), ranked, with the
    deflated Sharpe ratio of the best and the PBO of them all, and a heatmap."""
    if rank not in STATS:
        raise InputError(f"--rank {rank!r}: one of {', '.join(STATS)}")
    axes = parse_axes(specs)
    sweep_id = "sweep-" + store.new_run_id(datetime.now(IST))
    where = cluster or f"{workers or os.cpu_count()} processes"
    n_grid = math.prod(len(v) for v in axes.values())
    size = f"{n_trials} of {n_grid}" if method != "grid" else str(n_grid)
    err.print(f"{sweep_id}: {size} combinations of {', '.join(axes)} on {where} ({method})")
    trials = search(
        p, axes, maximize=rank, method=method, n_trials=n_trials,
        constraint=constraint_of(constraint), seed=seed, workers=workers, cluster=cluster,
    )  # fmt: skip
    frame = trials.frame()
    for _, r in frame[frame["status"] != "ok"].iterrows():
        combo = {k: r[k] for k in axes}
        err.print(f"[yellow]{combo}: not run ({r['status']}): {r['error']}[/]")
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise InputError("no combination could run (see above)")
    store_runs(s, p, sweep_id, trials.finished)
    table = ok.astype({rank: float}).sort_values(rank, ascending=False, na_position="last")
    table = table.reset_index()
    _print(out, table, list(axes), rank)
    best = int(table.loc[0, "trial"])
    dsr, po, notes = luck(returns_table(trials), best)
    out.print(_luck_line(len(ok), dsr, po))
    for n in notes:
        out.print(f"  ({n})")
    for path in heatmap(s.stores.report_dir / sweep_id, table, list(axes), rank):
        out.print(f"heatmap: {path}")
    return table


def _luck_line(n: int, dsr: Any, po: Any) -> str:
    d = f"{dsr.probability:.3f}" if dsr else "n/a"
    o = f"{po.probability:.3f}" if po else "n/a"
    return (
        f"best of {n} trials: deflated Sharpe ratio {d} (P(true Sharpe > 0) after the "
        f"selection), PBO {o} (probability the best is overfit)"
    )


def _print(out: Console, table: pd.DataFrame, keys: list[str], rank: str) -> None:
    t = Table(title=f"ranked by {rank} (best first, top 15)")
    cols = list(dict.fromkeys([*keys, rank, "net_pnl", "total_return", "max_drawdown", "trades"]))
    for c in cols:
        t.add_column(c, justify="right")
    for _, row in table.head(15).iterrows():
        t.add_row(*(_cell(row[c]) for c in cols))
    out.print(t)


def walk_forward_command(
    s: Settings,
    strategy: str,
    grid: list[str],
    options: dict[str, Any],
    out: Console,
    err: Console,
) -> Path:
    """``main.py backtest walk-forward``: run it, print the windows and figures, write
    and return the report."""
    from mytrading.research.walkforward import walk_forward

    axes = parse_axes(grid)
    expr = options.pop("constraint", None)
    err.print(
        f"walk-forward {strategy}: in sample {options['in_sample']}, out of sample "
        f"{options['out_of_sample']}, {'anchored' if options.get('anchored') else 'rolling'}"
    )
    wf = walk_forward(strategy, axes, constraint=constraint_of(expr), settings=s, **options)
    t = Table(title=f"{len(wf.windows)} windows (parameters chosen in sample)")
    shown = ["oos_start", "oos_end", *[c for c in wf.windows.columns if c.startswith("param_")],
             "is_score", "is_deflated_sharpe", "is_pbo", "oos_net_pnl", "oos_trades"]  # fmt: skip
    t.add_column("window", justify="right")
    for c in shown:
        t.add_column(c.removeprefix("param_"), justify="right")
    for n, row in wf.windows.iterrows():
        t.add_row(str(n), *(_cell(row[c]) for c in shown))
    out.print(t)
    st = wf.stats
    eff = "n/a" if math.isnan(wf.efficiency) else f"{wf.efficiency:.3f}"
    psr = f"{wf.oos_psr.probability:.3f}" if wf.oos_psr else "n/a"
    out.print(
        f"out of sample {st['start']}..{st['end']}: net {st['net_pnl']:,.2f}, Sharpe "
        f"{_cell(float(st['sharpe']))}, max drawdown {st['max_drawdown']:,.2f}, "
        f"{st['trades']} trades; walk-forward efficiency {eff}; probabilistic Sharpe {psr}"
    )
    for n in wf.notes:
        out.print(f"  ({n})")
    paths = wf.report()
    out.print(f"stored as {wf.run_id}")
    out.print(f"report: {paths['html']}")
    out.print(f"image: {paths['equity']}")
    return Path(paths["html"])
