"""CI's seeds: ``main.py simulate --seeds 200``, the whole stack through 200 seeded trading
days of faults, every invariant holding on every one of them. A failing seed is named in
the output with the invariant it broke; ``main.py simulate --seed N`` replays it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mytrading.settings import PROJECT_ROOT
from mytrading.simulation.faults import KINDS
from mytrading.simulation.invariants import NAMES

pytestmark = pytest.mark.integration

SEEDS = 200


def test_two_hundred_seeded_days_hold_every_invariant() -> None:
    got = subprocess.run(
        [sys.executable, "main.py", "simulate", "--seeds", str(SEEDS), "--json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    lines = got.stdout.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    r = json.loads("\n".join(lines[start:]))
    failing = "\n".join(lines[:start])  # one line per broken invariant, as they happened
    assert got.returncode == 0 and r["failed"] == [], f"{r['failed']}\n{failing}"
    assert r["seeds"] == r["days"] == SEEDS
    # every seed a day worth the name, and every fault the product claims to survive
    assert r["fewest_orders"] >= 20 and r["fewest_faults"] >= 10, r
    # (a broker's clock off ours is drawn apart from the others: "clock_offset")
    kinds = {*KINDS, "clock_offset"}
    assert set(r["faults"]) == kinds and min(r["faults"].values()) > 0, r["faults"]
    # every invariant checked, many times
    assert set(r["checks"]) == set(NAMES) and min(r["checks"].values()) >= SEEDS, r["checks"]
