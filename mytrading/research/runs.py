"""``backtest()``: one run from Python, the command line's run.

It builds the command line's ``Request`` and goes through the same ``prepare`` (every
check: strategy, parameters by the strategy's own model, window, data) and ``execute``
(run, store): the same run gives the same numbers either way, and is listed by
``main.py backtest list``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from typing import Any, ParamSpec, TypeVar

from mytrading.backtest.session import InputError, Prepared, Request, execute, prepare
from mytrading.engine.strategy import BaseStrategy
from mytrading.process.logsetup import quietly
from mytrading.research.result import Result, stats_of
from mytrading.settings import Settings, load_settings

StrategyArg = str | type[BaseStrategy]
P = ParamSpec("P")
R = TypeVar("R")


def quiet_run(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run ``quietly``: a run's risk refusals would flood a notebook's cell (they are
    in its ``tables["events"]`` and notes)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with quietly():
            return fn(*args, **kwargs)

    return run


def day(value: date | str | None, what: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def request(
    strategy: StrategyArg,
    params: dict[str, Any] | None,
    *,
    data: str,
    start: date | str | None,
    end: date | str | None,
    capital: float,
    seed: int,
    slippage_ticks: int,
    timeframe: str | None,
    fills: str,
    interval: str,
    allow_holes: bool,
) -> Request:
    """The command line's request for one strategy (a name in strategies/ or a class)."""
    if isinstance(strategy, type):
        if not issubclass(strategy, BaseStrategy) or not getattr(strategy, "name", ""):
            raise InputError(f"{strategy!r}: a BaseStrategy subclass with a name is needed")
        name, classes = strategy.name, {strategy.name: strategy}
    else:
        name, classes = str(strategy), {}
    return Request(
        strategies=[name],
        start=day(start, "start"),
        end=day(end, "end"),
        capital=capital,
        timeframe=timeframe,
        data=data,
        seed=seed,
        slippage_ticks=slippage_ticks,
        allow_holes=allow_holes,
        fills=fills,
        interval=interval,
        values={name: dict(params or {})},
        classes=classes,
    )


def prepared(settings: Settings | None, req: Request) -> tuple[Settings, Prepared]:
    s = settings or load_settings()
    return s, prepare(s, req)


@quiet_run
def backtest(
    strategy: StrategyArg,
    params: dict[str, Any] | None = None,
    *,
    data: str = "generated",
    start: date | str | None = None,
    end: date | str | None = None,
    capital: float = 1_000_000.0,
    seed: int = 42,
    slippage_ticks: int = 0,
    timeframe: str | None = None,
    fills: str = "bars",
    interval: str = "1m",
    allow_holes: bool = False,
    report: bool = False,
    settings: Settings | None = None,
    n_trials: int = 1,
    note: str = "",
) -> Result:
    """Backtest ``strategy`` (a name from strategies/ or a ``BaseStrategy`` subclass)
    with ``params`` over ``start``..``end`` of ``data`` (``generated``, ``history``,
    ``recorded`` or a .duckdb file), as ``main.py backtest`` does; stored like it.
    ``report=True`` also writes its HTML report and PNGs (``result.report``). Bad input
    raises ``InputError`` (a ``ValueError``) before anything runs. ``n_trials``: how many
    parameter sets were tried to choose these (an optimisation's best says so), carried in
    ``stats``; ``note`` goes on the stored run and its report."""
    req = request(
        strategy, params, data=data, start=start, end=end, capital=capital, seed=seed,
        slippage_ticks=slippage_ticks, timeframe=timeframe, fills=fills, interval=interval,
        allow_holes=allow_holes,
    )  # fmt: skip
    if note:
        req.notes.append(note)
    s, p = prepared(settings, req)
    out = execute(s, p, write_report=report)
    return Result(
        out.run_id,
        out.results.strategies() or req.strategies,
        p.params,
        p.spec.start,
        p.spec.end,
        stats_of(out.metrics["*"], p.spec.start, p.spec.end, int(out.stats["bars"]), n_trials),
        out.tables,
        out.notes,
        p.source,
        p.spec.fills,
        out.paths,
    )
