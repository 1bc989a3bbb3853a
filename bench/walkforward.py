#!/usr/bin/env python3
"""Walk-forward speed: the SMA crossover on two years of generated one-minute bars of one
future (a far-expiry contract, held overnight: NRML), 100 parameter sets (fast 5..50 step
5 x slow 20..200 step 20; the sets with fast >= slow are refused by the strategy's model
and not run), six months in sample and one month out of sample, rolled monthly, on every
core, through ``mytrading.research.walk_forward`` (the notebook's and the command line's
path: every set a real backtest with risk, fills and charges).

    .venv/bin/python bench/walkforward.py [--quick] [--dask]

Prints the wall time, the bars processed (every in-sample trial's and every out-of-sample
run's), bars per second per core, and their ratio to a single backtest's bars per second
measured in the same run (``bench/backtest.py``'s run, 200,000 bars, before and after the
walk-forward: the mean), and the share of
the cores' time spent inside the trials' backtests (the rest is the search's own cost and
idle cores); the parallel
efficiency (one window's in-sample trials on one process against every core); with
three of the grid's sets alone (bars/s and round trips: the workload's spread); with
``--dask``, the same walk-forward on a local Dask cluster and whether it chose the same
parameters and made the same out-of-sample fills. ``--quick``: 8 months, 3 in sample,
20 sets (a minute).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import structlog  # noqa: E402
from common import unlimited_config  # noqa: E402

CONTRACT = "NIFTY25DEC40FUT"  # far expiry: years of one contract's bars
FIXED = {"contract": CONTRACT, "product": "NRML", "lots": 1}


def single_speed(config: Path, bars: int = 200_000) -> float:
    """bars/s of one backtest of SMA(20)/SMA(50), as bench/backtest.py runs it."""
    from mytrading.backtest.data import GeneratedBars
    from mytrading.backtest.loop import Backtest, Spec
    from mytrading.domain.refdata import load_refdata
    from mytrading.engine.loader import discover
    from mytrading.risk.config import risk_files

    refdata = load_refdata(config)
    start = date(2026, 1, 1)
    end = start + timedelta(days=int(bars / 375 * 7 / 5) + 10)
    source = GeneratedBars(refdata, 7, origin=start - timedelta(days=120))
    cls = discover(ROOT / "strategies")["sma_crossover"]
    spec = Spec([(cls, {**FIXED, "fast": 20, "slow": 50})], start, end, capital=1e9)
    bt = Backtest(spec, refdata, risk_files(config, {}), source)
    t0 = time.perf_counter()
    bt.run()
    return bt.progress.bars / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="8 months, 3 in sample, 20 sets")
    ap.add_argument("--dask", action="store_true", help="also on a local Dask cluster")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        config = unlimited_config(Path(tmp))
        os.environ.update(
            MT_CONFIG_DIR=str(config),
            MT_BACKTEST_DB=str(Path(tmp) / "bt.duckdb"),
            MT_REPORT_DIR=str(Path(tmp) / "reports"),
        )
        from mytrading.backtest.sweep import execute_jobs, job_for, run_job
        from mytrading.research import walk_forward
        from mytrading.research.runs import prepared, request
        from mytrading.settings import load_settings

        s = load_settings()
        if args.quick:
            grid = {"fast": list(range(5, 30, 5)), "slow": list(range(40, 200, 40))}
            first, last, ins = "2025-01-01", "2025-08-31", "3M"
        else:
            grid = {"fast": list(range(5, 55, 5)), "slow": list(range(20, 220, 20))}
            first, last, ins = "2025-01-01", "2026-12-31", "6M"
        n_sets = len(grid["fast"]) * len(grid["slow"])
        before = single_speed(config)
        t0 = time.perf_counter()
        wf = walk_forward(
            "sma_crossover", grid, params=FIXED, in_sample=ins, out_of_sample="1M",
            start=first, end=last, capital=1e9, workers=cores, settings=s,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        after = single_speed(config)  # the machine's speed drifts: measured on both sides
        base = (before + after) / 2
        print(f"single backtest:     {base:,.0f} bars/s (SMA 20/50, 200,000 bars; "
              f"{before:,.0f} before the walk-forward, {after:,.0f} after)")  # fmt: skip
        is_bars = sum(int(t["bars"].fillna(0).sum()) for t in (p.trials for p in wf.parts))
        oos_bars = int(wf.stats["bars"])
        bars = is_bars + oos_bars
        trials = sum(int((p.trials["status"] == "ok").sum()) for p in wf.parts)
        per_core = bars / wall / cores
        print(f"walk-forward:        {len(wf.windows)} windows x {n_sets} sets "
              f"({trials:,} trials run), {first}..{last}, in sample {ins}, "
              "rolled monthly")  # fmt: skip
        print(f"bars processed:      {bars:,} ({is_bars:,} in sample, {oos_bars:,} out)")
        print(f"wall time:           {wall:.1f} s on {cores} cores")
        print(f"bars/s per core:     {per_core:,.0f}")
        print(f"ratio to a backtest: {per_core / base:.2f}   (goal >= 1.0)")
        # what the trials' own backtests took, against the cores' time: the rest is the
        # search's machinery (jobs, pickling, the parent's figures) and idle cores
        inside = sum(float(p.trials["seconds"].fillna(0).sum()) + float(p.oos["seconds"])
                     for p in wf.parts)  # fmt: skip
        print(f"in the backtests:    {inside / (wall * cores):.0%} of {cores} cores' time "
              f"({inside:.0f} s of {wall * cores:.0f} s)")  # fmt: skip
        # parallel efficiency: one window's in-sample trials on 1 process, then every core
        _, p = prepared(s, request(
            "sma_crossover", FIXED, data="generated", start=first, end=last, capital=1e9,
            seed=42, slippage_ticks=0, timeframe=None, fills="bars", interval="1m",
            allow_holes=False,
        ))  # fmt: skip
        w = wf.windows.iloc[0]
        combos = [{"fast": f, "slow": sl} for f in grid["fast"] for sl in grid["slow"] if f < sl][
            : max(cores * 4, 8)
        ]
        jobs = [job_for(p, c, w["is_start"], w["is_end"]) for c in combos]
        took = {}
        for n in (1, cores):
            t = time.perf_counter()
            execute_jobs(jobs, n, None)
            took[n] = time.perf_counter() - t
        eff = took[1] / (cores * took[cores])
        print(f"parallel efficiency: {eff:.0%} ({len(jobs)} trials: {took[1]:.1f} s on 1 "
              f"process, {took[cores]:.1f} s on {cores})   (goal >= 90%)")  # fmt: skip
        # the workload: one six-month job alone, in this process, for three sets of the
        # grid (short periods trade more; an order costs far more than a bar)
        for fast, slow in ((5, 20), (20, 50), (50, 200)):
            job = job_for(p, {"fast": fast, "slow": slow}, w["is_start"], w["is_end"])
            t = time.perf_counter()
            r = run_job(job)
            dt = time.perf_counter() - t
            print(f"{'one trial ' + f'{fast}/{slow}:':<21}{r['bars'] / dt:,.0f} bars/s, "
                  f"{int(r['metrics']['trades']):,} round trips")  # fmt: skip
        print(f"out of sample:       net {wf.stats['net_pnl']:,.0f}, Sharpe "
              f"{float(wf.stats['sharpe']):.2f}, efficiency {wf.efficiency:.2f}")  # fmt: skip
        if args.dask:
            from dask.distributed import LocalCluster

            with LocalCluster(
                n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster:
                t = time.perf_counter()
                there = walk_forward(
                    "sma_crossover", grid, params=FIXED, in_sample=ins, out_of_sample="1M",
                    start=first, end=last, capital=1e9, cluster=cluster.scheduler_address,
                    settings=s,
                )  # fmt: skip
                dt = time.perf_counter() - t
            same_params = there.chosen().equals(wf.chosen())
            cols = ["time", "symbol", "action", "quantity", "price"]
            same_fills = there.fills[cols].equals(wf.fills[cols])
            print(f"dask (local, {cores} workers): {dt:.1f} s; same chosen parameters: "
                  f"{same_params}; same out-of-sample fills: {same_fills}")  # fmt: skip
            if not (same_params and same_fills):
                sys.exit(1)


if __name__ == "__main__":
    main()
