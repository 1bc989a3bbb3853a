#!/usr/bin/env python3
"""The day's shadow over many simulated trading days (issue 53): how much of live the
shadow pairs and explains, day after day, on the deterministic simulation's seeds.

Each seed's day runs the whole stack's cores (``Options(record=True)``: the feed records,
risk's events are stored), then the day's shadow is read from the stack's own files as
after a real close. Printed per strategy: live decisions, matched, one-sided decisions
left ``unexplained`` and their share, and the seconds per day (the day and its shadow).

    .venv/bin/python bench/shadow_simulated.py [--seeds 15] [--first 1] [--faults]

``--faults``: each seed's faults and operator too (a bad day: lost replies, kills, a
stalled or dropped feed, commands), as ``main.py simulate`` runs them.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading.shadow.pairing import UNEXPLAINED  # noqa: E402
from mytrading.simulation.run import run_seed  # noqa: E402
from mytrading.simulation.stack import Options  # noqa: E402


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":  # one hashing, as `main.py simulate` has:
        os.environ["PYTHONHASHSEED"] = "0"  # a seed's day is the same on every run
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=15)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--faults", action="store_true", help="the seeds' faults and operator too")
    a = ap.parse_args()
    live: collections.Counter[str] = collections.Counter()
    matched: collections.Counter[str] = collections.Counter()
    unexplained: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mt-shadow-sim-") as work:
        for seed in range(a.first, a.first + a.seeds):
            opts = Options(record=True, faults=a.faults, operator=a.faults)
            r = run_seed(seed, Path(work), options=opts)
            for name, st in r.shadow.strategies.items():
                c = st.counts()
                live[name] += c["matched"] + c["live_only"]
                matched[name] += c["matched"]
                unexplained[name] += sum(1 for p in st.pairs if p.why == UNEXPLAINED)
    seconds = time.perf_counter() - t0
    kind = "with their faults and operator" if a.faults else "without faults"
    print(f"{a.seeds} simulated days (seeds {a.first}..{a.first + a.seeds - 1}, {kind}): "
          f"{seconds / a.seeds:.1f} s a day with its shadow")  # fmt: skip
    print(f"  {'strategy':<22}{'live':>6}{'matched':>9}{'unexplained':>13}")
    for name in sorted(live):
        print(f"  {name:<22}{live[name]:>6}{matched[name]:>9}{unexplained[name]:>13}")
    n, m, u = sum(live.values()), sum(matched.values()), sum(unexplained.values())
    print(f"  {'all':<22}{n:>6}{m:>9}{u:>13}   matched {m / max(n, 1):.0%}, "
          f"unexplained {u} one-sided decisions")  # fmt: skip


if __name__ == "__main__":
    main()
