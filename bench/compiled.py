"""The backtest bench compiled and interpreted, alternated in one sitting (issue 54).

    python3 main.py compile                       # or any run/test/backtest: build/compiled/
    .venv/bin/python bench/compiled.py [--bars 300000] [--rounds 3] [--peer]

Each round runs ``bench/backtest.py`` twice in fresh processes, once on the compiled
build and once with ``MT_PURE_PYTHON=1`` (the same source interpreted), and prints each
run's bars a second, the build it ran, and whether its fills were identical to the numpy
computation of the crossovers; then the medians and their ratio. ``--peer`` adds
backtrader's figure to each run (``pip install backtrader``, not a dependency).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mytrading import compiled  # noqa: E402


def one(bars: int, pure: bool, peer: bool) -> tuple[float, str, bool, float | None]:
    env = {**os.environ, "MT_PURE_PYTHON": "1" if pure else ""}
    cmd = [sys.executable, str(ROOT / "bench" / "backtest.py"), "--bars", str(bars)]
    out = subprocess.run(cmd + (["--peer", "backtrader"] if peer else []), env=env,
                         capture_output=True, text=True, cwd=ROOT).stdout  # fmt: skip
    speed = float(re.search(r"^bars/s:\s+([\d,]+)", out, re.M).group(1).replace(",", ""))  # type: ignore[union-attr]
    build = re.search(r"^build:\s+(.*)$", out, re.M).group(1)  # type: ignore[union-attr]
    ratio = re.search(r"^ratio:\s+([\d.]+)x", out, re.M)
    return speed, build, "numpy check:   identical" in out, float(ratio.group(1)) if ratio else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peer", action="store_true", help="backtrader's figure in each run too")
    args = ap.parse_args()
    if not compiled.current():
        sys.exit(f"no current compiled build ({compiled.build()}): python3 main.py compile")
    got: dict[bool, list[float]] = {False: [], True: []}
    ratios: dict[bool, list[float]] = {False: [], True: []}
    for r in range(args.rounds):
        for pure in (False, True):
            speed, build, same, ratio = one(args.bars, pure, args.peer)
            got[pure].append(speed)
            if ratio is not None:
                ratios[pure].append(ratio)
            print(f"round {r + 1}  {build:40s} {speed:>10,.0f} bars/s  fills "
                  f"{'identical to numpy' if same else 'DIFFERENT'}"
                  + (f"  {ratio:.1f}x backtrader" if ratio is not None else ""))  # fmt: skip
            if not same:
                sys.exit("fills differ from the numpy computation")
    c, p = statistics.median(got[False]), statistics.median(got[True])
    print(f"compiled     median {c:,.0f} bars/s")
    print(f"interpreted  median {p:,.0f} bars/s")
    print(f"compiled / interpreted: {c / p:.2f}x   (goal >= 2x)")
    if ratios[False]:
        print(f"vs backtrader: compiled {statistics.median(ratios[False]):.1f}x, interpreted "
              f"{statistics.median(ratios[True]):.1f}x   (goal >= 20x compiled)")  # fmt: skip


if __name__ == "__main__":
    main()
