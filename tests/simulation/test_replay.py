"""A seed is its day: run twice it gives the same trace, message for message, call for call
and fault for fault (the digest of the trace), in this process and through the command
that replays it. A failure found by a batch is therefore a failure anyone can replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mytrading.domain.refdata import RefData
from mytrading.settings import PROJECT_ROOT
from mytrading.simulation.run import run_seed
from mytrading.simulation.stack import Options

pytestmark = pytest.mark.integration  # a trading day of the whole stack, twice


def test_the_same_seed_twice_is_the_same_day(refdata: RefData, tmp_path: Path) -> None:
    first = run_seed(7, tmp_path / "a", refdata, Options(trace_full=True))
    again = run_seed(7, tmp_path / "b", refdata, Options(trace_full=True))
    assert first.orders >= 20 and sum(first.faults.values()) >= 10  # a day worth replaying
    assert first.trace == again.trace and first.digest == again.digest
    other = run_seed(8, tmp_path / "c", refdata)
    assert other.digest != first.digest  # the digest is of the day, not a constant


def test_replaying_a_seed_from_the_command_line_gives_its_digest(tmp_path: Path) -> None:
    """``main.py simulate --seed N`` twice, each in its own process (the command fixes
    string hashing for every run): the same digest and the same trace file."""
    runs = []
    for i in range(2):
        trace = tmp_path / f"seed-{i}.trace"
        out = subprocess.run(
            [sys.executable, "main.py", "simulate", "--seed", "11", "--json",
             "--trace", str(trace)],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        runs.append((json.loads(out.stdout), trace.read_text()))
    (a, trace_a), (b, trace_b) = runs
    assert a["digest"] == b["digest"] and trace_a == trace_b
    assert a["violations"] == [] and a["orders"] >= 20
    lines = trace_a.splitlines()
    # every kind of line a replay is read for: messages, broker calls, faults, daemons
    kinds = {line.split(" ", 2)[1] for line in lines if " " in line}
    assert {"pub", "push", "call", "fault", "start", "kill"} <= kinds, kinds
