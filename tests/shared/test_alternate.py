"""bench/alternate.py: the ABBA order, the figure read from a bench's output, the sign
test, and a sitting end to end (the base in a temporary worktree, removed after)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from mytrading.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "bench" / "alternate.py"


def alternate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alternate", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass looks its module up
    spec.loader.exec_module(mod)
    return mod


def test_runs_go_in_abba_order() -> None:
    assert alternate().order(3) == [
        (1, "base"), (1, "head"), (2, "head"), (2, "base"), (3, "base"), (3, "head"),
    ]  # fmt: skip


def test_the_latency_benchs_p50_is_the_default_figure() -> None:
    mod = alternate()
    out = (
        "tick-to-order latency, feed -> engine -> risk -> router (ipc, 2 cores, broker sim)\n"
        "  p50      1,212.9 us\n  p99      2276.8 us\n"
        "  engine  own figure  p50   150.3 us  p99   662.1 us\n"
    )
    assert mod.figure(out, mod.LATENCY_P50) == 1212.9
    assert mod.figure("bars/s:    114,637\n", r"^bars/s:\s+([\d,.]+)") == 114637.0
    assert mod.figure("nothing here", mod.LATENCY_P50) is None


def test_sign_test_and_summary() -> None:
    mod = alternate()
    assert mod.sign_test(7, 8) == pytest.approx(2 * 9 / 256)
    assert mod.sign_test(4, 8) == 1.0
    assert mod.sign_test(0, 0) == 1.0
    pairs = [mod.Pair(base=100.0, head=h) for h in (110.0, 120.0, 90.0, 100.0)]
    lines = mod.summary(pairs, higher_is_better=False)
    assert lines[0] == "this checkout worse in 2 of 4 pairs (1 equal)"
    assert "median difference +5.0 (+5.0 %" in lines[2]
    # bars/s: a lower figure is the worse one
    assert (
        mod.summary(pairs, higher_is_better=True)[0]
        == "this checkout worse in 1 of 4 pairs (1 equal)"
    )


def test_a_sitting_runs_each_side_in_its_own_tree() -> None:
    # the "bench" says which tree it ran in: 2.0 in this checkout, 1.0 in the base's worktree
    root = repr(str(PROJECT_ROOT))
    probe = (
        "import pathlib; here = pathlib.Path.cwd().resolve();"
        f"print('  p50  ' + ('2.0' if here == pathlib.Path({root}) else '1.0') + ' us')"
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--base", "HEAD", "--pairs", "2", "--", "-c", probe],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    runs = [ln.split()[1:] for ln in lines if ln.startswith("  pair ")]
    assert runs == [["1", "base", "1.0"], ["1", "head", "2.0"],
                    ["2", "head", "2.0"], ["2", "base", "1.0"]]  # fmt: skip
    assert "this checkout worse in 2 of 2 pairs" in done.stdout
    assert "median difference +1.0 (+100.0 %" in done.stdout
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True).stdout  # fmt: skip
    assert "mt-alternate-" not in worktrees


def test_a_run_that_fails_after_its_figure_stops_the_sitting() -> None:
    probe = "import sys; print('  p50  2.0 us'); sys.exit('fills differ from numpy')"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--base", "HEAD", "--pairs", "1", "--", "-c", probe],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "failed in" in done.stderr and "fills differ from numpy" in done.stderr
    assert "worse in" not in done.stdout  # no summary of a sitting that did not finish
