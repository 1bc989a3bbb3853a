#!/usr/bin/env python3
"""The whole-stack simulation's speed (issue 52): simulated trading days per minute per
core, and the faults injected per day.

Runs ``--seeds`` seeds (from ``--first``) one after another on one core (the per-core
figure: each seed's own seconds, summed), ``--repeat`` times: this machine is shared, and
the same seeds' seconds moved by a quarter from one minute to the next (neighbours' load,
not ours), so the figure printed first is each seed's fastest of the rounds (as ``timeit``
takes the best: interference only adds time), the slowest round's beside it. Then, with
``--jobs`` above 1, the same seeds on that many worker processes (the wall figure a CI
run sees). Every invariant is checked as in ``main.py simulate``; a seed that breaks one
is named (the figures still print).

    .venv/bin/python bench/simulate.py [--seeds 40] [--first 1] [--repeat 3] [--jobs 2]
    MT_PURE_PYTHON=1 .venv/bin/python bench/simulate.py ...   # the interpreted build (issue 54)

It prints the build it ran first (``mytrading/compiled.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="rounds on one core (each seed's best)")
    ap.add_argument("--jobs", type=int, default=2, help="workers for the wall figure (1: none)")
    args = ap.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":  # the seeds' days as main.py simulate runs them
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    from mytrading import compiled
    from mytrading.simulation.batch import run_seeds
    from mytrading.simulation.run import summary
    from mytrading.simulation.stack import Options

    seeds = list(range(args.first, args.first + args.seeds))
    print(f"build: {compiled.build()}")
    rounds = [run_seeds(seeds, 1, Options()) for _ in range(max(1, args.repeat))]
    one, wall_one = rounds[0]
    per_seed = [min(r[0][i].seconds for r in rounds) for i in range(len(seeds))]
    worst_round = max(sum(o.seconds for o in r[0]) for r in rounds)
    faults = [sum(o.faults.values()) for o in one]
    orders = [o.orders for o in one]
    r = summary(one, wall_one)
    print(f"seeds {args.first}..{seeds[-1]} ({len(seeds)} trading days), one core, "
          f"{len(rounds)} round(s):")  # fmt: skip
    mean, median, worst = statistics.mean(per_seed), statistics.median(per_seed), max(per_seed)
    print(f"  {60 * len(seeds) / sum(per_seed):.1f} simulated trading days per minute per core "
          f"(each seed's best round; a day in {mean:.2f} s on average, {median:.2f} s median, "
          f"{worst:.2f} s the slowest); the slowest round "
          f"{60 * len(seeds) / worst_round:.1f}")  # fmt: skip
    print(f"  {statistics.mean(faults):.1f} faults injected per day (fewest {min(faults)}, "
          f"most {max(faults)}); {statistics.mean(orders):.1f} orders per day "
          f"(fewest {min(orders)}); {r['checks_total']:,} invariant checks")  # fmt: skip
    if r["failed"]:
        print(f"  FAILED seeds: {r['failed']}")
    if args.jobs > 1:
        _, wall = run_seeds(seeds, args.jobs, Options())
        print(f"on {args.jobs} workers: {len(seeds)} days in {wall:.1f} s wall, "
              f"{60 * len(seeds) / wall:.1f} days a minute; 200 seeds would take about "
              f"{200 * wall / len(seeds):.0f} s")  # fmt: skip
    return 1 if r["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
