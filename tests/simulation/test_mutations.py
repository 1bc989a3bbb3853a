"""The simulator catches real bugs: each planted bug (``simulation/mutations.py``, one or
more per invariant) is caught, by the invariant it names, on the seed that first caught
it in the 200 seeds CI runs; and that seed holds without it, so the catch is the bug's.

``CAUGHT`` is the record: the first seed of ``main.py simulate --seeds 200 --mutation
NAME`` that broke an invariant. A change of the simulation (its days, its faults) moves
these seeds: find them again with

    .venv/bin/python -m tests.simulation.test_mutations --find
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mytrading.settings import PROJECT_ROOT
from mytrading.simulation.invariants import NAMES
from mytrading.simulation.mutations import MUTATIONS
from tests.conftest import interpreted_only

pytestmark = pytest.mark.integration  # a trading day of the whole stack per planted bug

BUDGET = 200  # the seeds CI runs (tests/simulation/test_batch.py)
CAUGHT: dict[str, int] = {
    "router_doubles_quantity": 1,
    "router_resends_on_timeout": 1,
    "journal_after_broker_call": 2,
    "engine_drops_hole_fills": 6,
    "router_forgets_fills_made_while_down": 1,
    "risk_approves_while_halted": 1,
    "risk_ignores_kill_switch": 3,
    "fill_price_from_rounded_average": 1,
    "late_tick_reopens_bar": 2,
    "bar_volume_from_first_tick": 1,
    "risk_books_at_the_rupee": 1,
    "unknown_never_absent": 2,
}

# run in a process of its own with the simulation's string hashing (as main.py simulate
# runs every seed): a seed's day is the same there as in CI's batch
_RUN = """
import json, sys
from pathlib import Path
from mytrading.domain.refdata import load_refdata
from mytrading.settings import PROJECT_ROOT
from mytrading.simulation.batch import workdir
from mytrading.simulation.mutations import planted
from mytrading.simulation.run import run_seed
from mytrading.simulation.stack import Options
refdata = load_refdata(PROJECT_ROOT / "config")
out = []
for seed, name in json.loads(sys.argv[1]):
    with planted(name):
        r = run_seed(seed, workdir(), refdata, Options(mutation=name))
    out.append([seed, name, sorted({v.invariant for v in r.violations})])
print(json.dumps(out))
"""


def run_pairs(pairs: list[tuple[int, str]]) -> list[tuple[int, str, list[str]]]:
    """(seed, mutation or "") -> the invariants broken, each seed in a fresh world."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    got = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(pairs)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-3000:]
    return [tuple(x) for x in json.loads(got.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


def test_every_invariant_has_a_planted_bug_and_every_bug_a_record() -> None:
    assert set(CAUGHT) == set(MUTATIONS)
    assert {m.breaks for m in MUTATIONS.values()} == set(NAMES)
    assert all(1 <= s <= BUDGET for s in CAUGHT.values())


@interpreted_only  # a planted bug patches the source's functions: none in a compiled module
def test_each_planted_bug_is_caught_by_its_invariant_and_only_with_it() -> None:
    pairs = [(seed, name) for name, seed in sorted(CAUGHT.items())]
    pairs += [(seed, "") for seed in sorted(set(CAUGHT.values()))]
    results = run_pairs(pairs)
    missed = []
    for seed, name, broken in results:
        if not name:
            assert broken == [], f"seed {seed} breaks {broken} with no bug planted"
        elif MUTATIONS[name].breaks not in broken:
            missed.append(f"{name} on seed {seed}: wants {MUTATIONS[name].breaks}, broke {broken}")
    assert not missed, "\n".join(missed)


def find(names: list[str]) -> None:
    """The first catching seed of each mutation, within the budget."""
    from mytrading.simulation.batch import run_seeds
    from mytrading.simulation.mutations import planted
    from mytrading.simulation.stack import Options

    for name in names:
        first = None
        with planted(name):
            for start in range(1, BUDGET + 1, 10):
                out, _ = run_seeds(list(range(start, start + 10)), os.cpu_count() or 1,
                                   Options(mutation=name))  # fmt: skip
                hits = [o for o in out if MUTATIONS[name].breaks in
                        {v.invariant for v in o.violations}]  # fmt: skip
                if hits:
                    first = hits[0].seed
                    break
        print(f'    "{name}": {first},', flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--find"]:
        raise SystemExit("usage: python -m tests.simulation.test_mutations --find [NAME ...]")
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "tests.simulation.test_mutations",
                                  *sys.argv[1:]])  # fmt: skip
    find(sys.argv[2:] or sorted(MUTATIONS))
