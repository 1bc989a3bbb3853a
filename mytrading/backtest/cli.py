"""``main.py backtest``: run, sweep, list, show, compare and export backtests."""

from __future__ import annotations

import math
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mytrading.domain.ids import Instrument
from mytrading.domain.refdata import IST
from mytrading.process.consoles import err, out, settings_or_exit
from mytrading.settings import ConfigError, Settings

# The backtest's own modules (pandas, DuckDB, plotly, matplotlib) are imported inside the
# commands: every other command of main.py loads this file too, and must stay quick.

app = typer.Typer(help="Backtests: the live strategies, risk and fills over history.")


def _settings() -> Settings:
    return settings_or_exit()


def _quiet(level: str) -> None:
    """Warnings and errors on the terminal; the run's info lines would drown the progress."""
    import logging

    import structlog

    n = max(logging.WARNING, logging.getLevelName(level.upper()) if level else logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(n),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            # plain tracebacks: rich's highlighted ones took half a second each, and a
            # strategy failing at every bar made a run ten times slower
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            ),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"{flag} {value!r} is not a date (YYYY-MM-DD)")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]backtest refused:[/] {exc}")
    return typer.Exit(2)


@app.callback(invoke_without_command=True)
def backtest(
    ctx: typer.Context,
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="NAME[,NAME...] from strategies/")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
    params: Annotated[
        list[str] | None, typer.Option("--params", "-p", help="key=value or strategy.key=value")
    ] = None,
    capital: Annotated[float, typer.Option(help="starting capital, rupees")] = 1_000_000.0,
    timeframe: Annotated[
        str | None, typer.Option(help="the strategies' bar timeframe (1m 3m 5m ... 1h D)")
    ] = None,
    data: Annotated[
        str, typer.Option(help="generated | history | recorded | FILE.duckdb")
    ] = "generated",
    interval: Annotated[
        str, typer.Option(help="the data's bars: 1m, or D for daily history")
    ] = "1m",
    seed: Annotated[int, typer.Option(help="seed of the generated history")] = 42,
    slippage: Annotated[int, typer.Option(help="ticks against MARKET and stop fills")] = 0,
    fills: Annotated[str, typer.Option(help="bars | ticks (recorded ticks)")] = "bars",
    allow_holes: Annotated[
        bool, typer.Option("--allow-holes", help="run although some days have no data")
    ] = False,
    sweep: Annotated[
        list[str] | None, typer.Option(help="param=start:stop:step (or a,b,c), repeatable")
    ] = None,
    rank: Annotated[str, typer.Option(help="sweep: the metric to rank by")] = "sharpe",
    workers: Annotated[int, typer.Option(help="sweep: processes (0: every core)")] = 0,
    cluster: Annotated[
        str | None, typer.Option(help="sweep: a Dask scheduler address (tcp://host:8786)")
    ] = None,
    method: Annotated[
        str, typer.Option(help="sweep: grid (every set), random, or optuna (TPE)")
    ] = "grid",
    trials: Annotated[
        int | None, typer.Option(help="sweep: parameter sets to try (random, optuna)")
    ] = None,
    constraint: Annotated[
        str | None, typer.Option(help='sweep: keep sets where this holds, "slow >= 2 * fast"')
    ] = None,
) -> None:
    """Run STRATEGY over history: progress, a summary, the report's path.

    With no dates: the current futures series up to yesterday. With no data downloaded,
    ``--data generated`` (the default) makes seeded history from the simulated market."""
    if ctx.invoked_subcommand is not None:
        return
    if not strategy:
        err.print("give --strategy NAME (see strategies/), or a subcommand: list, show, ...")
        raise typer.Exit(2)
    from mytrading.backtest.session import InputError, Request, execute, prepare
    from mytrading.domain.refdata import RefDataError

    s = _settings()
    _quiet(s.logs.level)
    req = Request(
        strategies=strategy.split(","),
        start=_date(start, "--from"),
        end=_date(end, "--to"),
        params=list(params or []),
        capital=capital,
        timeframe=timeframe,
        data=data,
        seed=seed,
        slippage_ticks=slippage,
        allow_holes=allow_holes,
        fills=fills,
        interval=interval,
    )
    try:
        prepared = prepare(s, req)
    except (InputError, ConfigError, RefDataError) as exc:
        raise _fail(exc) from None
    if sweep:
        from mytrading.research.cli import run_sweep

        try:
            run_sweep(s, prepared, sweep, rank, workers, cluster, out, err, method, trials,
                      constraint, seed)  # fmt: skip
        except InputError as exc:
            raise _fail(exc) from None
        return
    err.print(
        f"backtest {', '.join(req.strategies)} {prepared.spec.start} .. {prepared.spec.end} "
        f"on {prepared.data_name}"
    )
    with Progress(
        TextColumn("[bold]bars"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task("run", total=None, rate="")

        def tick(p: Any) -> None:
            import time

            elapsed = max(time.perf_counter() - p.started, 1e-9)
            bar.update(
                task,
                completed=p.bars,
                total=max(p.total, p.bars) or None,
                rate=f"{p.bars / elapsed:,.0f} bars/s",
            )

        from mytrading.backtest.store import StoreError

        try:
            outcome = execute(s, prepared, progress=tick)
        except InputError as exc:
            raise _fail(exc) from None
        except StoreError as exc:
            err.print(f"[bold red]the run was not stored (nor its report kept):[/] {exc}")
            raise typer.Exit(1) from None
    _summary(outcome.metrics, outcome.run_id, outcome.stats, outcome.notes)
    if outcome.paths:
        out.print(f"report: {outcome.paths['html']}")
        out.print(
            "images: "
            + ", ".join(
                str(outcome.paths[k])
                for k in ("price", "equity", "monthly", "greeks")
                if k in outcome.paths
            )
        )


def _summary(metrics: dict, run_id: str, stats: dict, notes: list[str]) -> None:
    from mytrading.backtest.report import metric_rows

    names = [n for n in metrics if n != "*"]
    cols = ["*", *names] if len(names) > 1 else ["*"]
    t = Table(title=f"backtest {run_id}: {stats['bars']:,} bars in {stats['seconds']:.1f} s")
    t.add_column("")
    for c in cols:
        t.add_column("total" if c == "*" else c, justify="right")
    rows: dict[str, list[str]] = {}
    for c in cols:
        for label, text in metric_rows(metrics[c]):
            rows.setdefault(label, []).append(text)
    for label, vals in rows.items():
        t.add_row(label, *vals)
    out.print(t)
    rejected = stats.get("rejected") or {}
    if rejected:
        out.print("risk refused: " + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())))
    for n in notes:
        out.print(f"[yellow]note:[/] {n}")


@app.command("walk-forward")
def walk_forward(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="NAME from strategies/")],
    grid: Annotated[list[str], typer.Option(help="param=start:stop:step (or a,b,c), repeatable")],
    in_sample: Annotated[
        str, typer.Option(help="in-sample length: 126 or 126d (trading days), 6M, 47250b")
    ] = "6M",
    out_of_sample: Annotated[str, typer.Option(help="out-of-sample length")] = "1M",
    step: Annotated[
        str | None, typer.Option(help="how far each window moves (the out-of-sample length)")
    ] = None,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="grow the in-sample window from the first day")
    ] = False,
    maximize: Annotated[str, typer.Option(help="the stat each window chooses by")] = "sharpe",
    method: Annotated[str, typer.Option(help="grid, random or optuna")] = "grid",
    trials: Annotated[
        int | None, typer.Option(help="parameter sets per window (random, optuna)")
    ] = None,
    constraint: Annotated[
        str | None, typer.Option(help='keep sets where this holds, "slow >= 2 * fast"')
    ] = None,
    params: Annotated[
        list[str] | None, typer.Option("--params", "-p", help="fixed key=value beside the grid")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
    data: Annotated[
        str, typer.Option(help="generated | history | recorded | FILE.duckdb")
    ] = "generated",
    seed: Annotated[int, typer.Option(help="seed of the generated history")] = 42,
    capital: Annotated[float, typer.Option(help="starting capital, rupees")] = 1_000_000.0,
    slippage: Annotated[int, typer.Option(help="ticks against MARKET and stop fills")] = 0,
    workers: Annotated[int, typer.Option(help="processes (0: every core)")] = 0,
    cluster: Annotated[
        str | None, typer.Option(help="a Dask scheduler address (tcp://host:8786)")
    ] = None,
) -> None:
    """Optimise on each in-sample window, trade the choice on the next out-of-sample
    window; the stitched out-of-sample result, its efficiency, the parameters' stability
    and the overfitting figures, with an HTML report."""
    from mytrading.backtest.session import InputError
    from mytrading.domain.refdata import RefDataError
    from mytrading.research.cli import walk_forward_command

    s = _settings()
    _quiet(s.logs.level)
    fixed: dict[str, str] = {}
    for item in params or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise _fail(ValueError(f"--params {item!r}: expected key=value"))
        fixed[k] = v
    options = {
        "in_sample": in_sample, "out_of_sample": out_of_sample, "step": step,
        "anchored": anchored, "maximize": maximize, "method": method, "n_trials": trials,
        "constraint": constraint, "params": fixed, "start": _date(start, "--from"),
        "end": _date(end, "--to"), "data": data, "data_seed": seed, "capital": capital,
        "slippage_ticks": slippage, "workers": workers, "cluster": cluster,
    }  # fmt: skip
    try:
        walk_forward_command(s, strategy, grid, options, out, err)
    except (InputError, ConfigError, RefDataError) as exc:
        raise _fail(exc) from None


def _checked(strategy: str, params: list[str] | None, start: str | None, end: str | None,
             data: str, seed: int) -> tuple[Settings, Any]:  # fmt: skip
    """The run a bias check judges, prepared as ``backtest`` prepares it (exit 2 if bad)."""
    from mytrading.backtest.session import InputError, Request, prepare
    from mytrading.domain.refdata import RefDataError

    s = _settings()
    _quiet("ERROR")
    req = Request([strategy], _date(start, "--from"), _date(end, "--to"), list(params or []),
                  data=data, seed=seed)  # fmt: skip
    try:
        return s, prepare(s, req)
    except (InputError, ConfigError, RefDataError) as exc:
        raise _fail(exc) from None


@app.command("check-lookahead")
def check_lookahead(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="NAME from strategies/")],
    params: Annotated[list[str] | None, typer.Option("--params", "-p", help="key=value")] = None,
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
    data: Annotated[
        str, typer.Option(help="generated | history | recorded | FILE.duckdb")
    ] = "generated",
    seed: Annotated[int, typer.Option(help="seed of the generated history")] = 42,
    cuts: Annotated[
        int, typer.Option(help="decisions to cut at, spread over the run (0: every one)")
    ] = 20,
) -> None:
    """Rerun the strategy on data cut just before its decisions and compare with the full
    run: exit 0 if every decision is the same, 1 naming the first that is not."""
    from mytrading.backtest.session import InputError
    from mytrading.research.checks import check_lookahead as run_check

    _, p = _checked(strategy, params, start, end, data, seed)
    err.print(f"check-lookahead {strategy} {p.spec.start} .. {p.spec.end} on {p.data_name}")
    try:
        got = run_check(p, cuts)
    except InputError as exc:
        raise _fail(exc) from None
    out.print(got.summary(), markup=False)
    if not got.clean:
        raise typer.Exit(1)


@app.command("check-warmup")
def check_warmup(
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="NAME from strategies/")],
    params: Annotated[list[str] | None, typer.Option("--params", "-p", help="key=value")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="the day compared, YYYY-MM-DD")
    ] = None,
    data: Annotated[
        str, typer.Option(help="generated | history | recorded | FILE.duckdb")
    ] = "generated",
    seed: Annotated[int, typer.Option(help="seed of the generated history")] = 42,
    extra: Annotated[
        int | None, typer.Option(help="more warm-up bars to compare with (3x the longest)")
    ] = None,
) -> None:
    """Each indicator over a day with the declared warm-up and with more: exit 0 if none
    moves, 1 naming one that does (or is still NaN after its warm-up)."""
    from mytrading.research.checks import check_warmup as run_check

    _, p = _checked(strategy, params, start, start, data, seed)
    got = run_check(p, extra)
    for (ex, sym, tf), n in got.warmups.items():
        out.print(f"declared warm-up: {n} bars of {tf} on {ex}:{sym}")
    for d in got.drifts:
        state = "still NaN" if d.nan_after_warmup else f"moves {d.max_rel:.3g} relative"
        line = f"  {d.strategy}.{d.indicator}[{d.output}]: {state} with {got.extra} more bars"
        out.print(line, markup=False)
    out.print(got.summary(), markup=False)
    if got.moving:
        raise typer.Exit(1)


@app.command("list")
def list_runs(n: Annotated[int, typer.Option("-n", help="most recent N")] = 30) -> None:
    """Stored runs, newest first."""
    from mytrading.backtest import store

    s = _settings()
    try:
        df = store.runs(s.stores.backtest_db, n)
    except store.StoreError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    t = Table(title=f"backtest runs ({s.stores.backtest_db})")
    for c in (
        "run",
        "strategies",
        "window",
        "bars",
        "net P&L",
        "return",
        "sharpe",
        "max DD",
        "trades",
        "sweep",
    ):
        t.add_column(
            c, justify="left" if c in ("run", "strategies", "window", "sweep") else "right"
        )
    for r in df.itertuples():
        t.add_row(
            r.run_id,
            r.strategies,
            f"{_day(r.start)} .. {_day(r.end)}",
            f"{r.bars:,}",
            _f(r.net_pnl, "{:,.0f}"),
            _f(r.total_return, "{:.2%}"),
            _f(r.sharpe, "{:.2f}"),
            _f(r.max_drawdown, "{:,.0f}"),
            _f(r.trades, "{:.0f}"),
            r.sweep or "",
        )
    out.print(t)


def _day(v: Any) -> str:
    return str(v)[:10]


def _f(v: Any, fmt: str) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


@app.command("show")
def show(run_id: Annotated[str, typer.Argument(help="a run id (or its start)")]) -> None:
    """One run: its settings, metrics per strategy and in total, notes and report."""
    from mytrading.backtest import store

    s = _settings()
    try:
        row, metrics = store.run(s.stores.backtest_db, run_id)
    except store.StoreError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    window = f"{_day(row['start'])} .. {_day(row['end'])}"
    out.print(f"[bold]{row['run_id']}[/]  {row['strategies']}  {window}")
    out.print(f"data: {row['data']}   fills: {row['fills']}   slippage: {row['slippage']} ticks")
    out.print(f"capital: {row['capital']:,.0f}   bars: {row['bars']:,} in {row['seconds']:.1f} s")
    out.print(f"params: {row['params']}")
    out.print(_metrics_table(metrics, "metrics"))
    for n in (row["notes"] or "").splitlines():
        out.print(f"[yellow]note:[/] {n}")
    if row["report"]:
        out.print(f"report: {row['report']}")


def _metrics_table(metrics: Any, title: str) -> Table:
    t = Table(title=title)
    t.add_column("metric")
    for c in metrics.columns:
        t.add_column("total" if c == "*" else str(c), justify="right")
    for name, vals in metrics.iterrows():
        t.add_row(str(name), *(_f(v, "{:,.4g}") for v in vals))
    return t


@app.command("compare")
def compare(
    runs: Annotated[list[str], typer.Argument(help="two or more run ids")],
) -> None:
    """Totals of several runs side by side."""
    import pandas as pd

    from mytrading.backtest import store

    s = _settings()
    if len(runs) < 2:
        err.print("compare needs two or more run ids")
        raise typer.Exit(2)
    cols = {}
    try:
        for r in runs:
            row, m = store.run(s.stores.backtest_db, r)
            cols[row["run_id"]] = m["*"]
    except store.StoreError as exc:
        err.print(str(exc))
        raise typer.Exit(1) from None
    out.print(_metrics_table(pd.DataFrame(cols), "compare (totals)"))


@app.command("export")
def export(
    run_id: Annotated[str, typer.Argument()],
    to: Annotated[Path, typer.Option("--out", help="directory")] = Path("."),
    fmt: Annotated[str, typer.Option("--format", help="csv | parquet")] = "csv",
) -> None:
    """Every table of a run (orders, fills, positions, trades, events, equity, metrics)."""
    from mytrading.backtest import store

    s = _settings()
    try:
        row, _ = store.run(s.stores.backtest_db, run_id)
        files = store.export(s.stores.backtest_db, row["run_id"], to, fmt)
    except store.StoreError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from None
    for f in files:
        out.print(str(f))


@app.command("shadow")
def shadow(
    day: Annotated[
        str | None, typer.Option("--day", help="YYYY-MM-DD (the latest recorded)")
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="NAME[,NAME...] (those that traded)")
    ] = None,
    capital: Annotated[
        float | None, typer.Option(help="the shadow's capital, rupees (MT_SIM_CAPITAL)")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="first day of a summary over days")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="last day (the latest recorded)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the whole result as JSON")] = False,
) -> None:
    """The day's live trades against their own backtest over the day's recordings: each
    trade matched, live only or shadow only, and the P&L bridge from the shadow's net to
    the live net by cause; with --from (and --to), every recorded day of the span summed
    up per strategy (docs/backtesting.md "Live against its shadow")."""
    import json

    from mytrading.backtest.data import DataError
    from mytrading.backtest.session import InputError
    from mytrading.process.logsetup import quietly
    from mytrading.shadow import SHADOW_LATER
    from mytrading.shadow.day import (
        RecordingHeldError,
        ShadowError,
        recording_for,
        shadow_day,
        shadow_days,
    )

    s = _settings()
    names = [n.strip() for n in strategy.split(",") if n.strip()] if strategy else None
    if day and (start or end):
        err.print("--day is one day; --from/--to a span: give one or the other")
        raise typer.Exit(2)
    try:
        with quietly():
            if start or end:
                first = _date(start, "--from") or date.min
                last = _date(end, "--to") or recording_for(s.stores.record_db, None)[1]
                days, skipped = shadow_days(s, first, last, names, capital)
                _shadow_summary(days, skipped, first, last, as_json)
                return
            got = shadow_day(s, _date(day, "--day"), names, capital)
    except (ShadowError, InputError, DataError) as exc:
        err.print(f"[bold red]shadow refused:[/] {exc}")
        # 3: the running feed holds the recording and has no copy of the day yet; the
        # same command succeeds later (the monitor's end-of-day run asks again)
        raise typer.Exit(SHADOW_LATER if isinstance(exc, RecordingHeldError) else 2) from None
    if as_json:
        print(json.dumps(got.to_json(), indent=1))
        return
    out.print(f"[bold]{got.day}[/]: live against its shadow")
    for _, st in sorted(got.strategies.items()):
        c = st.counts()
        out.print(f"  {st.line()}")
        out.print(f"    {c['matched']} matched, {c['live_only']} live only, "
                  f"{c['shadow_only']} shadow only")  # fmt: skip
        for p in st.pairs:
            if p.kind != "matched":
                t = p.live or p.shadow
                assert t is not None
                when = datetime.fromtimestamp(t.decided_ns / 1e9, IST).strftime("%H:%M:%S")
                out.print(f"    {p.kind:<11} {when} {t.action} {t.quantity} {t.symbol}: {p.why}")
    for g in (g.row() for g in got.given):  # given to the shadow too (its operator line)
        out.print(f"  operator {g['at']} {g['target']}: {g['what']} ({g['reason']})")
    for note in got.notes:
        out.print(f"  [yellow]note:[/] {note}")


def _shadow_summary(days: list[Any], skipped: dict[date, str], first: date, last: date,
                    as_json: bool) -> None:  # fmt: skip
    import json

    from mytrading.shadow.summary import summarize

    got = summarize(days)
    if as_json:
        print(json.dumps({
            "from": first.isoformat() if first != date.min else None,
            "to": last.isoformat(),
            "days": [d.day.isoformat() for d in days],
            "strategies": {n: sm.to_json() for n, sm in sorted(got.items())},
            "skipped": {d.isoformat(): why for d, why in sorted(skipped.items())},
        }, indent=1))  # fmt: skip
        return
    out.print(f"[bold]{len(days)} day(s)[/]: live against its shadow")
    for name, sm in sorted(got.items()):
        j = sm.to_json()
        slip = j["slippage_per_trade"]
        out.print(
            f"  {name}: {j['matched_share']:.0%} of {sum(sm.counts.values())} decisions matched; "
            f"slippage per trade {slip['mean']:+,.2f} (median {slip['median']:+,.2f}, worst "
            f"{slip['worst']:+,.2f}); live {sm.live_net:+,.2f} vs shadow {sm.shadow_net:+,.2f}"
        )
        for cause, rs in sm.ranked():
            out.print(f"    {cause:<13} {rs:+,.2f}")
    for d, why in sorted(skipped.items()):
        out.print(f"  [yellow]{d} not shadowed:[/] {why}")


# ------------------------------------------------------------------- data commands


def _instrument(arg: str) -> tuple[str, str]:
    try:
        inst = Instrument.parse(arg)
    except ValueError:
        err.print(f"--symbol {arg!r}: write EXCHANGE:SYMBOL, e.g. NFO:NIFTY29DEC26FUT")
        raise typer.Exit(2) from None
    return inst.exchange, inst.symbol


def data_download(
    symbol: Annotated[str, typer.Option("--symbol", help="EXCHANGE:SYMBOL")],
    interval: Annotated[str, typer.Option(help="1m 5m 15m 1h D")] = "1m",
    start: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (default today)")] = None,
    retry_holes: Annotated[bool, typer.Option("--retry-holes")] = False,
) -> None:
    """Download OpenAlgo history into MT_HISTORY_DB; resumable; holes listed."""
    from datetime import datetime, timedelta

    from mytrading.backtest.download import HistoryInputError, download
    from mytrading.domain.bars import BarBuilder
    from mytrading.domain.refdata import IST, load_refdata
    from mytrading.openalgo.history import http_history

    s = _settings()
    ex, sym = _instrument(symbol)
    today = datetime.now(IST).date()
    first = _date(start, "--from") or today - timedelta(days=7)
    last = _date(end, "--to") or today
    if first > last:
        err.print(f"empty date range: --from {first} is after --to {last}")
        raise typer.Exit(2)
    refdata = load_refdata(s.config_dir)
    fetch = http_history(
        s.rest_url(), s.api_key(), 30.0, lambda tf: BarBuilder(refdata.calendar, tf)
    )
    err.print(f"history {ex}:{sym} {interval} {first} .. {last} from {s.rest_url()}")
    try:
        got = download(
            s.stores.history_db,
            refdata,
            fetch,
            ex,
            sym,
            interval,
            first,
            last,
            today,
            retry_holes,
            lambda done, total: err.print(f"  {done}/{total} days"),
        )
    except HistoryInputError as exc:
        err.print(f"download refused: {exc}")
        raise typer.Exit(2) from None
    out.print(
        f"{len(got.fetched)} day(s) fetched, {got.bars:,} bars stored in {s.stores.history_db}; "
        f"{got.skipped} day(s) already there"
    )
    if got.holes:
        out.print(
            f"holes ({len(got.holes)} trading day(s) without data): "
            + ", ".join(str(d) for d in got.holes)
        )
    if got.error:
        err.print(f"[bold red]stopped:[/] {got.error}")
        raise typer.Exit(1)


def data_import(
    file: Annotated[Path, typer.Argument(help="a .csv or .parquet file of bars")],
    symbol: Annotated[str, typer.Option("--symbol", help="EXCHANGE:SYMBOL")],
    interval: Annotated[str, typer.Option(help="1m 5m 15m 1h D")] = "1m",
) -> None:
    """Import bars (time, open, high, low, close[, volume]) into MT_HISTORY_DB."""
    from mytrading.backtest.download import (
        HistoryInputError,
        check_request,
        import_bars,
        normalise,
        read_file,
    )
    from mytrading.domain.refdata import load_refdata

    s = _settings()
    ex, sym = _instrument(symbol)
    refdata = load_refdata(s.config_dir)
    try:
        check_request(refdata, ex, sym, interval)
        df = normalise(read_file(file), refdata, ex, interval)
    except HistoryInputError as exc:
        err.print(f"import refused: {exc}")
        raise typer.Exit(2) from None
    n, days = import_bars(s.stores.history_db, df, ex, sym, interval)
    out.print(
        f"{n:,} bars of {ex}:{sym} ({interval}) on {len(days)} day(s) imported into "
        f"{s.stores.history_db}: {days[0]} .. {days[-1]}"
        if days
        else "nothing to import"
    )
