#!/usr/bin/env python3
"""Options under load: a year of the weekly NIFTY short straddle backtested on generated
option history (goal <= 30 s, peak RSS <= 1 GB), as the Python example and as the builder
template; what the simulator lists and what a
market step costs with 200 options watched; the ticks per second the feed delivers from
the simulator's WebSocket with the full ladder listed and ~200 instruments subscribed
(goal >= 20,000).

    .venv/bin/python bench/options.py [--hz 150] [--strikes 16] [--seconds 15] [--no-stack]

The backtest: ``strategies/nifty_short_straddle.py`` as the demo runs it (ATM CE and PE of
the nearest weekly sold at 09:30, per-leg stops, a max loss, out at 15:10) from
2025-11-24 to 2026-11-20 on 1-minute bars, its legs' bars generated as it subscribes them
(``GeneratedBars``), through the live runner, every risk rule and charges.

``--strikes 16`` subscribes NIFTY, BANKNIFTY and SENSEX ATM +- 16 of the nearest expiry
(3 x 33 x 2 options), their indices and futures: 207 instruments, at ``--hz`` quotes each a
second, while the simulator lists its whole ladder (~7,400 options).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import structlog  # noqa: E402
from feed_throughput import measure  # noqa: E402

from mytrading.backtest.data import GeneratedBars  # noqa: E402
from mytrading.backtest.loop import Backtest, Spec  # noqa: E402
from mytrading.builder.spec import parse  # noqa: E402
from mytrading.builder.strategy import make_class  # noqa: E402
from mytrading.builder.templates import render  # noqa: E402
from mytrading.domain.refdata import IST, load_refdata  # noqa: E402
from mytrading.engine.loader import discover  # noqa: E402
from mytrading.engine.strategy import BaseStrategy  # noqa: E402
from mytrading.risk.config import risk_files  # noqa: E402
from mytrading.sim.market import OPTION_KINDS, SimMarket  # noqa: E402

DAY = date(2026, 11, 20)


def straddle_year(cls: type[BaseStrategy[Any]], label: str) -> None:
    """A year of a weekly short straddle, backtested."""
    refdata = load_refdata(ROOT / "config")
    start, end = date(2025, 11, 24), date(2026, 11, 20)
    source = GeneratedBars(refdata, 42, origin=start - timedelta(days=120))
    bt = Backtest(
        Spec([(cls, {})], start, end, capital=5_000_000.0),
        refdata,
        risk_files(ROOT / "config", {}),
        source,
    )
    t0 = time.perf_counter()
    bt.run()
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = bt.results
    legs = {f["symbol"] for f in res.fills}
    print(f"{label}, a year on generated option history ({start} .. {end})")
    print(f"  time          {dt:.1f} s   (goal <= 30 s)")
    print(f"  peak RSS      {rss:,.0f} MB   (goal <= 1,024)")
    print(f"  bars          {bt.progress.bars:,} (the index and {len(legs)} option legs)")
    print(f"  fills         {len(res.fills):,}; net P&L {res.metrics().net_pnl:,.0f} rupees")
    notes = bt.all_notes()
    print(f"  notes         {'; '.join(notes) if notes else 'none'}")


def in_process(steps: int = 2000) -> None:
    """The listing, and a step's cost with the strip of 200 options watched."""
    refdata = load_refdata(ROOT / "config")
    t0 = time.perf_counter()
    m = SimMarket(refdata, ["NIFTY", "BANKNIFTY", "SENSEX"], DAY, 0, seed=7)
    built = time.perf_counter() - t0
    options = [si for si in m.instruments if si.inst.kind in OPTION_KINDS]
    near = [
        (si.inst.exchange, si.inst.symbol)
        for si in options
        if si.inst.underlying == "NIFTY" and si.inst.expiry == date(2026, 11, 23)
    ]
    mid = len(near) // 2
    m.watch(near[mid - 100 : mid + 100])
    ns = int(datetime(2026, 11, 20, 10, 0, tzinfo=IST).timestamp() * 1e9)
    ticks = 0
    t0 = time.perf_counter()
    for k in range(steps):
        ticks += len(m.step(ns + k * 250_000_000))
    dt = time.perf_counter() - t0
    print("simulated option market (in process)")
    print(f"  listed        {len(options):,} option contracts (NIFTY, BANKNIFTY, SENSEX)")
    print(f"                built in {built * 1000:.0f} ms   (goal: >= 2,000 listed)")
    print(f"  one step      {dt / steps * 1e6:,.0f} us with 200 options watched")
    print(f"                {ticks / dt:,.0f} ticks/s quoted by the market alone")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hz", type=float, default=150.0, help="quotes a second per instrument")
    ap.add_argument("--strikes", type=int, default=16, help="strikes either side of ATM")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--no-stack", action="store_true", help="skip the processes' part")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    # first: the peak RSS is the process's so far
    straddle_year(discover(ROOT / "strategies")["nifty_short_straddle"], "short straddle")
    text = render("bench_straddle", "straddle")
    spec = parse(Path("bench_straddle.toml"), text)
    straddle_year(
        make_class("bench_straddle", spec, Path("bench_straddle.toml")),
        "builder straddle template (stops, re-entry, stop to cost)",
    )
    in_process()
    if args.no_stack:
        return 0
    r = measure(args.hz, args.strikes, seconds=args.seconds, record=True)
    if r is None:
        print("daemons not up", file=sys.stderr)
        return 1
    print("through the stack: simulator WebSocket -> feed -> bus -> engine (recording on)")
    print(f"  subscribed    {r['instruments']} instruments x {args.hz:.0f}/s")
    print(f"  server sent   {r['sent']:,.0f} ticks/s (dropped for a slow client {r['dropped']})")
    print(f"  feed out      {r['feed']:,.0f} ticks/s   (goal >= 20,000)")
    print(f"  engine gaps   {r['gaps']}")
    print("  CPU (one core = 100 %):", ", ".join(f"{n} {c:.0%}" for n, c in r["cpu"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
