#!/usr/bin/env python3
"""Where the SMA backtest's time goes, function by function, per bar and per order, from a
sampling profile (issue 36: what is left, and why).

Runs ``bench/backtest.py`` once as it is, for its time, bars and orders, and once under
``py-spy`` (a sampling profiler: no wrapper per call, so a function of half a microsecond
is not inflated the way ``--split``'s wrappers inflate it). Each sample inside
``Backtest.run`` is put on one path by its stack:

- **order**: under the strategy's order call, the engine's queue drain (risk, the venue's
  placing), the simulated broker's matching, or the venue's events (updates and fills to
  risk, the results and the strategy);
- **data**: the bench's generated bars being made (a recording or a download is read
  instead in a real run: ``bench/backtest.py --stored``);
- **bar**: everything else of the bar loop;

and on the function it was in (its own time: the innermost frame of our code or the
library's Python). Each path's share of the samples times the plain run's time gives
microseconds per bar (per order for the order path).

    .venv/bin/pip install py-spy   # not a dependency of the product
    .venv/bin/python bench/backtest_profile.py [--bars 1000000] [--top 15]

Both runs are of the interpreted build (``MT_PURE_PYTHON=1``): py-spy reads Python's
frames, and a module of the compiled build runs as C, where it sees none (it found no
sample inside ``Backtest.run``). The compiled build's own profile: ``perf record``.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ORDER_FRAMES = (
    "StrategyContext.order ",
    "Backtest._drain ",
    "BarBroker.on_bar ",
    "BacktestVenue.on_events ",
)
DATA_FRAMES = ("Stream.next_start ", "GeneratedBars.")
FRAME = re.compile(r"^(?P<fn>.+?) \((?P<file>[^:]+):\d+\)$")


INTERPRETED = {**os.environ, "MT_PURE_PYTHON": "1"}  # what py-spy can see into


def plain_run(bars: int) -> tuple[float, int, int]:
    """(seconds, bars, orders) of ``bench/backtest.py`` run as it is, interpreted."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "backtest.py"), "--bars", str(bars)],
        capture_output=True,
        text=True,
        check=True,
        env=INTERPRETED,
    ).stdout
    seconds = float(re.search(r"time:\s+([\d.]+) s", out).group(1))  # type: ignore[union-attr]
    n = int(re.search(r"bars:\s+([\d,]+)", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    fills = int(re.search(r"fills:\s+([\d,]+)", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    return seconds, n, fills


def sampled(bars: int, rate: int) -> list[tuple[list[str], int]]:
    """py-spy's stacks of the same run, root first, with their sample counts."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "profile.raw"
        subprocess.run(
            [spy, "record", "--rate", str(rate), "--format", "raw", "-o", str(raw), "--",
             sys.executable, str(ROOT / "bench" / "backtest.py"), "--bars", str(bars)],
            capture_output=True,
            check=True,
            env=INTERPRETED,
        )  # fmt: skip
        out = []
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            out.append((stack.split(";"), int(n)))
    return out


def path_of(frames: list[str]) -> str:
    if any(f.startswith(ORDER_FRAMES) for f in frames):
        return "order"
    if any(f.startswith(DATA_FRAMES) for f in frames):
        return "data"
    return "bar"


def where(frame: str) -> str:
    """``Class.method (module)`` of a frame, its line dropped."""
    m = FRAME.match(frame)
    if m is None:
        return frame
    file = m["file"]
    short = file.split("site-packages/")[-1] if "site-packages/" in file else Path(file).name
    return f"{m['fn']} ({short})"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=1000, help="py-spy's samples per second")
    ap.add_argument("--top", type=int, default=15, help="functions shown per path")
    args = ap.parse_args()
    if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
        sys.exit("py-spy is not installed (.venv/bin/pip install py-spy)")
    seconds, bars, orders = plain_run(args.bars)
    stacks = sampled(args.bars, args.rate)
    paths: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for frames, n in stacks:
        if not any(f.startswith("Backtest.run ") for f in frames):
            continue  # imports, set-up, the bench's numpy check
        total += n
        paths[path_of(frames)][where(frames[-1])] += n
    if not total:
        sys.exit("no sample inside Backtest.run")
    per_bar = seconds / bars * 1e6
    print("build:     interpreted (MT_PURE_PYTHON=1: py-spy sees Python frames only)")
    print(f"plain run: {bars:,} bars, {orders:,} orders in {seconds:.2f} s: "
          f"{bars / seconds:,.0f} bars/s, {per_bar:.2f} us per bar in all")  # fmt: skip
    print(f"profile:   {total:,} samples inside Backtest.run at {args.rate}/s\n")
    for path, per, n in (("bar", "bar", bars), ("order", "order", orders), ("data", "bar", bars)):
        counts = paths.get(path, collections.Counter())
        share = sum(counts.values()) / total
        us = share * seconds / max(n, 1) * 1e6
        print(f"{path} path: {share:5.1%} of the run, {us:.2f} us per {per}")
        for fn, k in counts.most_common(args.top):
            print(f"  {k / total * seconds / max(n, 1) * 1e6:7.2f}  {fn}")
        rest = sum(counts.values()) - sum(k for _, k in counts.most_common(args.top))
        if rest:
            print(f"  {rest / total * seconds / max(n, 1) * 1e6:7.2f}  (the rest)")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
