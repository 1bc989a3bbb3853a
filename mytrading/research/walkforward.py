"""``walk_forward()``: optimise on each in-sample window, trade the chosen parameters on
the out-of-sample window after it, and judge the strategy by the stitched out-of-sample
result alone.

Each out-of-sample run starts on its window's first day with its indicators warmed up
from the bars before that day (the backtest's warm-up: history before ``start``, as live
asks OpenAlgo's history), never from its own future. The in-sample trials of every window
run as one batch of sweep jobs (every core, or a Dask cluster), then the out-of-sample
runs as another; optuna searches window by window.

Figures (``docs/research.md``):

* the **stitched out-of-sample curve**: each window's P&L added to the capital in turn,
  and its stats as a backtest's;
* **walk-forward efficiency**: the out-of-sample annualised return (mean daily return x
  252) over the in-sample one (the mean over windows of the chosen set's mean daily
  return x 252); NaN when the in-sample figure is not positive;
* **parameter stability**: per parameter, the value chosen most often and its share of
  the windows, how often the choice changed from one window to the next, and (numbers)
  the mean and spread;
* per window, the deflated Sharpe ratio of the in-sample best and the PBO of its
  in-sample trials; for the whole, the probabilistic Sharpe ratio of the stitched
  out-of-sample returns (one trial: they were not selected on).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from mytrading.backtest import store
from mytrading.backtest.data import trading_days
from mytrading.backtest.metrics import TRADING_DAYS, compute, daily_returns
from mytrading.backtest.session import InputError, Prepared
from mytrading.backtest.sweep import execute_jobs, job_for
from mytrading.domain.refdata import IST
from mytrading.research.optimize import (
    Constraint,
    Score,
    Trials,
    check_search,
    luck,
    plain,
    plan,
    record,
    returns_table,
    search,
    space_of,
)
from mytrading.research.overfit import Deflated, deflated_sharpe
from mytrading.research.result import stats_of
from mytrading.research.runs import quiet_run
from mytrading.research.warmup import declared_warmups, session_bars
from mytrading.research.windows import SESSION_BARS, Window, cut, length
from mytrading.settings import Settings


@dataclass
class WindowResult:
    window: Window
    trials: pd.DataFrame
    best: dict[str, Any]
    is_score: float
    is_annual: float  # the chosen set's in-sample mean daily return x 252
    deflated: Deflated | None
    pbo: float | None
    oos: dict[str, Any]  # the out-of-sample job's result (curve, fills, returns, metrics)
    notes: list[str] = field(default_factory=list)


@dataclass
class WalkForward:
    """A walk-forward: ``windows`` (a DataFrame: dates, chosen parameters, in-sample score,
    out-of-sample return, deflated Sharpe, PBO), ``equity`` (the stitched out-of-sample
    curve), ``stats`` (its figures), ``fills`` (out of sample), ``efficiency``,
    ``stability``, ``oos_psr``, and ``report()`` for the HTML page."""

    strategy: str
    maximize: str
    method: str
    anchored: bool
    lengths: dict[str, str]
    windows: pd.DataFrame
    equity: pd.DataFrame
    stats: pd.Series
    fills: pd.DataFrame
    returns: pd.Series
    efficiency: float
    stability: pd.DataFrame
    oos_psr: Deflated | None
    notes: list[str]
    run_id: str
    parts: list[WindowResult] = field(repr=False, default_factory=list)
    _settings: Settings | None = field(repr=False, default=None)

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<WalkForward {self.strategy} {len(self.windows)} windows "
            f"{s['start']}..{s['end']}: out-of-sample net {s['net_pnl']:,.0f}, "
            f"Sharpe {s['sharpe']:.2f}, efficiency {self.efficiency:.2f}>"
        )

    def chosen(self) -> pd.DataFrame:
        """The parameters chosen for each window (rows) by parameter (columns)."""
        return pd.DataFrame([p.best for p in self.parts], index=self.windows.index)

    def plot(self) -> Any:
        from mytrading.research.wfreport import equity_figure

        return equity_figure(self)

    def report(self, out_dir: Any = None) -> Any:
        """The HTML report (and its PNG), in ``out_dir`` or the report directory."""
        from mytrading.research.wfreport import write

        return write(self, out_dir)


def _window_days(p: Prepared) -> list[date]:
    return trading_days(p.refdata, "NFO", p.spec.start, p.spec.end)


def check_warmup(
    p: Prepared, combos: list[dict[str, Any]], windows: list[Window], timeframe_bars: int
) -> None:
    """The shortest in-sample window must hold the longest warm-up any set asks (in its
    own timeframe's bars): a window shorter than its indicators' memory trades on a
    warm-up longer than the sample it is judged on."""
    shortest = min(windows, key=lambda w: w.is_days)
    worst: tuple[int, str, dict[str, Any]] | None = None
    for combo in combos:
        for (_ex, sym, tf), bars in declared_warmups(p, combo).items():
            days = math.ceil(bars / session_bars(tf))
            if worst is None or days > worst[0]:
                worst = (days, f"{bars} bars of {tf} on {sym}", combo)
    if worst and worst[0] > shortest.is_days:
        raise InputError(
            f"in-sample window {shortest.n} ({shortest.is_start}..{shortest.is_end}) has "
            f"{shortest.is_days} trading day(s), shorter than the warm-up of {worst[1]} "
            f"(about {worst[0]} trading days) that {worst[2]} asks: lengthen the in-sample "
            "window or shorten the indicators"
        )


@quiet_run
def walk_forward(
    strategy: Any,
    grid: Mapping[str, Iterable[Any]],
    *,
    in_sample: int | str = "6M",
    out_of_sample: int | str = "1M",
    step: int | str | None = None,
    anchored: bool = False,
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
    store_run: bool = True,
    settings: Settings | None = None,
) -> WalkForward:
    """Walk ``strategy`` forward over ``start``..``end``: on each in-sample window search
    ``grid`` as ``optimize`` does, then run the best set on the out-of-sample window after
    it. Lengths: trading days (``126``, ``"126d"``), months (``"6M"``) or 1-minute bars
    (``"47250b"``); ``step`` defaults to the out-of-sample length; ``anchored=True`` grows
    the in-sample window from the first day instead of rolling it. Every mistake (a
    window shorter than the warm-up, no out-of-sample day, an empty grid, an unknown
    parameter, a value of the wrong type, a range outside the data) is an ``InputError``
    before any work starts."""
    from mytrading.research.runs import prepared, request

    space = space_of(grid)
    lengths = {
        "in_sample": length(in_sample, "in_sample"),
        "out_of_sample": length(out_of_sample, "out_of_sample"),
    }
    lengths["step"] = length(step, "step") if step is not None else lengths["out_of_sample"]
    req = request(
        strategy, params, data=data, start=start, end=end, capital=capital, seed=data_seed,
        slippage_ticks=slippage_ticks, timeframe=timeframe, fills="bars", interval="1m",
        allow_holes=allow_holes,
    )  # fmt: skip
    s, p = prepared(settings, req)
    space = check_search(p, space, maximize, method)
    _check_data(p)
    windows = cut(
        _window_days(p),
        lengths["in_sample"],
        lengths["out_of_sample"],
        lengths["step"],
        anchored,
    )
    # the sets each window tries (grid, random): planned once, checked against warm-up
    if method == "optuna":
        if not n_trials or n_trials < 1:
            raise InputError("method='optuna' needs n_trials >= 1")
        planned: list[list[dict[str, Any]]] = [[] for _ in windows]
    else:
        probe = Trials()
        first = plan(p, space, probe, method=method, n_trials=n_trials,
                     constraint=constraint, seed=seed)  # fmt: skip
        planned = [first] * len(windows)
        check_warmup(p, first, windows, SESSION_BARS)
    label = maximize if isinstance(maximize, str) else getattr(maximize, "__name__", "function")
    parts = _in_sample(p, space, windows, planned, maximize, method, n_trials, constraint,
                       seed, workers, cluster)  # fmt: skip
    if method == "optuna":
        check_warmup(p, [w.best for w in parts], windows, SESSION_BARS)
    _out_of_sample(p, parts, workers, cluster)
    wf = _assemble(req.strategies[0], label, method, anchored, lengths, p, parts, s)
    if store_run:
        _store(s, p, wf)
    return wf


def _check_data(p: Prepared) -> None:
    """The range must be inside the data: its first and last trading days have bars of
    the instruments a first run subscribes (the backtest's own hole check)."""
    from mytrading.backtest.data import DataError
    from mytrading.backtest.loop import Backtest

    bt = Backtest(p.spec, p.refdata, p.risk, p.source)
    bt.runner.start(warm=False)
    try:
        bt.check_data()
    except DataError as exc:
        raise InputError(str(exc)) from None


def _in_sample(
    p: Prepared,
    space: dict[str, list[Any]],
    windows: list[Window],
    planned: list[list[dict[str, Any]]],
    maximize: Score,
    method: str,
    n_trials: int | None,
    constraint: Constraint | None,
    seed: int,
    workers: int,
    cluster: str | None,
) -> list[WindowResult]:
    """Every window's search: grid and random sets of all windows as one batch."""
    trials_of: list[Trials] = []
    if method == "optuna":
        for w in windows:
            trials_of.append(
                search(
                    p,
                    space,
                    maximize=maximize,
                    method=method,
                    n_trials=n_trials,
                    constraint=constraint,
                    seed=seed,
                    workers=workers,
                    cluster=cluster,
                    start=w.is_start,
                    end=w.is_end,
                )
            )
    else:
        jobs = [
            job_for(p, c, w.is_start, w.is_end)
            for w, combos in zip(windows, planned, strict=True)
            for c in combos
        ]
        results = execute_jobs(jobs, workers, cluster)
        by_window: dict[tuple[date, date], list[dict[str, Any]]] = {}
        for job, r in zip(jobs, _in_order(jobs, results), strict=True):
            by_window.setdefault((job.start, job.end), []).append(r)
        for w, combos in zip(windows, planned, strict=True):
            t = Trials()
            record(t, combos, by_window[(w.is_start, w.is_end)], maximize, w.is_start, w.is_end)
            trials_of.append(t)
    out = []
    for w, t in zip(windows, trials_of, strict=True):
        frame = t.frame()
        ok = frame[frame["status"] == "ok"] if len(frame) else frame
        if ok.empty:
            why = frame["error"].dropna().iloc[0] if len(frame) else "nothing ran"
            raise InputError(f"window {w.n} ({w.is_start}..{w.is_end}): no set ran ({why})")
        best_no = int(ok["score"].astype(float).fillna(-math.inf).idxmax())
        table = returns_table(t)
        dsr, po, notes = luck(table, best_no)
        best = {k: plain(frame.loc[best_no, k]) for k in space}
        mean = float(table[best_no].mean()) if best_no in table else math.nan
        out.append(
            WindowResult(
                w,
                frame,
                best,
                float(frame.loc[best_no, "score"]),
                mean * TRADING_DAYS,
                dsr,
                po.probability if po else None,
                {},
                notes,
            )
        )
    return out


def _in_order(jobs: list[Any], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results (which come back as they finish) in the order of their jobs: matched by
    window and parameter set."""
    left: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in results:
        left.setdefault(_job_key(r["combo"], r.get("window")), []).append(r)
    return [left[_job_key(j.combo, (str(j.start), str(j.end)))].pop() for j in jobs]


def _job_key(combo: dict[str, Any], window: Any) -> tuple[Any, ...]:
    return (tuple(sorted(combo.items())), tuple(window) if window else None)


def _out_of_sample(
    p: Prepared, parts: list[WindowResult], workers: int, cluster: str | None
) -> None:
    jobs = [job_for(p, w.best, w.window.oos_start, w.window.oos_end, detail=True) for w in parts]
    for w, r in zip(parts, _in_order(jobs, execute_jobs(jobs, workers, cluster)), strict=True):
        if "error" in r:
            raise InputError(
                f"window {w.window.n}: the out-of-sample run of {w.best} failed: {r['error']}\n"
                f"{r.get('traceback', '')}"
            )
        w.oos = r


def _assemble(
    name: str,
    label: str,
    method: str,
    anchored: bool,
    lengths: dict[str, Any],
    p: Prepared,
    parts: list[WindowResult],
    s: Settings,
) -> WalkForward:
    capital = p.spec.capital
    pieces, flags, fills, pnls = [], [], [], []
    carried, charges = 0.0, 0.0
    rows = []
    for w in parts:
        ns, values, held = w.oos["equity"]
        curve = pd.Series(values, index=pd.to_datetime(ns, utc=True).tz_convert(IST))
        window_pnl = float(curve.iloc[-1]) - capital if len(curve) else 0.0
        pieces.append(curve + carried)
        flags.extend(held)
        carried += window_pnl
        charges += w.oos["charges"]
        pnls.extend(w.oos["trade_pnls"])
        for f in w.oos["fills"]:
            fills.append({**f, "window": w.window.n})
        m = w.oos["metrics"]
        rows.append(
            {
                "window": w.window.n,
                "is_start": w.window.is_start,
                "is_end": w.window.is_end,
                "oos_start": w.window.oos_start,
                "oos_end": w.window.oos_end,
                **{f"param_{k}": v for k, v in w.best.items()},
                "is_score": w.is_score,
                "is_trials": int((w.trials["status"] == "ok").sum()),
                "is_deflated_sharpe": w.deflated.probability if w.deflated else math.nan,
                "is_pbo": math.nan if w.pbo is None else w.pbo,
                "oos_net_pnl": window_pnl,
                "oos_return": window_pnl / capital,
                "oos_sharpe": math.nan if m["sharpe"] is None else m["sharpe"],
                "oos_trades": m["trades"],
            }
        )
    equity = pd.concat(pieces) if pieces else pd.Series(dtype=float)
    said: dict[str, list[int]] = {}  # a note every window has is said once
    for w in parts:
        for x in w.notes:
            said.setdefault(x, []).append(w.window.n)
    notes = [
        f"{'every window' if len(ns) == len(parts) else 'windows ' + ', '.join(map(str, ns))}: {x}"
        for x, ns in said.items()
    ]
    first, last = parts[0].window.oos_start, parts[-1].window.oos_end
    m = compute(equity, pnls, capital, charges, np.asarray(flags, dtype=bool))
    bars = sum(int(w.oos["bars"]) for w in parts)
    stats = stats_of(m, first, last, bars, n_trials=1)
    rets = daily_returns(equity, capital)
    is_annual = float(np.mean([w.is_annual for w in parts]))
    oos_annual = float(rets.mean()) * TRADING_DAYS if len(rets) else math.nan
    eff = oos_annual / is_annual if is_annual > 0 else math.nan
    if not is_annual > 0:
        notes.append("no walk-forward efficiency: the in-sample annualised return is not positive")
    try:
        psr = deflated_sharpe(rets.to_numpy(), 1, 0.0)
    except ValueError as exc:
        psr = None
        notes.append(f"no probabilistic Sharpe ratio out of sample: {exc}")
    curve = pd.DataFrame({"equity": equity})
    curve["drawdown"] = curve["equity"] - curve["equity"].cummax()
    curve.index.name = "time"
    fills_df = pd.DataFrame(fills)
    if len(fills_df):
        fills_df["time"] = pd.to_datetime(fills_df["time"], utc=True).dt.tz_convert(IST)
    return WalkForward(
        name, label, method, anchored, {k: str(v) for k, v in lengths.items()},
        pd.DataFrame(rows).set_index("window"), curve, stats, fills_df, rets, eff,
        stability([w.best for w in parts]), psr, notes, "", parts, s,
    )  # fmt: skip


def stability(chosen: list[dict[str, Any]]) -> pd.DataFrame:
    """Per parameter: the value chosen most often, its share of the windows, how many
    times the choice changed between consecutive windows, and (numbers) mean and spread
    (standard deviation over mean)."""
    rows = {}
    for k in chosen[0] if chosen else []:
        vals = [c[k] for c in chosen]
        mode, count = Counter(vals).most_common(1)[0]
        row: dict[str, Any] = {
            "most_chosen": mode,
            "share": count / len(vals),
            "changes": sum(a != b for a, b in itertools.pairwise(vals)),
        }
        nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(nums) == len(vals):
            mean = float(np.mean(nums))
            row["mean"] = mean
            row["spread"] = float(np.std(nums, ddof=0)) / abs(mean) if mean else math.nan
        rows[k] = row
    return pd.DataFrame(rows).T


def _store(s: Settings, p: Prepared, wf: WalkForward) -> None:
    """The stitched out-of-sample result as one stored run (``backtest list``), tagged
    ``wf-...``; its windows and chosen parameters in its notes."""
    from mytrading.backtest.metrics import Metrics

    run_id = store.new_run_id(datetime.now(IST))
    m = {k: wf.stats[k] for k in Metrics.__dataclass_fields__}
    notes = [
        f"walk-forward out of sample: {len(wf.windows)} windows, in sample "
        f"{wf.lengths['in_sample']}, out of sample {wf.lengths['out_of_sample']}, "
        f"{'anchored' if wf.anchored else 'rolling'}, by {wf.maximize}; efficiency "
        f"{wf.efficiency:.3f}",
        *(
            f"window {w.window.n} {w.window.oos_start}..{w.window.oos_end}: {w.best}"
            for w in wf.parts
        ),
    ]
    store.save(
        s.stores.backtest_db,
        store.RunRecord(
            run_id,
            list(p.params),
            p.params,
            wf.stats["start"],
            wf.stats["end"],
            p.spec.capital,
            p.data_name,
            "bars",
            p.spec.slippage_ticks,
            int(wf.stats["bars"]),
            0.0,
            "",
            notes,
            "wf-" + run_id,
        ),
        {"*": Metrics(**m)},
        {},
        keep=s.retention.backtest_keep_runs,
    )
    wf.run_id = run_id
