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
sample inside ``Backtest.run``).

``--compiled`` profiles the compiled build instead, with ``perf record --call-graph dwarf``
(``perf`` is not a dependency either): the same paths, found by the compiled functions'
symbols (``CPyDef_venue___BacktestVenue___on_events``), each sample on the innermost
compiled function of its stack (its own time, with the CPython API it calls: attribute
reads, dicts, boxing), or, when interpreted Python runs below that function, on
``Python called from`` it: the crossings from compiled code into interpreted code, where a
call into an interpreted helper on every bar shows (``domain.quantity`` from
``target_position`` cost 4.5 % of the run).

    .venv/bin/python bench/backtest_profile.py --compiled [--bars 300000] [--top 15]
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
COMPILED = {k: v for k, v in os.environ.items() if k != "MT_PURE_PYTHON"}
# the compiled build's symbols: mypyc names a function CPyDef_<module>___<Class>___<name>
C_ORDER = (
    "CPyDef_context___StrategyContext___order",
    "CPyDef_loop___Backtest____drain",
    "CPyDef_fills___BarBroker___on_bar",
    "CPyDef_venue___BacktestVenue___on_events",
)
C_DATA = ("CPyDef_loop___Stream___next_start",)
C_RUN = "CPyDef_loop___Backtest___run"
C_EVAL = "_PyEval_EvalFrameDefault"


def plain_run(bars: int, env: dict[str, str] = INTERPRETED) -> tuple[float, int, int]:
    """(seconds, bars, orders) of ``bench/backtest.py`` run as it is (interpreted by
    default)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "backtest.py"), "--bars", str(bars)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    if env is COMPILED and "build:         compiled" not in out:
        sys.exit("the compiled build is not in use (python3 main.py compile first)")
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


def perf_sampled(bars: int, rate: int) -> list[tuple[list[str], int]]:
    """``perf``'s stacks of the compiled run (symbols, root first), one sample each."""
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "perf.data"
        subprocess.run(
            ["perf", "record", "-F", str(rate), "--call-graph", "dwarf,32768", "-o", str(data),
             "--", sys.executable, str(ROOT / "bench" / "backtest.py"), "--bars", str(bars)],
            capture_output=True,
            check=True,
            env=COMPILED,
        )  # fmt: skip
        text = subprocess.run(
            ["perf", "script", "-i", str(data), "-F", "ip,sym"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return [(stack, 1) for stack in perf_stacks(text)]


def perf_stacks(text: str) -> list[list[str]]:
    """``perf script -F ip,sym``'s samples (blank-line separated, leaf first, each line
    an address and a symbol) as lists of symbols, root first."""
    out: list[list[str]] = []
    for block in text.split("\n\n"):
        syms = [line.split(None, 1)[1] if " " in line.strip() else "?"
                for line in (raw.strip() for raw in block.splitlines()) if line]  # fmt: skip
        if syms:
            out.append(syms[::-1])
    return out


def c_path_of(frames: list[str]) -> str:
    if any(f in C_ORDER for f in frames):
        return "order"
    if any(f in C_DATA for f in frames):
        return "data"
    return "bar"


def c_where(frames: list[str]) -> str:
    """The innermost compiled function of a stack (root first), ``module.Class.name``, or
    ``Python called from`` it when interpreted code runs below it."""
    for i in range(len(frames) - 1, -1, -1):
        f = frames[i]
        if f.startswith(("CPyDef_", "CPyPy_")):
            name = ".".join(p for p in f.split("_", 1)[1].split("___") if p)
            return f"Python called from {name}" if C_EVAL in frames[i + 1 :] else name
    return frames[-1] if frames else "?"


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
    ap.add_argument("--compiled", action="store_true", help="the compiled build, with perf")
    args = ap.parse_args()
    if args.compiled:
        if shutil.which("perf") is None:
            sys.exit("perf is not installed (linux-tools / linux-perf)")
        seconds, bars, orders = plain_run(args.bars, COMPILED)
        stacks = perf_sampled(args.bars, args.rate)
    else:
        if shutil.which("py-spy") is None and not (Path(sys.executable).parent / "py-spy").exists():
            sys.exit("py-spy is not installed (.venv/bin/pip install py-spy)")
        seconds, bars, orders = plain_run(args.bars)
        stacks = sampled(args.bars, args.rate)
    paths: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for frames, n in stacks:
        if args.compiled:
            if C_RUN not in frames:
                continue  # imports, set-up, the bench's numpy check
            paths[c_path_of(frames)][c_where(frames)] += n
        else:
            if not any(f.startswith("Backtest.run ") for f in frames):
                continue
            paths[path_of(frames)][where(frames[-1])] += n
        total += n
    if not total:
        sys.exit("no sample inside Backtest.run")
    per_bar = seconds / bars * 1e6
    if args.compiled:
        print("build:     compiled (perf: each sample on its innermost compiled function)")
    else:
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
