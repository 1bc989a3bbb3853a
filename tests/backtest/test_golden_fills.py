"""Every example strategy's backtest fills exactly as the release before it did (issue 36:
the backtest's shape may change for speed, its decisions may not). Each example runs on
the same seeded generated market over the same fortnight with the shipped configuration;
its orders and fills (time, instrument, side, size, price) and the run's charges are
compared with ``golden_fills.json``, written by the release whose behaviour is the
reference (written at 0e6e76c and checked equal, on the configuration of the time, to
the engine of c090585). A change that moves any of them is a change of what strategies
see or get, never of speed: it must be explained and the file rewritten on purpose:

    .venv/bin/python -m tests.backtest.test_golden_fills --write

The examples run in the suite's own build (compiled where it is current) and, in a child
process, in the other (issue 54): both must give the reference's fills.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mytrading.backtest.loop import Backtest
from mytrading.backtest.session import Request, prepare
from mytrading.engine.loader import discover
from mytrading.settings import PROJECT_ROOT, load_settings
from tests.builds import other_build

GOLDEN = Path(__file__).with_name("golden_fills.json")
# every example the generated market can feed (it makes index, futures and option bars:
# the momentum example trades cash stocks, which only recorded or downloaded data have)
EXAMPLES = tuple(sorted(set(discover(PROJECT_ROOT / "strategies")) - {"equity_momentum"}))
START, END = date(2026, 10, 5), date(2026, 10, 16)  # two weeks, a weekly expiry in each


def run_example(name: str) -> dict[str, Any]:
    """One example's run: counts, the first fills in full and a digest of every fill."""
    s = load_settings()
    p = prepare(s, Request([name], START, END, capital=10_000_000.0, seed=42))
    bt = Backtest(p.spec, p.refdata, p.risk, p.source)
    res = bt.run()
    fills = [
        (f["time"], f["symbol"], f["action"], f["quantity"], f["price"], round(f["charges"], 6))
        for f in res.fills
    ]
    orders = [(o["time"], o["symbol"], o["action"], o["quantity"], o["status"])
              for o in res.orders.values()]  # fmt: skip
    digest = hashlib.sha256(json.dumps([fills, orders]).encode()).hexdigest()
    return {
        "orders": len(orders),
        "fills": len(fills),
        "charges": round(res.charges().total, 4),
        "first_fills": fills[:5],
        "digest": digest,
    }


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_example_fills_as_the_reference_release_did(name: str, tmp_env: dict[str, str]) -> None:
    want = json.loads(GOLDEN.read_text())
    assert name in want, f"{name} has no reference: write the file (see the docstring)"
    got = run_example(name)
    assert got["orders"] > 0, f"{name} did not trade in the window: nothing is compared"
    assert json.loads(json.dumps(got)) == want[name]


def test_the_other_build_fills_as_the_reference_release_did(tmp_env: dict[str, str]) -> None:
    """Every example again in a child process of the build this one does not run."""
    which, env = other_build()
    got = subprocess.run(
        [sys.executable, "-m", "tests.backtest.test_golden_fills", "--print"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    said, out = got.stdout.strip().splitlines()[-2:]  # after whatever the strategies logged
    assert said.startswith(which), (said, which)  # the child ran the build it was asked to
    want = json.loads(GOLDEN.read_text())
    assert json.loads(out) == {name: want[name] for name in EXAMPLES}


if __name__ == "__main__" and sys.argv[1:] in (["--write"], ["--print"]):
    import tempfile

    from mytrading import compiled

    with tempfile.TemporaryDirectory() as tmp:  # the tests' isolation: no user state
        for var in ("MT_STATE_DIR", "MT_LOG_DIR", "MT_INSTRUMENTS_DB", "MT_BACKTEST_DB"):
            os.environ[var] = str(Path(tmp) / var.lower())
        os.environ["MT_INSTRUMENTS_DB"] = str(Path(tmp) / "instruments.duckdb")
        out = {name: run_example(name) for name in EXAMPLES}
    if sys.argv[1:] == ["--print"]:  # the build's name, then the fills of every example
        print(compiled.build())
        print(json.dumps(out))
    else:
        GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}: " + ", ".join(f"{k} {v['fills']} fills" for k, v in out.items()))
