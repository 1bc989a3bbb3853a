"""A daemon's start reads no library it does not use: each start is paid by every
process of the stack, every restart, and every process test. pandas (0.3 s of CPU) and
numba (0.3 s) are loaded only by the daemons that need them (the engine's strategies, the
simulator), by risk only for a Greek cap (``risk/daemon.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mytrading.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration  # a Python process of its own (2-3 s)

LEAN = ("router", "risk", "reconciler", "feed", "signals", "monitor")
HEAVY = ("numba", "pandas", "talib")

# one process: each daemon's module in turn, and the heavy libraries loaded by then (the
# first daemon that brings one in is the one named); the engine last, as the control
_PROBE = """
import importlib, json, sys
importlib.import_module("mytrading.process.shell")
heavy = sys.argv[1].split(",")
out = {}
for daemon in sys.argv[2:]:
    importlib.import_module(f"mytrading.{daemon}.daemon")
    out[daemon] = sorted(m for m in heavy if m in sys.modules)
print(json.dumps(out))
"""


def test_the_lean_daemons_load_no_heavy_library() -> None:
    got = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HEAVY), *LEAN, "engine"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    loaded = json.loads(got.stdout)
    assert {d: loaded[d] for d in LEAN} == {d: [] for d in LEAN}
    assert "pandas" in loaded["engine"]  # the probe sees one where it is loaded
