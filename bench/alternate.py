#!/usr/bin/env python3
"""One bench run on two commits, alternated in one sitting, with the paired differences.

    .venv/bin/python bench/alternate.py --base 0000990 --pairs 8 -- \\
        bench/latency.py --every 100 --seconds 20 --no-baseline
    .venv/bin/python bench/alternate.py --base 0000990 --pairs 6 --higher-is-better \\
        --figure '^bars/s:\\s+([\\d,.]+)' -- bench/backtest.py --bars 300000

"Not slower than the commit before, alternated in one sitting" (issue 52) is a question
this VM answers only by pairs: its fast and slow spells move the latency bench's p50 by
300 µs, ten times the differences asked about. The base is checked out in a temporary
git worktree (removed at the end) and the command run in it and in this checkout, with
this checkout's interpreter, in ABBA order (the base first in odd pairs, this checkout
first in even ones), so a drift during the sitting or a first-run penalty falls on both
sides alike. Printed: each pair's figures, this checkout worse in k of n, the median
difference (and in per cent of the base's median), and the two-sided sign test's p-value
(how often k or more of n, or as few, would come from two equal builds).

The figure is the first match of ``--figure`` (a regular expression whose first group is
a number; default the latency bench's ``p50`` line) in the command's output; a run
without it, or one that exits non-zero, stops the sitting with its output's tail. The
base runs the build its own tree gives: without ``--compile`` a tree with compiled
modules but no build runs them interpreted (``MT_PURE_PYTHON``'s fallback), so pass
``--compile`` when the base has them.
This checkout runs as it is, uncommitted changes included (said in the header).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LATENCY_P50 = r"^\s+p50\s+([\d,.]+) us"


@dataclass(frozen=True)
class Pair:
    base: float
    head: float

    def worse(self, higher_is_better: bool) -> float:
        """How much worse this checkout's figure is than the base's (negative: better)."""
        return self.base - self.head if higher_is_better else self.head - self.base


def order(pairs: int) -> list[tuple[int, str]]:
    """ABBA: (pair, side) in the order they run; the base first in odd pairs."""
    out: list[tuple[int, str]] = []
    for i in range(1, pairs + 1):
        sides = ("base", "head") if i % 2 else ("head", "base")
        out += [(i, s) for s in sides]
    return out


def figure(output: str, pattern: str) -> float | None:
    """The first group of the first match of ``pattern`` in ``output`` as a number."""
    got = re.search(pattern, output, re.M)
    return float(got.group(1).replace(",", "")) if got else None


def sign_test(worse: int, n: int) -> float:
    """Two-sided exact sign test: the chance of a split at least this uneven from a fair
    coin (ties are left out of ``n`` by the caller)."""
    if n == 0:
        return 1.0
    k = max(worse, n - worse)
    tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n
    return min(1.0, 2 * tail)


def summary(pairs: list[Pair], higher_is_better: bool) -> list[str]:
    diffs = [p.worse(higher_is_better) for p in pairs]
    decided = [d for d in diffs if d != 0]
    worse = sum(1 for d in decided if d > 0)
    base_median = statistics.median(p.base for p in pairs)
    med = statistics.median(diffs)
    return [
        f"this checkout worse in {worse} of {len(pairs)} pairs"
        + (f" ({len(pairs) - len(decided)} equal)" if len(decided) < len(pairs) else ""),
        "differences, sorted (positive: worse): " + ", ".join(f"{d:+.1f}" for d in sorted(diffs)),
        f"median difference {med:+.1f} ({100 * med / base_median:+.1f} % of the base's "
        f"median {base_median:.1f})",
        f"sign test, two-sided: p = {sign_test(worse, len(decided)):.3f}",
    ]


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def run(tree: Path, command: list[str], pattern: str) -> float:
    done = subprocess.run([sys.executable, *command], cwd=tree, capture_output=True, text=True)
    got = figure(done.stdout, pattern)
    if got is None or done.returncode != 0:  # a bench that failed after its figure: not one
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        why = "failed" if got is not None else f"no figure matching {pattern!r}"
        sys.exit(f"{why} in {tree}'s run (exit {done.returncode}):\n"
                 + "\n".join(tail))  # fmt: skip
    return got


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--base", required=True, help="the commit to compare against")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--figure", default=LATENCY_P50, help="regex, first group the figure")
    ap.add_argument("--higher-is-better", action="store_true", help="e.g. bars/s")
    ap.add_argument("--compile", action="store_true", help="build the base's compiled modules")
    ap.add_argument("command", nargs="+", help="the bench and its arguments, after --")
    args = ap.parse_args()
    base_rev = git("rev-parse", "--short", args.base)
    head_rev = git("rev-parse", "--short", "HEAD")
    dirty = (
        " with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    print(f"{' '.join(args.command)}: base {base_rev} against this checkout ({head_rev}{dirty}), "
          f"{args.pairs} pairs in ABBA order")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mt-alternate-") as tmp:
        tree = Path(tmp) / "base"
        git("worktree", "add", "--detach", str(tree), base_rev)
        try:
            if args.compile and (tree / "mytrading" / "compiled.py").exists():
                subprocess.run([sys.executable, "main.py", "compile"], cwd=tree, check=True)
            figures: dict[tuple[int, str], float] = {}
            for i, side in order(args.pairs):
                figures[i, side] = run(tree if side == "base" else ROOT, args.command, args.figure)
                print(f"  pair {i} {side:4} {figures[i, side]:12,.1f}", flush=True)
        finally:
            git("worktree", "remove", "--force", str(tree))
    pairs = [Pair(figures[i, "base"], figures[i, "head"]) for i in range(1, args.pairs + 1)]
    for line in summary(pairs, args.higher_is_better):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
