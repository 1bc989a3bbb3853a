#!/usr/bin/env python3
"""Backtest speed: SMA(20)/SMA(50) crossover, always in the market (one order reverses the
position on each cross), one lot filled at the next bar's open, on 1,000,000 seeded
synthetic one-minute bars, through the real path (``strategies/sma_crossover.py`` in the
``StrategyRunner``, every pre-trade rule, post-trade checks after every bar, charges).

    .venv/bin/python bench/backtest.py [--bars 1000000] [--sweep] [--peer backtrader] [--split]
        [--portfolio] [--stored]

The bars are made by the market model (``GeneratedBars``) as the run goes, its walk (and
numba's load of its kernels, some 0.2 s) timed with the run. ``--stored``: they are written
to a DuckDB file with the recordings' schema before the clock starts (by a child process),
and the run reads them from it (``DuckBars``) as a backtest of downloaded history does.

Prints bars/s, peak RSS and the trade count, and checks every fill (side and price)
against a plain numpy computation of the same crossovers on the same bars. Risk limits
cannot bind here (``bench/common.unlimited_config``): the run measures the path. With
``--sweep`` it also times 20 parameter combinations on one process and on every core.
With ``--peer backtrader`` (when ``backtrader`` is installed; it is not a dependency:
``.venv/bin/pip install backtrader``) the same strategy runs on the same bars in
backtrader, its fills are checked against the same numpy computation, and the ratio of
the two speeds is printed; on the compiled build the same run is also made by the
interpreted one (``MT_PURE_PYTHON=1``, in a child) and its figure printed beside it (issue
54). ``--split`` times the order path function by function, on the
interpreted build (its wrappers replace methods, which a compiled class does not allow).
``--portfolio`` also runs ten SMA strategies, each on its own far-expiry contract,
``--bars`` in all (the engine's many-instrument loop), each strategy's fills checked
against numpy, and with ``--peer`` the same in backtrader (the portfolio's bars are made
as the run goes).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
if "--split" in sys.argv:  # its wrappers replace methods: a compiled class's are read-only
    os.environ["MT_PURE_PYTHON"] = "1"  # read at the first ``import mytrading``, below

import structlog  # noqa: E402
from common import unlimited_config  # noqa: E402

from mytrading import compiled  # noqa: E402
from mytrading.backtest.data import DuckBars, GeneratedBars, trading_days  # noqa: E402
from mytrading.backtest.loop import Backtest, Spec  # noqa: E402
from mytrading.domain.refdata import load_refdata  # noqa: E402
from mytrading.engine.loader import discover  # noqa: E402
from mytrading.risk.config import risk_files  # noqa: E402

START = date(2026, 1, 1)
CONTRACT = "NIFTY25DEC40FUT"  # far expiry: ten years of one contract's bars
PARAMS = {"fast": 20, "slow": 50, "product": "NRML", "contract": CONTRACT, "lots": 1}
SEED = 7


def window(refdata, bars: int) -> date:
    days = math.ceil(bars / 375)
    d = START
    got = 0
    while True:
        got += len(trading_days(refdata, "NFO", d, d))
        if got >= days:
            return d
        d += timedelta(days=1)


def reference(
    source: GeneratedBars, end: date, warm: int, where: tuple[str, str] = ("NFO", CONTRACT)
) -> list[tuple[str, float]]:
    """(action, price) of every fill: a plain numpy crossover on the same closes."""
    cols = {k: [] for k in ("start", "open", "close")}
    for b in source.batches(*where, source.origin, end):
        cols["start"].append(b.start_ns)
        cols["open"].append(b.open)
        cols["close"].append(b.close)
    start = np.concatenate(cols["start"])
    opens = np.concatenate(cols["open"])
    close = np.concatenate(cols["close"])
    first = int(np.searchsorted(start, _ns(START)))
    # exact: prices in ticks (0.05) are integers; fast - slow has the sign of 5 S20 - 2 S50
    ticks = np.rint(close * 20).astype(np.int64)
    c = np.concatenate(([0], np.cumsum(ticks)))
    s20 = np.zeros(len(close), dtype=np.int64)
    s50 = np.zeros(len(close), dtype=np.int64)
    s20[19:] = c[20:] - c[:-20]
    s50[49:] = c[50:] - c[:-50]
    side = np.sign(5 * s20 - 2 * s50)
    side[:49] = 0
    out = []
    pos = 0
    lo = first - warm  # the strategy saw ``warm`` bars before the first one
    for t in range(max(lo, 49), len(close) - 1):
        if t < first or side[t] == 0 or side[t] == pos:
            continue
        out.append(("BUY" if side[t] > 0 else "SELL", float(opens[t + 1])))
        pos = int(side[t])
    return out


def _ns(d: date) -> int:
    from datetime import datetime

    from mytrading.domain.refdata import IST

    return int(datetime.combine(d, datetime.min.time(), IST).timestamp()) * 1_000_000_000


def stored(source: GeneratedBars, end: date, path: Path, where: tuple[str, str]) -> DuckBars:
    """The generated bars of ``where`` written to a DuckDB file with the recordings'
    ``bars`` schema, as a download or a recording leaves them, and a source reading them:
    the bars made before the clock starts, as backtrader's frame is (without ``--stored``:
    as the run goes, the market model's walk and its first call timed too). Written
    by a child process, so the peak RSS printed is the run's, not the writing's."""
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(
        target=_write, args=(source, end, path, where)
    )
    child.start()
    child.join()
    if child.exitcode != 0:
        sys.exit(f"writing the bars to {path} failed (exit {child.exitcode})")
    return DuckBars(path)


def _write(source: GeneratedBars, end: date, path: Path, where: tuple[str, str]) -> None:
    """The bars stored as ``main.py data import`` stores a file's (``import_bars``)."""
    import pandas as pd

    from mytrading.backtest.download import import_bars

    cols = {k: [] for k in ("start_ns", "open", "high", "low", "close", "volume")}
    for b in source.batches(*where, source.origin, end):
        for k, v in cols.items():
            v.append(getattr(b, k))
    arr = {k: np.concatenate(v) for k, v in cols.items()}
    frame = pd.DataFrame(
        {
            "start": pd.to_datetime(arr["start_ns"], utc=True).tz_convert("Asia/Kolkata"),
            **{k: arr[k] for k in ("open", "high", "low", "close", "volume")},
        }
    )
    import_bars(path, frame, *where, "1m")


def _cerebro_run(frames: list[Any], strategy: type, cash: float) -> float:
    """backtrader over ``frames`` (one feed each) with ``strategy``: seconds of its run."""
    import backtrader as bt

    cerebro = bt.Cerebro(stdstats=False)
    for f in frames:
        cerebro.adddata(bt.feeds.PandasData(dataname=f))
    cerebro.addstrategy(strategy)
    cerebro.broker.setcash(cash)
    t0 = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - t0


def peer_backtrader(source: GeneratedBars, end: date, warm: int) -> tuple[float, int, bool]:
    """The same SMA 20/50 stop-and-reverse in backtrader on the same bars (from ``warm``
    bars before the start): (bars/s, bars, fills identical to numpy's)."""
    import backtrader as bt
    import pandas as pd

    cols = {k: [] for k in ("start", "open", "high", "low", "close", "volume")}
    for b in source.batches("NFO", CONTRACT, source.origin, end):
        for k in cols:
            cols[k].append(getattr(b, "start_ns" if k == "start" else k))
    arr = {k: np.concatenate(v) for k, v in cols.items()}
    first = int(np.searchsorted(arr["start"], _ns(START))) - warm
    idx = pd.to_datetime(arr["start"][first:], utc=True).tz_convert("Asia/Kolkata")
    frame = pd.DataFrame(
        {k: arr[k][first:] for k in ("open", "high", "low", "close", "volume")},
        index=idx.tz_localize(None),
    )
    start_dt = pd.Timestamp(START)
    fills: list[tuple[str, float]] = []

    class SmaReverse(bt.Strategy):  # type: ignore[misc]  # backtrader ships no types
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=20)
            self.slow = bt.indicators.SMA(self.data.close, period=50)

        def next(self) -> None:
            if self.data.datetime.datetime(0) < start_dt:
                return
            diff = self.fast[0] - self.slow[0]
            if abs(diff) < 1e-6:
                return
            target = 1 if diff > 0 else -1
            if self.position.size != target:
                self.order_target_size(target=target)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                fills.append(("BUY" if order.isbuy() else "SELL", round(order.executed.price, 2)))

    dt = _cerebro_run([frame], SmaReverse, 1e12)
    bars = len(frame) - warm
    return bars / dt, bars, fills == reference(source, end, warm)


class OrderClock:
    """Time spent on the order path, per order (``--split``), function by function: each
    wrapped call's own time (its wrapped callees' taken out), so the parts add up to the
    path. From the strategy's order call (the intent made and queued) through risk
    (funds, then the core's rules), the simulated broker's placing, the broker's match on
    a later bar, to every consumer of the order's updates and fill (risk's books, the
    results with their charges, the strategy's books and hooks). A wrapper costs ~0.3 us:
    the figure is an upper bound."""

    def __init__(self) -> None:
        self.spent: dict[str, int] = {}
        self.stack: list[list[int]] = []  # per open call: [children's time]

    def wrap(self, owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name)
        clock = self
        self.spent.setdefault(label, 0)

        def timed(*a: Any, **kw: Any) -> Any:
            frame = [0]
            clock.stack.append(frame)
            t0 = time.perf_counter_ns()
            try:
                return fn(*a, **kw)
            finally:
                took = time.perf_counter_ns() - t0
                clock.stack.pop()
                clock.spent[label] += took - frame[0]
                if clock.stack:
                    clock.stack[-1][0] += took

        setattr(owner, name, timed)

    def install(self, bt: Backtest) -> None:
        from mytrading.engine.context import StrategyContext

        self.wrap(StrategyContext, "order", "strategy: order call, intent made")
        self.wrap(bt, "_drain", "queues (intents, orders)")
        self.wrap(bt.risk, "_available", "risk: funds before the intent")
        self.wrap(bt.risk.core, "on_intent", "risk: pre-trade rules, orders made")
        self.wrap(bt.venue, "send", "venue: place with the broker")
        self.wrap(bt.broker, "on_bar", "broker: the fill on the next bar")
        self.wrap(bt.venue, "on_events", "venue: updates and fill made")
        self.wrap(bt.risk, "on_update", "risk: order updates")
        self.wrap(bt.risk, "on_fill", "risk: fill booked, charges")
        self.wrap(bt.results, "on_order", "results: order row")
        self.wrap(bt.results, "on_update", "results: order updates")
        self.wrap(bt.results, "on_fill", "results: fill, charges, trades")
        self.wrap(bt.runner, "on_order_update", "strategy: order updates, hooks")
        self.wrap(bt.runner, "on_fill", "strategy: fill, books, hooks")

    def report(self, orders: int) -> None:
        per = max(orders, 1) * 1000
        total = sum(self.spent.values()) / per
        print(f"order path:    {total:.1f} us per order   (goal <= 40)")
        for label, ns in sorted(self.spent.items(), key=lambda kv: -kv[1]):
            print(f"  {ns / per:7.1f}  {label}")


def portfolio_contracts(refdata: Any, n: int = 10) -> list[tuple[str, str]]:
    """``n`` far-expiry futures (four indices, three monthly expiries of 2040): a
    portfolio of ``n`` SMA strategies, each on its own contract."""
    from mytrading.domain.refdata import future_symbol

    out = []
    for month in (12, 11, 10):
        for name in ("NIFTY", "BANKNIFTY", "FINNIFTY", "SENSEX"):
            u = refdata.underlying(name)
            expiry = refdata.calendar.monthly_expiry(u, 2040, month)
            out.append((u.fo_exchange, future_symbol(name, expiry)))
    return out[:n]


def portfolio(args: Any, config: Path, refdata: Any, source: GeneratedBars) -> None:
    """Ten SMA crossover strategies, each on its own contract, ``--bars`` in all through
    the engine (its many-instrument loop), each strategy's fills against numpy; with
    ``--peer backtrader``, the same in backtrader (one strategy over the ten feeds)."""
    contracts = portfolio_contracts(refdata)
    end = window(refdata, args.bars // len(contracts))
    base = discover(ROOT / "strategies")["sma_crossover"]
    strategies = []
    for i, (ex, sym) in enumerate(contracts):
        cls = type(f"Sma{i}", (base,), {"name": f"sma_{i}"})
        und = refdata.instrument(ex, sym).underlying
        strategies.append((cls, {**PARAMS, "contract": sym, "underlying": und}))
    spec = Spec(strategies, START, end, capital=1e12)
    bt = Backtest(spec, refdata, risk_files(config, {}), source)
    t0 = time.perf_counter()
    bt.run()
    dt = time.perf_counter() - t0
    bars = bt.progress.bars
    fills = bt.results.fills
    same = all(
        [(f["action"], f["price"]) for f in fills if f["strategy"] == f"sma_{i}"]
        == reference(source, end, PARAMS["slow"], where)
        for i, where in enumerate(contracts)
    )
    print(f"portfolio:     {len(contracts)} SMA strategies, {bars:,} bars in all, {START} .. {end}")
    print(f"  bars/s:      {bars / dt:,.0f}   fills {len(fills):,}; numpy check: "
          f"{'identical' if same else 'DIFFERENT'} for every strategy")  # fmt: skip
    if not same:
        sys.exit(1)
    if args.peer:
        speed, n, ok = peer_backtrader_many(source, end, PARAMS["slow"], contracts)
        print(f"  backtrader:  {speed:,.0f} bars/s on {n:,} bars; fills "
              f"{'identical to numpy' if ok else 'DIFFERENT from numpy'}")  # fmt: skip
        print(f"  ratio:       {bars / dt / speed:.1f}x backtrader")


def peer_backtrader_many(
    source: GeneratedBars, end: date, warm: int, contracts: list[tuple[str, str]]
) -> tuple[float, int, bool]:
    """``peer_backtrader`` over several contracts: one strategy, a feed and its two SMAs
    per contract, each stop-and-reverse on its own (bars/s, bars, every feed's fills
    identical to numpy's)."""
    import backtrader as bt
    import pandas as pd

    frames = []
    for where in contracts:
        cols = {k: [] for k in ("start", "open", "high", "low", "close", "volume")}
        for b in source.batches(*where, source.origin, end):
            for k in cols:
                cols[k].append(getattr(b, "start_ns" if k == "start" else k))
        arr = {k: np.concatenate(v) for k, v in cols.items()}
        first = int(np.searchsorted(arr["start"], _ns(START))) - warm
        idx = pd.to_datetime(arr["start"][first:], utc=True).tz_convert("Asia/Kolkata")
        frames.append(
            pd.DataFrame(
                {k: arr[k][first:] for k in ("open", "high", "low", "close", "volume")},
                index=idx.tz_localize(None),
            )
        )
    start_dt = pd.Timestamp(START)
    fills: list[list[tuple[str, float]]] = [[] for _ in contracts]

    class SmaReverseMany(bt.Strategy):  # type: ignore[misc]  # backtrader ships no types
        def __init__(self) -> None:
            self.smas = [
                (bt.indicators.SMA(d.close, period=20), bt.indicators.SMA(d.close, period=50))
                for d in self.datas
            ]

        def next(self) -> None:
            if self.datas[0].datetime.datetime(0) < start_dt:
                return
            for d, (fast, slow) in zip(self.datas, self.smas, strict=True):
                diff = fast[0] - slow[0]
                if abs(diff) < 1e-6:
                    continue
                target = 1 if diff > 0 else -1
                if self.getposition(d).size != target:
                    self.order_target_size(data=d, target=target)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                i = self.datas.index(order.data)
                fills[i].append(
                    ("BUY" if order.isbuy() else "SELL", round(order.executed.price, 2))
                )

    dt = _cerebro_run(frames, SmaReverseMany, 1e15)
    bars = sum(len(f) - warm for f in frames)
    ok = all(fills[i] == reference(source, end, warm, w) for i, w in enumerate(contracts))
    return bars / dt, bars, ok


def sweep(bars: int) -> None:
    """20 combinations (fast x slow), each on ``bars`` bars: one process, then every core."""
    import os

    from mytrading.backtest.sweep import Job, execute_jobs

    with tempfile.TemporaryDirectory() as tmp:
        config = unlimited_config(Path(tmp))
        refdata = load_refdata(config)
        end = window(refdata, bars)
        origin = START - timedelta(days=120)
        jobs = [
            Job(
                refdata,
                risk_files(config, {}),
                str(ROOT / "strategies"),
                ("sma_crossover",),
                {"sma_crossover": PARAMS},
                START,
                end,
                10_000_000.0,
                0,
                False,
                ("generated", "", SEED, origin),
                {"fast": str(f), "slow": str(sl)},
            )
            for f in (5, 10, 15, 20)
            for sl in (30, 40, 50, 60, 70)
        ]
        timings = {}
        for workers in (1, os.cpu_count() or 1):
            t0 = time.perf_counter()
            done = execute_jobs(jobs, workers, None)
            timings[workers] = time.perf_counter() - t0
            assert len(done) == 20 and not any("error" in r for r in done)
            print(f"sweep of 20 x {bars:,} bars on {workers} process(es): {timings[workers]:.1f} s")
        n = max(timings)
        print(f"sweep speed-up on {n} cores: {timings[1] / timings[n]:.2f}x   (goal >= 1.7x)")


def interpreted_figure(args: Any) -> float:
    """The same bench (bars, data source) run by the interpreted build in a child process,
    for the figure issue 54 asks beside the compiled one: its bars a second."""
    cmd = [sys.executable, __file__, "--bars", str(args.bars), *(["--stored"] * args.stored)]
    env = {**os.environ, "MT_PURE_PYTHON": "1"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    build = re.search(r"^build:\s+(.*)$", out, re.M)
    if build is None or build.group(1).startswith("compiled"):
        sys.exit(f"the interpreted child ran {build.group(1) if build else 'no build'}")
    got = re.search(r"^bars/s:\s+([\d,]+)", out, re.M)
    assert got is not None, out
    return float(got.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--sweep-bars", type=int, default=60_000, help="bars per combination")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--peer", choices=["backtrader"], help="run the same on a peer engine")
    ap.add_argument(
        "--split", action="store_true", help="time the order path per order (OrderClock)"
    )
    ap.add_argument(
        "--portfolio",
        action="store_true",
        help="also ten SMA strategies on ten contracts, --bars in all (and its backtrader peer)",
    )
    ap.add_argument(
        "--stored",
        action="store_true",
        help="the bars read from a DuckDB file written before the clock starts",
    )
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        config = unlimited_config(Path(tmp))
        risk = config / "risk.toml"  # an order at 15:30 fills at the next open, as numpy's
        risk.write_text(risk.read_text().replace("[defaults]\n", "[defaults]\nany_hour = true\n"))
        refdata = load_refdata(config)
        end = window(refdata, args.bars)
        source = GeneratedBars(refdata, SEED, origin=START - timedelta(days=120))
        cls = discover(ROOT / "strategies")["sma_crossover"]
        spec = Spec([(cls, PARAMS)], START, end, capital=1e9)  # margin cannot bind either
        data = (
            source
            if not args.stored
            else stored(source, end, Path(tmp) / "bars.duckdb", ("NFO", CONTRACT))
        )
        bt = Backtest(spec, refdata, risk_files(config, {}), data)
        split = OrderClock() if args.split else None
        if split:
            split.install(bt)
        t0 = time.perf_counter()
        if args.profile:
            import cProfile

            cProfile.runctx("bt.run()", globals(), locals(), sort="tottime")
        else:
            bt.run()
        dt = time.perf_counter() - t0
        res = bt.results
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        bars = bt.progress.bars
        got = [(f["action"], f["price"]) for f in res.fills]
        want = reference(source, end, warm=PARAMS["slow"])
        same = got == want
        print(f"bars:          {bars:,} one-minute bars, {START} .. {end}")
        print(f"build:         {compiled.build()}")
        made = "read from DuckDB" if args.stored else "made by the model as the run goes"
        print(f"data:          {made}")
        print(f"time:          {dt:.2f} s")
        print(f"bars/s:        {bars / dt:,.0f}   (goal >= 150,000)")
        print(f"peak RSS:      {rss:,.0f} MB   (goal <= 500)")
        print(f"fills:         {len(got):,}   round trips: {len(res.trades()):,}")
        print(f"numpy check:   {'identical' if same else 'DIFFERENT'} ({len(want):,} expected)")
        if split:
            split.report(len(res.orders))
        if not same:
            for i, (a, b) in enumerate(zip(got, want, strict=False)):
                if a != b:
                    print(f"  first difference at fill {i}: got {a}, numpy {b}")
                    break
            sys.exit(1)
        if args.peer:
            try:
                import backtrader  # noqa: F401
            except ImportError:
                sys.exit("--peer backtrader: not installed (.venv/bin/pip install backtrader)")
            pure = interpreted_figure(args) if compiled.build().startswith("compiled") else None
            speed, n, same = peer_backtrader(source, end, warm=PARAMS["slow"])
            print(
                f"backtrader:    {speed:,.0f} bars/s on {n:,} bars; fills "
                f"{'identical to numpy' if same else 'DIFFERENT from numpy'}"
            )
            print(f"ratio:         {bars / dt / speed:.1f}x backtrader   (goal >= 20x)")
            if pure is not None:
                print(
                    f"interpreted:   {pure:,.0f} bars/s (the same run with MT_PURE_PYTHON=1,"
                    f" in a child): {pure / speed:.1f}x backtrader; compiled"
                    f" x{bars / dt / pure:.2f} of it"
                )
        if args.portfolio:
            portfolio(args, config, refdata, source)
    if args.sweep:
        sweep(args.sweep_bars)


if __name__ == "__main__":
    main()
