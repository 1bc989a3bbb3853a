"""From a request (what the command line says) to a stored, reported run.

``prepare`` checks everything a user can get wrong before any bar is read: strategy
names, parameters and their types, the window, the data source; each mistake is an
``InputError`` with a message that says what to do (the command exits 2). ``execute``
runs, stores and reports; the run appears in ``backtest list`` only once all of it exists.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mytrading.backtest import report, store
from mytrading.backtest.data import DataError, DuckBars, DuckTicks, GeneratedBars
from mytrading.backtest.loop import WARMUP_ORIGIN_DAYS, Backtest, Progress, Spec
from mytrading.backtest.metrics import Metrics
from mytrading.backtest.results import Results
from mytrading.config import for_process
from mytrading.domain.refdata import IST, RefData
from mytrading.engine.loader import StrategyLoadError, declared, discover
from mytrading.engine.strategy import BaseStrategy
from mytrading.risk.config import RiskConfig
from mytrading.risk.limits import env_overrides
from mytrading.settings import ConfigError, Settings

SOURCES = ("generated", "history", "recorded")


class InputError(ValueError):
    """Bad input from the user: a message, exit code 2, nothing written."""


@dataclass
class Request:
    strategies: list[str]
    start: date | None = None
    end: date | None = None
    params: list[str] = field(default_factory=list)  # k=v or strategy.k=v
    capital: float = 1_000_000.0
    timeframe: str | None = None
    data: str = "generated"  # generated | history | recorded | a .duckdb file
    seed: int = 42
    slippage_ticks: int = 0
    allow_holes: bool = False
    fills: str = "bars"  # bars | ticks (recorded ticks)
    interval: str = "1m"  # the bars read from the data: 1m, or D (daily) for daily history
    # typed parameters by strategy (a notebook's ``params=``), over the file and ``params``
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    # strategy classes given as objects (defined in a notebook), not looked up in strategies/
    classes: dict[str, type[BaseStrategy]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # on the stored run and its report


@dataclass
class Prepared:
    request: Request
    spec: Spec
    params: dict[str, dict[str, Any]]
    source: Any
    ticks: Any
    refdata: RefData
    data_name: str
    risk: RiskConfig  # what the run judges, sizes and charges by (``StackConfig``)
    strategies_dir: Path


@dataclass
class Outcome:
    run_id: str
    results: Results
    metrics: dict[str, Metrics]
    stats: dict[str, Any]
    paths: dict[str, Path]
    notes: list[str]
    tables: dict[str, Any] = field(default_factory=dict)


def default_window(refdata: RefData, today: date) -> tuple[date, date]:
    """The current futures series up to yesterday: from the day after the last monthly
    expiry of the first configured index (its near future is then one contract for the
    whole window) to the last trading day before today."""
    cal = refdata.calendar
    end = cal.last_trading_day("NFO", today - timedelta(days=1))
    u = next(iter(refdata.underlyings.values()))
    y, m = end.year, end.month
    expiry = cal.monthly_expiry(u, y, m)
    while expiry >= end:
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
        expiry = cal.monthly_expiry(u, y, m)
    start = expiry + timedelta(days=1)
    while cal.hours("NFO", start) is None:
        start += timedelta(days=1)
    return start, end


def parse_params(
    items: list[str], classes: dict[str, type[BaseStrategy]]
) -> dict[str, dict[str, str]]:
    """``k=v`` for every strategy that has ``k``; ``name.k=v`` for one."""
    out: dict[str, dict[str, str]] = {n: {} for n in classes}
    for item in items:
        if "=" not in item:
            raise InputError(f"--params {item!r}: expected key=value (or strategy.key=value)")
        key, value = item.split("=", 1)
        name, _, field_ = key.rpartition(".")
        targets = (
            [name] if name else [n for n, c in classes.items() if field_ in c.Params.model_fields]
        )
        if name and name not in classes:
            raise InputError(f"--params {item!r}: {name!r} is not one of {sorted(classes)}")
        if not targets or any(field_ not in classes[t].Params.model_fields for t in targets):
            have = {n: sorted(c.Params.model_fields) for n, c in classes.items()}
            raise InputError(f"--params {item!r}: no strategy has a parameter {field_!r}; {have}")
        for t in targets:
            out[t][field_] = value
    return out


def prepare(s: Settings, req: Request, today: date | None = None) -> Prepared:
    """The run ``req`` asks for, checked: its strategies with their parameters, its window
    and data, and the process's one configuration (``config.for_process``: the reference
    data and risk's files as the stack loads them)."""
    cfg = for_process(s)
    try:
        refdata = cfg.refdata
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    names = [n.strip() for n in req.strategies if n.strip()]
    declared_names = declared(s.strategies_dir)[0]
    unknown = [n for n in names if n not in declared_names and n not in req.classes]
    if not names or unknown:
        raise InputError(
            f"unknown strategy {unknown or names}; available: {', '.join(sorted(declared_names))}"
        )
    try:
        found = [n for n in names if n not in req.classes]
        classes = {**(discover(s.strategies_dir, found) if found else {}), **req.classes}
    except StrategyLoadError as exc:
        raise InputError(str(exc)) from None
    given: dict[str, dict[str, Any]] = dict(parse_params(req.params, classes))
    for n, vals in req.values.items():
        if n not in classes:
            raise InputError(f"parameters for {n!r}, which is not in this run: {names}")
        have = classes[n].Params.model_fields
        wrong = sorted(set(vals) - set(have))
        if wrong:
            raise InputError(
                f"strategy {n} has no parameter {', '.join(map(repr, wrong))}; "
                f"its parameters: {', '.join(sorted(have))}"
            )
        given[n].update(vals)
    if req.timeframe:
        have_tf = [n for n, c in classes.items() if "timeframe" in c.Params.model_fields]
        if not have_tf:
            raise InputError("--timeframe: none of these strategies has a timeframe parameter")
        for n in have_tf:
            given[n].setdefault("timeframe", req.timeframe)
    params: dict[str, dict[str, Any]] = {}
    for n, cls in classes.items():
        merged = {**s.params_for(n), **given[n]}
        try:
            checked = cls.Params(**merged)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            )
            raise InputError(f"strategy {n}: {problems}") from None
        params[n] = checked.model_dump(mode="json")
    today = today or datetime.now(IST).date()
    start, end = req.start, req.end
    if start is None or end is None:
        d_start, d_end = default_window(refdata, today)
        start, end = start or d_start, end or d_end
    if start > end:
        raise InputError(f"empty date range: --from {start} is after --to {end}")
    if req.capital <= 0:
        raise InputError(f"--capital must be positive, got {req.capital}")
    if req.interval not in ("1m", "D"):
        raise InputError(f"--interval {req.interval!r}: the data are read as 1m or D bars")
    if req.interval != "1m" and req.data == "generated":
        raise InputError("--interval D: the generator makes 1m bars; use history or a file")
    if req.fills not in ("bars", "ticks"):
        raise InputError(f"--fills must be bars or ticks, got {req.fills!r}")
    try:  # the MT_RISK_* settings bind in a backtest as live
        risk = cfg.backtest_risk(env_overrides(s))
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    _check_reference(risk, refdata, start, end)
    source, ticks, name = _source(s, req, refdata, start)
    spec = Spec(
        [(classes[n], params[n]) for n in names],
        start,
        end,
        req.capital,
        req.slippage_ticks,
        req.allow_holes,
        req.fills,
        s.sim.fill_model,  # with recorded ticks, the paper stack's own fill model
        s.sim.partial_fills,
    )
    return Prepared(req, spec, params, source, ticks, refdata, name, risk, s.strategies_dir)


def _check_reference(risk: RiskConfig, refdata: RefData, start: date, end: date) -> None:
    """Charges and holidays must cover the window: a contract note of 2021 is not one of
    2026, and a missing holiday list would trade on exchange holidays."""
    try:
        risk.charges.rates(start)
    except ValueError as exc:
        raise InputError(
            f"{exc}: add a [[period]] with the rates of that time to config/charges.toml"
        ) from None
    lists = refdata.calendar.holidays
    years = {y for days in lists.values() for y in {d.year for d in days}}
    missing = sorted(set(range(start.year, end.year + 1)) - years)
    if missing:
        raise InputError(
            f"config/holidays.toml has no holidays for {', '.join(map(str, missing))}: "
            "add them (a backtest would trade on exchange holidays)"
        )


def _source(s: Settings, req: Request, refdata: RefData, start: date) -> tuple[Any, Any, str]:
    ticks = None
    try:
        if req.fills == "ticks":
            path = Path(req.data) if req.data not in SOURCES else s.stores.record_db
            if req.data not in ("recorded",) and req.data in SOURCES:
                raise InputError("--fills ticks replays recorded ticks: use --data recorded")
            ticks = DuckTicks(path)
        if req.data == "generated":
            origin = start - timedelta(days=WARMUP_ORIGIN_DAYS)
            return GeneratedBars(refdata, req.seed, origin), ticks, f"generated (seed {req.seed})"
        if req.data == "history":
            src = DuckBars(s.stores.history_db, req.interval, name="history")
            return src, ticks, f"history ({s.stores.history_db}, {req.interval})"
        if req.data == "recorded":
            src = DuckBars(s.stores.record_db, req.interval, name="recorded")
            return src, ticks, f"recorded ({s.stores.record_db}, {req.interval})"
        path = Path(req.data)
        if path.suffix != ".duckdb":
            raise InputError(
                f"--data {req.data!r}: use generated, history, recorded or a .duckdb file "
                "(import CSV or Parquet first: main.py data import)"
            )
        return DuckBars(path, req.interval), ticks, f"{path} ({req.interval})"
    except DataError as exc:
        raise InputError(str(exc)) from None


def execute(
    s: Settings,
    p: Prepared,
    progress: Callable[[Progress], None] | None = None,
    write_report: bool = True,
    sweep: str = "",
) -> Outcome:
    started = time.perf_counter()
    try:
        bt = Backtest(p.spec, p.refdata, p.risk, p.source, progress=progress, ticks=_ticks(p))
        results = bt.run()
    except (DataError, ConfigError) as exc:
        raise InputError(str(exc)) from None
    seconds = time.perf_counter() - started
    stats = bt.stats()
    notes = bt.all_notes() + _state_notes(results) + list(p.request.notes)
    names = results.strategies()
    metrics = {"*": results.metrics()}
    for n in names:
        metrics[n] = results.metrics(n)
    run_id = store.new_run_id(datetime.now(IST))
    tables = results.tables() if not sweep else {}
    paths: dict[str, Path] = {}
    if write_report:
        traded = sorted({(f["exchange"], f["symbol"]) for f in results.fills})
        prices = (
            report.prices_from(p.source, traded, p.spec.start, p.spec.end) if not p.ticks else {}
        )
        paths = report.write(
            s.stores.report_dir / run_id,
            report.ReportInput(
                run_id,
                f"Backtest {', '.join(names)}: {p.spec.start} to {p.spec.end}",
                _shown_params(p),
                metrics,
                tables,
                prices,
                notes,
                {n: results.equity(n) for n in names},
            ),
        )
    record = store.RunRecord(
        run_id,
        names,
        _shown_params(p),
        p.spec.start,
        p.spec.end,
        p.spec.capital,
        p.data_name,
        p.spec.fills,
        p.spec.slippage_ticks,
        stats["bars"],
        round(seconds, 3),
        str(paths.get("html", "")),
        notes,
        sweep,
    )
    try:
        store.save(
            s.stores.backtest_db, record, metrics, tables, keep=s.retention.backtest_keep_runs
        )
    except Exception:
        # not stored: no report left behind that looks like a finished run's
        shutil.rmtree(s.stores.report_dir / run_id, ignore_errors=True)
        raise
    return Outcome(run_id, results, metrics, stats, paths, notes, tables)


def _ticks(p: Prepared) -> Any:
    if p.ticks is None:
        return None
    return p.ticks.ticks(p.spec.start, p.spec.end)


def _shown_params(p: Prepared) -> dict[str, dict[str, Any]]:
    """Each strategy's parameters as the report and the run record show them: a builder
    strategy's are its file's (``builder.spec.summary``) beside the common ones."""
    from mytrading.builder.spec import summary
    from mytrading.builder.strategy import BuilderStrategy

    out = {n: dict(v) for n, v in p.params.items()}
    for cls, _ in p.spec.strategies:
        if issubclass(cls, BuilderStrategy) and cls.name in out:
            out[cls.name] = {"file": str(cls.source), **summary(cls.spec), **out[cls.name]}
    return out


def _state_notes(results: Results) -> list[str]:
    out = []
    for ev in results.events:
        if ev["kind"] == "trigger" and ev["strategy"] == "*":
            when = datetime.fromtimestamp(ev["time"] / 1e9, IST)
            out.append(
                f"the stack was HALTED at {when:%Y-%m-%d %H:%M} ({ev['rule']}: {ev['reason']}); "
                "as live, nothing new traded after it"
            )
        elif ev["kind"] == "roll" and ev["action"] != "approved":
            when = datetime.fromtimestamp(ev["time"] / 1e9, IST)
            out.append(
                f"{ev['strategy']}: roll {ev['action']} at {when:%Y-%m-%d %H:%M}: {ev['reason']}"
            )
    return out
