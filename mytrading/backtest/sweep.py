"""Parameter sweeps: every combination of the given values, one backtest each, on every
core (processes) or on a Dask cluster, and the heatmap of a metric over them. The search
around it (grid, random, optuna; ranking; the luck figures) is ``research/optimize.py``.

A job is plain data (directories, strategy names, parameters, the window, the data
source), so it runs the same in a forked process on this machine and on a Dask worker
elsewhere: each worker loads the strategies and reference data itself, once. Runs are
stored as usual, tagged with the sweep's id, without per-run tables or reports (a sweep of
hundreds would write hundreds of equity curves); ``backtest show RUN`` shows each one's
metrics, and running one combination alone gives its full report.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import math
import multiprocessing
import os
import pickle
import weakref
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import ValidationError

from mytrading.backtest import store
from mytrading.backtest.session import InputError, Prepared
from mytrading.domain.refdata import IST, RefData
from mytrading.risk.config import RiskConfig
from mytrading.settings import Settings

MAX_COMBOS = 10_000


@dataclass(frozen=True)
class Job:
    """One combination. It carries the reference data and risk's files as the parent
    process loaded them (``Prepared``), so a worker here or on a cluster runs the very
    configuration the parent checked: nothing is read again from a path."""

    refdata: RefData
    risk: RiskConfig
    strategies_dir: str
    strategies: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    start: date
    end: date
    capital: float
    slippage: int
    allow_holes: bool
    source: tuple[str, str, int, date | None]  # (kind, path, seed, origin)
    combo: dict[str, Any]
    # strategy classes given as objects (a notebook's), by name: sent with the job
    classes: tuple[tuple[str, Any], ...] = ()
    detail: bool = False  # also the curve, the fills and the round trips (a walk-forward's)
    refdata_key: str = ""  # ``refdata_digest``: which data a kept source was made from


def parse_axes(specs: list[str]) -> dict[str, list[str]]:
    """``fast=5:30:5`` (start:stop:step, stop included) or ``fast=5,8,13``."""
    axes: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key or not values:
            raise InputError(f"--sweep {spec!r}: expected param=start:stop:step or param=a,b,c")
        if ":" in values:
            try:
                a, b, step = (float(x) for x in values.split(":"))
            except ValueError:
                raise InputError(f"--sweep {spec!r}: start:stop:step must be numbers") from None
            if step <= 0 or b < a:
                raise InputError(f"--sweep {spec!r}: need start <= stop and a positive step")
            n = math.floor((b - a) / step + 1e-9) + 1
            nums = [a + i * step for i in range(n)]
            axes[key] = [str(int(x)) if float(x).is_integer() else str(x) for x in nums]
        else:
            axes[key] = [v.strip() for v in values.split(",") if v.strip()]
    return axes


def combos(axes: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(axes)
    out = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*axes.values())]
    if len(out) > MAX_COMBOS:
        raise InputError(f"{len(out)} combinations: more than {MAX_COMBOS}; narrow the sweep")
    return out


def _stamp(strategies_dir: str) -> tuple[tuple[str, int, int], ...]:
    """The strategy files as they are now (name, mtime, size): a worker that lives across
    searches loads them again once one changed."""
    files = (f for f in Path(strategies_dir).iterdir() if f.suffix in (".py", ".toml"))
    return tuple(sorted((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files))


@functools.lru_cache(maxsize=4)
def _classes(strategies_dir: str, stamp: tuple[tuple[str, int, int], ...]) -> Any:
    """The strategies of a directory as its files are (``stamp``): modules the loader
    imported from it before are dropped first, or it would hand the old ones back."""
    import sys

    from mytrading.engine.loader import discover

    root = Path(strategies_dir).resolve()
    for name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if name.startswith("mt_strategies.") and file and Path(file).resolve().parent == root:
            del sys.modules[name]
    return discover(Path(strategies_dir))


_SOURCES: dict[tuple[Any, ...], Any] = {}
# id -> (a weak reference to the reference data, its digest): every ``prepare`` loads its
# own reference data (a notebook's hundredth call, the hundredth object), and a strong
# reference here kept each alive, master contract and all, for the process's life
_DIGESTS: dict[int, tuple[weakref.ref[RefData], str]] = {}


def refdata_digest(refdata: RefData) -> str:
    """A digest of the reference data's content, made once per object in the parent: a
    worker that kept a source (a Dask worker lives across searches, and one process runs
    a one-worker search in the caller) must not serve a walk generated from other data.
    Reference data are not changed once loaded, so an object's digest is kept while the
    object lives."""
    got = _DIGESTS.get(id(refdata))
    if got is None or got[0]() is not refdata:
        for key in [k for k, (ref, _) in _DIGESTS.items() if ref() is None]:
            del _DIGESTS[key]  # objects gone since (an id may be reused)
        digest = hashlib.sha1(pickle.dumps(refdata)).hexdigest()
        got = _DIGESTS[id(refdata)] = (weakref.ref(refdata), digest)
    return got[1]


def _source(job: Job, generated: Any, duck: Any) -> Any:
    """The job's data, opened once per worker process: a sweep's or a walk-forward's jobs
    share one source, so the generated walk is made once (it was 0.3 s of every job of a
    two-year walk-forward), not once per parameter set, and kept whole: the jobs' windows
    come in any order."""
    key = (*job.source, job.refdata_key)
    got = _SOURCES.get(key)
    if got is None:
        kind, path, seed, origin = job.source
        got = (
            generated(job.refdata, seed, origin, keep_all=True)
            if kind == "generated"
            else duck(Path(path))
        )
        if len(_SOURCES) >= 2:  # a worker serves one search at a time
            _SOURCES.clear()
        _SOURCES[key] = got
    return got


def run_job(job: Job) -> dict[str, Any]:
    """One combination, in whatever process runs it: metrics as plain numbers and the
    daily returns (``returns``: ISO day -> return, for the overfitting figures). A
    combination that raises comes back with its ``error`` and ``traceback``; the others
    go on."""
    from mytrading.process.logsetup import quietly

    # errors only while it runs (a worker's own, or the caller's with one worker: its
    # logging configuration comes back after)
    with quietly():
        return _run_job(job)


def _run_job(job: Job) -> dict[str, Any]:
    import traceback

    from mytrading.backtest.data import DataError, DuckBars, GeneratedBars
    from mytrading.backtest.loop import Backtest, Spec
    from mytrading.backtest.metrics import daily_returns

    window = (str(job.start), str(job.end))
    try:
        refdata = job.refdata
        classes = (
            dict(job.classes)
            if job.classes
            else _classes(job.strategies_dir, _stamp(job.strategies_dir))
        )
        source = _source(job, GeneratedBars, DuckBars)
        strategies = []
        for name in job.strategies:
            p = {**job.params[name]}
            fields = classes[name].Params.model_fields
            p.update({k: v for k, v in job.combo.items() if k in fields})
            strategies.append((classes[name], p))
        spec = Spec(strategies, job.start, job.end, job.capital, job.slippage, job.allow_holes)
        bt = Backtest(spec, refdata, job.risk, source)
        res = bt.run()
        broken = {n: h for n, h in bt.runner.health.items() if h.errors}
        if broken:  # a strategy's hook raised: its figures are not the strategy's
            n, h = next(iter(broken.items()))
            why = f"; quarantined: {h.quarantined}" if h.quarantined else ""
            return {
                "combo": job.combo,
                "window": window,
                "error": f"{n}: {h.errors} hook failure(s), the last {h.last_error}{why}",
                "traceback": h.first_traceback,
            }
        eq = res.equity()
        m = res.metrics(equity=eq).as_dict()
        stats = bt.stats()
        rets = daily_returns(eq, job.capital) if len(res.times) else None
        more = _detail(res, eq) if job.detail else {}
    except DataError as exc:
        return {"combo": job.combo, "window": window, "error": str(exc), "traceback": ""}
    except Exception as exc:  # a strategy or a parameter set that breaks: this trial only
        return {
            "combo": job.combo,
            "window": window,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    return {
        "combo": job.combo,
        "window": window,
        "metrics": {k: store._num(v) for k, v in m.items()},
        "bars": stats["bars"],
        "seconds": stats["seconds"],
        "pid": os.getpid(),
        "returns": {} if rets is None else {str(d): float(v) for d, v in rets.items()},
        **more,
    }


def _detail(res: Any, eq: pd.Series) -> dict[str, Any]:
    """A run's curve (``eq``, its equity: ns, rupees, in the market), fills and round
    trips' net P&L, as plain data a worker sends back."""
    return {
        "equity": (
            eq.index.as_unit("ns").asi8.tolist(),
            eq.to_numpy().tolist(),
            res.in_market().tolist(),
        ),
        "fills": [
            {k: f[k] for k in ("time", "symbol", "action", "quantity", "price", "charges")}
            for f in res.fills
        ],
        "trade_pnls": [t["net_pnl"] for t in res.trades()],
        "charges": res.charges().total,
    }


def source_of(p: Prepared) -> tuple[str, str, int, date | None]:
    """The run's data source as plain data a worker opens again."""
    src = p.source
    kind = "generated" if type(src).__name__ == "GeneratedBars" else "duck"
    return (
        kind,
        str(getattr(src, "path", "")),
        int(getattr(src, "seed", 0)),
        getattr(src, "origin", None),
    )


def check_values(p: Prepared, axes: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Each swept value alone against its field (type and bounds), before anything runs:
    a parameter no strategy has, a value of the wrong type or out of bounds. Returns the
    values as the field holds them (the command line's ``"5"`` as 5)."""
    from pydantic import TypeAdapter

    classes = {cls.name: cls for cls, _ in p.spec.strategies}
    typed: dict[str, list[Any]] = {}
    for key, values in axes.items():
        owners = [c for c in classes.values() if key in c.Params.model_fields]
        if not owners:
            have = sorted({f for c in classes.values() for f in c.Params.model_fields})
            raise InputError(
                f"no strategy of {sorted(classes)} has a parameter {key!r}; "
                f"its parameters: {', '.join(have)}"
            )
        if not values:
            raise InputError(f"{key}: no values to try")
        for c in owners:
            info = c.Params.model_fields[key]
            adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]  # a FieldInfo is pydantic's own metadata
            got = []
            for v in values:
                try:
                    got.append(adapter.validate_python(v))
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    raise InputError(f"{c.name}.{key} = {v!r}: {msg}") from None
            typed.setdefault(key, list(dict.fromkeys(got)))
    return typed


def combo_problem(p: Prepared, combo: dict[str, Any]) -> str | None:
    """Why the strategies' own models refuse this combination (say fast >= slow), or
    None."""
    for cls, _ in p.spec.strategies:
        mine = {k: v for k, v in combo.items() if k in cls.Params.model_fields}
        try:
            cls.Params(**{**p.params[cls.name], **mine})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "parameters"
            return f"{cls.name}.{where}: {first['msg']}"
    return None


def job_for(
    p: Prepared,
    combo: dict[str, Any],
    start: date | None = None,
    end: date | None = None,
    detail: bool = False,
) -> Job:
    """One combination over the run's window (or ``start``..``end``)."""
    given = {cls.name: cls for cls, _ in p.spec.strategies if cls.name in p.request.classes}
    return Job(
        p.refdata,
        p.risk,
        str(p.strategies_dir),
        tuple(cls.name for cls, _ in p.spec.strategies),
        p.params,
        start or p.spec.start,
        end or p.spec.end,
        p.spec.capital,
        p.spec.slippage_ticks,
        p.spec.allow_holes,
        source_of(p),
        combo,
        tuple(given.items()),
        detail,
        refdata_digest(p.refdata),
    )


def jobs_for(p: Prepared, axes: dict[str, list[str]]) -> list[Job]:
    """One job per combination, each checked against the strategies' parameter models
    before anything runs (a bad value, or a combination the model refuses, is refused up
    front, not in a worker)."""
    out = []
    for combo in combos(check_values(p, axes)):
        problem = combo_problem(p, combo)
        if problem:
            raise InputError(f"--sweep {combo}: {problem}")
        out.append(job_for(p, combo))
    return out


# what a fork server imports once, so each worker it forks starts with them
PRELOAD = ["mytrading.backtest.sweep", "mytrading.backtest.loop", "mytrading.engine.runner"]


_POOLS: dict[int, ProcessPoolExecutor] = {}  # by size: workers kept for the next search


def _forked_here(jobs: list[Job]) -> bool:
    """A strategy class defined in ``__main__`` (a notebook cell) cannot be sent to a
    fork server's worker by reference: those jobs are forked from the caller."""
    return any(getattr(cls, "__module__", "") == "__main__" for j in jobs for _, cls in j.classes)


def _server_pool(n: int) -> ProcessPoolExecutor:
    """Workers forked from a clean fork server, not from the caller, and kept for the next
    search of this process (a walk-forward's two batches, a notebook's next cell): a caller
    with threads of its own (a test process after a Dask cluster or a DuckDB file, a
    Jupyter kernel) forked mid-flight gave workers that died in libc (a fresh clone's
    suite: both workers of a walk-forward, segfaults); new workers for every call cost
    their imports and compiled indicators each time (the quick walk-forward bench fell
    from 0.94 to 0.77 of a backtest)."""
    pool = _POOLS.get(n)
    if pool is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        pool = _POOLS[n] = ProcessPoolExecutor(max_workers=n, mp_context=ctx)
    return pool


def execute_jobs(
    jobs: list[Job], workers: int, cluster: str | None, on_done: Any = None
) -> list[dict[str, Any]]:
    """Run every job: on a Dask cluster if given, else on ``workers`` processes."""
    results: list[dict[str, Any]] = []
    if cluster:
        try:
            from dask.distributed import Client
            from dask.distributed import as_completed as dask_done
        except ImportError:
            raise InputError(
                "--cluster needs Dask: pip install 'mytrading[cluster]' (dask[distributed])"
            ) from None
        with Client(cluster) as client:
            futures = client.map(run_job, jobs, pure=False)
            for fut in dask_done(futures):
                results.append(fut.result())
                if on_done:
                    on_done(results[-1])
        return results
    n = workers or os.cpu_count() or 1
    if n == 1:
        for j in jobs:
            results.append(run_job(j))
            if on_done:
                on_done(results[-1])
        return results
    if _forked_here(jobs):
        with ProcessPoolExecutor(
            max_workers=n, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            return _collect(pool, jobs, on_done)
    pool = _server_pool(n)
    try:
        return _collect(pool, jobs, on_done)
    except BrokenProcessPool:
        _POOLS.pop(n, None)  # a worker died: the next search starts new ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def _collect(pool: ProcessPoolExecutor, jobs: list[Job], on_done: Any) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    futures = [pool.submit(run_job, j) for j in jobs]
    try:
        for fut in as_completed(futures):
            results.append(fut.result())
            if on_done:
                on_done(results[-1])
    finally:
        for fut in futures:  # an interrupted search leaves nothing queued in a kept pool
            fut.cancel()
    return results


def store_runs(s: Settings, p: Prepared, sweep_id: str, done: list[dict[str, Any]]) -> None:
    """Each finished combination as a stored run tagged with the sweep's id (metrics only)."""
    from mytrading.backtest.metrics import Metrics

    for r in done:
        params = {
            n: {**ps, **{k: v for k, v in r["combo"].items() if k in ps}}
            for n, ps in p.params.items()
        }
        got: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in r["metrics"].items()}
        m = Metrics(**got)
        store.save(
            s.stores.backtest_db,
            store.RunRecord(
                store.new_run_id(datetime.now(IST)),
                list(p.params),
                params,
                p.spec.start,
                p.spec.end,
                p.spec.capital,
                p.data_name,
                "bars",
                p.spec.slippage_ticks,
                r["bars"],
                r["seconds"],
                "",
                [f"{sweep_id}: {r['combo']}"],
                sweep_id,
            ),
            {"*": m},
            {},
        )


def _numeric(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    df = table.copy()
    for k in keys:
        with contextlib.suppress(ValueError, TypeError):
            df[k] = pd.to_numeric(df[k])  # numbers sort as numbers on the axes
    return df


def heatmap_figure(table: pd.DataFrame, keys: list[str], rank: str) -> Any:
    """A plotly heatmap of ``rank`` over two parameters (the best over any others), or a
    line over one."""
    import plotly.graph_objects as go

    df = _numeric(table, keys)
    if len(keys) == 1:
        line = df.groupby(keys[0])[rank].max().sort_index()
        fig = go.Figure(go.Scatter(x=line.index, y=line.values, mode="lines+markers"))
        fig.update_layout(title=f"{rank} by {keys[0]}", xaxis_title=keys[0], yaxis_title=rank)
        return fig
    grid = df.pivot_table(index=keys[1], columns=keys[0], values=rank, aggfunc="max")
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            colorscale="RdYlGn",
            texttemplate="%{z:.3g}",
            colorbar={"title": rank},
        )
    )
    fig.update_layout(
        title=f"{rank} by {keys[0]} and {keys[1]}", xaxis_title=keys[0], yaxis_title=keys[1]
    )
    return fig


def heatmap(out_dir: Path, table: pd.DataFrame, keys: list[str], rank: str) -> list[Path]:
    """The ranked metric over the first two swept parameters (the best over any others),
    as an interactive HTML heatmap and a PNG; a line for a single parameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    df = _numeric(table, keys)
    html_path, png_path = out_dir / "heatmap.html", out_dir / "heatmap.png"
    fig = heatmap_figure(table, keys, rank)
    if len(keys) == 1:
        line = df.groupby(keys[0])[rank].max().sort_index()
        f2, ax = plt.subplots(figsize=(8, 4.5))
        ax.plot(line.index, line.values, marker="o")
        ax.set_xlabel(keys[0])
        ax.set_ylabel(rank)
    else:
        grid = df.pivot_table(index=keys[1], columns=keys[0], values=rank, aggfunc="max")
        f2, ax = plt.subplots(figsize=(1.6 + 0.8 * len(grid.columns), 1.4 + 0.5 * len(grid.index)))
        im = ax.imshow(grid.values, cmap="RdYlGn", aspect="auto", origin="lower")
        ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
        ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
        ax.set_xlabel(keys[0])
        ax.set_ylabel(keys[1])
        for (i, j), v in pd.DataFrame(grid.values).stack().items():
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=8)
        f2.colorbar(im, ax=ax, label=rank)
        ax.set_title(f"{rank} by {keys[0]} and {keys[1]}")
    fig.write_html(html_path, include_plotlyjs="../plotly.min.js")
    f2.tight_layout()
    f2.savefig(png_path, dpi=110)
    plt.close(f2)
    js = out_dir.parent / "plotly.min.js"
    if not js.exists():
        from plotly.offline import get_plotlyjs

        js.write_text(get_plotlyjs())
    return [html_path, png_path]
