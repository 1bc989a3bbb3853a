"""``optimize()``: many parameter sets of one strategy, ranked, with the number of trials
behind the best and how much of it is luck.

Each parameter set is one backtest, run as a sweep job (``backtest/sweep.py``: on every
core, or on a Dask cluster), so a notebook's optimisation and ``main.py backtest --sweep``
run the same code. The search is a full grid, a random sample of the grid, or optuna's
TPE sampler over it (the grid's values as its space), asked in batches of one parameter
set per worker.

A parameter set the strategy's model refuses as a whole (say fast >= slow) or the
``constraint`` rejects is not a trial: it is listed with its reason and not run. A set
that raises is a failed trial with its traceback; the others finish. Only sets that ran
count in ``n_trials`` (the N of the deflated Sharpe ratio).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from mytrading.backtest import store
from mytrading.backtest.session import InputError, Prepared
from mytrading.backtest.sweep import (
    MAX_COMBOS,
    check_values,
    combo_problem,
    execute_jobs,
    heatmap_figure,
    job_for,
)
from mytrading.domain.refdata import IST
from mytrading.research.overfit import Deflated, Overfitting, deflated_sharpe, pbo
from mytrading.research.result import STATS
from mytrading.research.runs import quiet_run
from mytrading.settings import Settings

METHODS = ("grid", "random", "optuna")
Score = str | Callable[[pd.Series], float]
Constraint = Callable[[dict[str, Any]], bool]


def space_of(grid: Mapping[str, Iterable[Any]]) -> dict[str, list[Any]]:
    """The values to try of each parameter, as lists (a range or any iterable)."""
    if not grid:
        raise InputError("an empty grid: give at least one parameter and its values")
    out: dict[str, list[Any]] = {}
    for k, vals in grid.items():
        values = [vals] if isinstance(vals, str | int | float) else list(vals)
        if not values:
            raise InputError(f"{k}: no values to try (an empty list or range)")
        out[k] = list(dict.fromkeys(values))  # each value once, in the order given
    return out


def key_of(combo: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(combo.items()))


def score_of(maximize: Score, stats: pd.Series) -> float:
    """The figure to maximise; NaN (a Sharpe with no trade) ranks last."""
    v = maximize(stats) if callable(maximize) else stats[maximize]
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def check_maximize(maximize: Score) -> None:
    if not callable(maximize) and maximize not in STATS:
        raise InputError(f"maximize={maximize!r}: one of {', '.join(STATS)} or a function")


def trial_stats(r: dict[str, Any], start: date, end: date) -> pd.Series:
    """A finished job's figures as the stats Series of a ``Result`` (durations in days)."""
    m = dict(r["metrics"])
    dd, cagr = m.get("max_drawdown_pct"), m.get("cagr")
    m["calmar"] = cagr / dd if dd and cagr is not None and not math.isnan(cagr) else math.nan
    m.update(start=start, end=end, bars=r["bars"], n_trials=1)
    return pd.Series({k: (math.nan if m.get(k) is None else m.get(k)) for k in STATS}, dtype=object)


@dataclass
class Trials:
    """What a search ran, in the order it was asked: one row a parameter set."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    returns: dict[int, dict[str, float]] = field(default_factory=dict)  # trial -> day -> r
    finished: list[dict[str, Any]] = field(default_factory=list)  # the jobs' own results
    done: dict[tuple[tuple[str, Any], ...], int] = field(default_factory=dict)

    def add(self, combo: dict[str, Any], status: str, **more: Any) -> int:
        n = len(self.rows)
        self.rows.append({"trial": n, **combo, "status": status, **more})
        self.done[key_of(combo)] = n
        return n

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows).set_index("trial") if self.rows else pd.DataFrame()


def plan(
    p: Prepared,
    space: dict[str, list[Any]],
    trials: Trials,
    *,
    method: str,
    n_trials: int | None,
    constraint: Constraint | None,
    seed: int,
) -> list[dict[str, Any]]:
    """The parameter sets a grid or random search runs; those the model or the
    constraint refuse go into ``trials`` as invalid, with their reason."""
    every = [dict(zip(space, v, strict=True)) for v in itertools.product(*space.values())]
    if len(every) > MAX_COMBOS and method == "grid":
        raise InputError(f"{len(every)} combinations: more than {MAX_COMBOS}; narrow the grid")
    if method == "random":
        if not n_trials or n_trials < 1:
            raise InputError("method='random' needs n_trials >= 1")
        random.Random(seed).shuffle(every)
    chosen: list[dict[str, Any]] = []
    for combo in every:
        if method == "random" and len(chosen) >= (n_trials or 0):
            break
        if admit(p, combo, constraint, trials):
            chosen.append(combo)
    if not chosen:
        raise InputError("no parameter set to run: the model or the constraint refuses them all")
    return chosen


def admit(
    p: Prepared, combo: dict[str, Any], constraint: Constraint | None, trials: Trials
) -> bool:
    """A parameter set the model and the constraint accept; the others listed."""
    problem = combo_problem(p, combo)
    if problem is None and constraint is not None and not constraint(dict(combo)):
        problem = "the constraint rejects it"
    if problem:
        trials.add(combo, "invalid", error=problem)
        return False
    return True


def record(
    trials: Trials,
    combos: list[dict[str, Any]],
    results: list[dict[str, Any]],
    maximize: Score,
    first: date,
    last: date,
) -> list[float]:
    """The jobs' results into ``trials``, in the order of ``combos``; their scores."""
    got = {key_of(r["combo"]): r for r in results}
    scores = []
    for c in combos:
        r = got[key_of(c)]
        if "error" in r:
            trials.add(c, "failed", error=r["error"], traceback=r.get("traceback", ""))
            scores.append(math.nan)
            continue
        st = trial_stats(r, first, last)
        score = score_of(maximize, st)
        n = trials.add(c, "ok", score=score, **st.to_dict(), seconds=r["seconds"])
        trials.returns[n] = r["returns"]
        trials.finished.append(r)
        scores.append(score)
    return scores


def search(
    p: Prepared,
    space: dict[str, list[Any]],
    *,
    maximize: Score,
    method: str = "grid",
    n_trials: int | None = None,
    constraint: Constraint | None = None,
    seed: int = 0,
    workers: int = 0,
    cluster: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> Trials:
    """Run the search over ``start``..``end`` (the prepared window by default)."""
    space = check_search(p, space, maximize, method)
    first, last = start or p.spec.start, end or p.spec.end
    trials = Trials()

    def run(combos: list[dict[str, Any]]) -> list[float]:
        jobs = [job_for(p, c, first, last) for c in combos]
        return record(trials, combos, execute_jobs(jobs, workers, cluster), maximize, first, last)

    if method == "optuna":
        _optuna(space, lambda c: admit(p, c, constraint, trials), run, trials, n_trials, seed,
                workers)  # fmt: skip
        return trials
    run(plan(p, space, trials, method=method, n_trials=n_trials, constraint=constraint, seed=seed))
    return trials


def check_search(
    p: Prepared, space: dict[str, list[Any]], maximize: Score, method: str
) -> dict[str, list[Any]]:
    """Everything about a search that can be wrong before it runs; the space's values as
    the parameters hold them."""
    if method not in METHODS:
        raise InputError(f"method={method!r}: one of {', '.join(METHODS)}")
    check_maximize(maximize)
    return check_values(p, space)


def _optuna(
    space: dict[str, list[Any]],
    admit: Callable[[dict[str, Any]], bool],
    run: Callable[[list[dict[str, Any]]], list[float]],
    trials: Trials,
    n_trials: int | None,
    seed: int,
    workers: int,
) -> None:
    """TPE over the grid's values, one batch of parameter sets per round (a worker each).
    A set asked again is told its earlier score, not run again; a refused set is a failed
    optuna trial (and at most 20 x n_trials are asked, so a space mostly refused ends)."""
    try:
        import optuna
    except ImportError:
        raise InputError(
            "method='optuna' needs optuna: pip install 'mytrading[research]'"
        ) from None
    if not n_trials or n_trials < 1:
        raise InputError("method='optuna' needs n_trials >= 1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: _distribution(optuna, v) for k, v in space.items()}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    batch = max(1, workers or 1)
    asked = 0
    while sum(r["status"] != "invalid" for r in trials.rows) < n_trials and asked < 20 * n_trials:
        want = min(batch, n_trials - sum(r["status"] != "invalid" for r in trials.rows))
        pending: list[Any] = []
        combos: list[dict[str, Any]] = []
        while len(combos) < want and asked < 20 * n_trials:
            t = study.ask(dists)
            asked += 1
            combo = {k: plain(t.params[k]) for k in space}
            k = key_of(combo)
            if k in trials.done or k in {key_of(c) for c in combos}:
                prior = trials.done.get(k)
                score = trials.rows[prior].get("score", math.nan) if prior is not None else None
                if score is None or math.isnan(score):
                    study.tell(t, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(t, score)
                continue
            if not admit(combo):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
                continue
            pending.append(t)
            combos.append(combo)
        for t, score in zip(pending, run(combos) if combos else [], strict=True):
            if math.isnan(score):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, score)


def _distribution(optuna: Any, values: list[Any]) -> Any:
    """Integers or floats evenly spaced: a stepped range (TPE uses their order); anything
    else: categories."""
    d = optuna.distributions
    nums = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if nums and len(values) > 1:
        ordered = sorted(values)
        steps = {round(b - a, 12) for a, b in itertools.pairwise(ordered)}
        if len(steps) == 1:
            step = steps.pop()
            if all(isinstance(v, int) for v in values):
                return d.IntDistribution(int(ordered[0]), int(ordered[-1]), step=int(step))
            return d.FloatDistribution(float(ordered[0]), float(ordered[-1]), step=float(step))
    return d.CategoricalDistribution(values)


def plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ------------------------------------------------------------------------- figures


def returns_table(trials: Trials) -> pd.DataFrame:
    """Rows the trading days, columns the trials that ran (a day a trial has no return
    for, before its first bar, counts 0)."""
    if not trials.returns:
        return pd.DataFrame()
    df = pd.DataFrame({n: pd.Series(r, dtype=float) for n, r in trials.returns.items()})
    df.index = pd.to_datetime(df.index).date
    return df.sort_index().fillna(0.0)


def sharpe_variance(table: pd.DataFrame) -> float:
    """Variance (ddof 1) of the trials' per-period Sharpe ratios (0 for one trial)."""
    sd = table.std(ddof=1)
    sr = (table.mean() / sd).where(sd > 0, 0.0)
    return float(sr.var(ddof=1)) if len(sr) > 1 else 0.0


def splits_for(periods: int, wanted: int = 16) -> int | None:
    """``wanted`` blocks, or the most (even) the periods allow at 2 periods a block."""
    most = (periods // 2) // 2 * 2
    n = min(wanted, most)
    return n if n >= 2 else None


def luck(table: pd.DataFrame, best: int) -> tuple[Deflated | None, Overfitting | None, list[str]]:
    """The deflated Sharpe ratio of the best trial and the PBO of them all, or why not."""
    notes: list[str] = []
    dsr = po = None
    if best in table:
        try:
            dsr = deflated_sharpe(table[best].to_numpy(), table.shape[1], sharpe_variance(table))
        except ValueError as exc:
            notes.append(f"no deflated Sharpe ratio: {exc}")
    if table.shape[1] >= 2:
        n = splits_for(len(table))
        if n is None:
            notes.append(f"no PBO: {len(table)} days are too few to cut into blocks")
        else:
            try:
                po = pbo(table, n_splits=n)
            except ValueError as exc:
                notes.append(f"no PBO: {exc}")
            if n < 16:
                notes.append(f"PBO with {n} blocks (16 need {32} days or more)")
    else:
        notes.append("no PBO: it compares two trials or more")
    return dsr, po, notes


@dataclass
class Optimization:
    """An optimisation: ``trials`` (a DataFrame: the parameters, status, score and every
    figure of each set), ``best_params``, ``best`` (the best set's stats, with
    ``n_trials``), ``deflated`` and ``pbo`` (how much of it is luck), ``returns`` (days x
    trials), ``heatmap(x, y)``, and ``result()`` to run the best set as a full backtest."""

    strategy: str
    maximize: str
    method: str
    start: date
    end: date
    trials: pd.DataFrame
    returns: pd.DataFrame
    best_params: dict[str, Any]
    best: pd.Series
    n_trials: int
    deflated: Deflated | None
    pbo: Overfitting | None
    notes: list[str]
    sweep_id: str
    _run: Callable[[dict[str, Any], bool], Any] = field(repr=False)

    def __repr__(self) -> str:
        d = f"{self.deflated.probability:.2f}" if self.deflated else "n/a"
        o = f"{self.pbo.probability:.2f}" if self.pbo else "n/a"
        return (
            f"<Optimization {self.strategy} {self.start}..{self.end}: best {self.best_params} "
            f"{self.maximize} {self.best['score']:.3g} of {self.n_trials} trials; "
            f"deflated Sharpe {d}, PBO {o}>"
        )

    @property
    def params(self) -> list[str]:
        return [c for c in self.trials.columns if c not in (*STATS, "status", "score",
                "error", "traceback", "seconds")]  # fmt: skip

    def heatmap(self, x: str | None = None, y: str | None = None, stat: str = "score") -> Any:
        """A plotly heatmap of ``stat`` (the score by default) over two parameters (the
        best over the others); a line for one."""
        keys = [k for k in (x, y) if k] or self.params[:2]
        ok = self.trials[self.trials["status"] == "ok"]
        return heatmap_figure(ok.astype({stat: float}), keys, stat)

    def result(self, report: bool = False) -> Any:
        """The best parameter set as a full backtest (a ``Result``, stored), carrying the
        number of trials behind it."""
        return self._run(self.best_params, report)


@quiet_run
def optimize(
    strategy: Any,
    grid: Mapping[str, Iterable[Any]],
    *,
    maximize: Score = "sharpe",
    method: str = "grid",
    n_trials: int | None = None,
    constraint: Constraint | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    workers: int = 0,
    cluster: str | None = None,
    data: str = "generated",
    start: date | str | None = None,
    end: date | str | None = None,
    capital: float = 1_000_000.0,
    data_seed: int = 42,
    slippage_ticks: int = 0,
    timeframe: str | None = None,
    allow_holes: bool = False,
    store_trials: bool = True,
    settings: Settings | None = None,
) -> Optimization:
    """Search ``grid`` (parameter -> values) of ``strategy`` over ``start``..``end``,
    maximising a stat (``"sharpe"``, ``"net_pnl"``, ...) or a function of a trial's
    stats Series. ``method``: ``grid`` (every set), ``random`` (``n_trials`` sets of the
    grid) or ``optuna`` (TPE, ``n_trials``). ``constraint(params) -> bool`` drops sets
    before they run. ``params``: fixed parameters beside the grid. On ``workers``
    processes (0: every core) or a Dask ``cluster``. Each trial is stored, tagged with the
    search's id, unless ``store_trials=False``."""
    from mytrading.research.runs import backtest, prepared, request

    space = space_of(grid)
    req = request(
        strategy, params, data=data, start=start, end=end, capital=capital, seed=data_seed,
        slippage_ticks=slippage_ticks, timeframe=timeframe, fills="bars", interval="1m",
        allow_holes=allow_holes,
    )  # fmt: skip
    s, p = prepared(settings, req)
    trials = search(
        p, space, maximize=maximize, method=method, n_trials=n_trials, constraint=constraint,
        seed=seed, workers=workers, cluster=cluster,
    )  # fmt: skip
    sweep_id = "opt-" + store.new_run_id(datetime.now(IST))
    if store_trials:
        from mytrading.backtest.sweep import store_runs

        store_runs(s, p, sweep_id, trials.finished)
    name = req.strategies[0]

    def run_best(best: dict[str, Any], report: bool) -> Any:
        return backtest(
            req.classes.get(name, name), {**(params or {}), **best}, data=data,
            start=p.spec.start, end=p.spec.end, capital=capital, seed=data_seed,
            slippage_ticks=slippage_ticks, timeframe=timeframe, allow_holes=allow_holes,
            report=report, settings=s, n_trials=n,
            note=f"the best of {n} trials of {sweep_id} by {label}",
        )  # fmt: skip

    frame = trials.frame()
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    label = maximize if isinstance(maximize, str) else getattr(maximize, "__name__", "a function")
    if ok.empty:
        failed = frame[frame["status"] == "failed"]
        why = failed["error"].iloc[0] if len(failed) else "nothing ran"
        raise InputError(f"no parameter set ran to the end ({why})")
    n = len(ok)
    best_no = int(ok["score"].astype(float).fillna(-math.inf).idxmax())
    best = frame.loc[best_no, [*STATS, "score"]].copy()
    best["n_trials"] = n
    table = returns_table(trials)
    dsr, po, notes = luck(table, best_no)
    return Optimization(
        name, label, method, p.spec.start, p.spec.end, frame, table,
        {k: plain(frame.loc[best_no, k]) for k in space}, best, n, dsr, po, notes, sweep_id,
        run_best,
    )  # fmt: skip
