#!/usr/bin/env python3
"""How long after a minute's end its bar reaches a strategy, at the default grace.

Starts the simulator server (its feed late as a broker's: ``MT_SIM_FEED_DELAY_S`` 0.25 s
plus up to 0.25 s of jitter by default), the feed and the engine as real processes, on
the wall clock (``MT_SIM_SPEED=1``), with ``bench/strategies/tick_counter.py`` taking the
1-minute bars of every instrument quoted. Each bar handed is written down with its
delay: the engine's clock when the strategy got it less the minute's end. Prints p50 and
p99 of that delay over every bar, how many bars were handed for how many (instrument,
minute) (one each, or a minute was handed twice), and how the bars closed (by data: the
first tick past the minute; by the clock: the instrument quiet past its lag and
``MT_BAR_GRACE_S``).

    .venv/bin/python bench/bar_delay.py [--minutes 3] [--strikes 5] [--hz 4] [--grace 2]
    .venv/bin/python bench/bar_delay.py --delay 2 --jitter 1     # a feed two seconds late
    .venv/bin/python bench/bar_delay.py --offset -60             # a broker's clock a minute behind
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feed_throughput import measure


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=3.0, help="bars measured over this long")
    ap.add_argument("--strikes", type=int, default=5, help="strikes either side of ATM")
    ap.add_argument("--hz", type=float, default=4.0, help="quotes per second per instrument")
    ap.add_argument("--grace", type=float, default=2.0, help="MT_BAR_GRACE_S")
    ap.add_argument("--delay", type=float, default=0.25, help="MT_SIM_FEED_DELAY_S")
    ap.add_argument("--jitter", type=float, default=0.25, help="MT_SIM_FEED_JITTER_S")
    ap.add_argument("--offset", type=float, default=0.0, help="MT_SIM_FEED_CLOCK_OFFSET_S")
    args = ap.parse_args()
    log = Path(tempfile.mkdtemp(prefix="mtbars-")) / "bars.jsonl"
    extra = {
        "MT_BAR_GRACE_S": str(args.grace),
        "MT_SIM_FEED_DELAY_S": str(args.delay),
        "MT_SIM_FEED_JITTER_S": str(args.jitter),
        "MT_SIM_FEED_CLOCK_OFFSET_S": str(args.offset),
    }
    r = measure(
        args.hz, args.strikes, seconds=args.minutes * 60, warmup=15.0, record=False,
        extra_env=extra, params={"bar_log": str(log)},
    )  # fmt: skip
    if r is None or not log.exists():
        print("daemons not up, or no bar handed", file=sys.stderr)
        return 1
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    minutes = Counter((row[0], row[4]) for row in rows)
    live = [row for row in rows if row[2] != "history"]  # a first bar waits for history
    delays = np.array([row[1] for row in live] or [float("nan")])
    how = Counter(row[2] for row in rows)
    p50, p99 = np.percentile(delays, (50, 99))
    print(
        f"bar delay: a minute's end to its bar in a strategy, {r['instruments']} instruments "
        f"at {args.hz:g}/s, feed delay {args.delay:g} s + up to {args.jitter:g} s, broker "
        f"clock {args.offset:+g} s, grace {args.grace:g} s"
    )
    print(
        f"  bars handed  {len(rows)} for {len(minutes)} (instrument, minute), at most "
        f"{max(minutes.values())} times the same; {dict(how)}; late ticks "
        f"{sum(x[3] for x in rows)}"
    )
    print(
        f"  delay        p50 {p50:.2f} s, p99 {p99:.2f} s, max {delays.max():.2f} s over the "
        f"{len(live)} live bars (each instrument's first, swapped for history's, not counted)"
    )
    for src, lag in sorted(r["lag"].items()):
        print(f"  feed lag     {src}: p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
