"""A daemon's start reads no library it does not use: each start is paid by every
process of the stack, every restart, and every process test. pandas (0.3 s of CPU) and
numba (0.3 s) are loaded only when used (an engine's strategy that asks for them, the
simulator), by risk only for a Greek cap (``risk/daemon.py``); TA-Lib (which imports pandas)
at its first function, not with the engine (``indicators/talib_adapter.py``); rich by no
lean daemon (each hides it from structlog, ``process/prestart.py``: one that needed it
would fail here). Nor
does a lean daemon's first write load one: pandas in risk's events writer and the feed's
recorder put 60 MB into each at its first batch (``stores/bulk.py``), which a CI run saw as
risk's memory growing while a forger was refused (``tests/stack/test_two_hosts_process.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mytrading.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration  # a Python process of its own (2-3 s)

LEAN = ("router", "risk", "reconciler", "feed", "signals", "monitor")
HEAVY = ("numba", "pandas", "talib", "rich")

# a first batch through risk's events writer and the feed's recorder
_WRITERS = """
import tempfile, time
from datetime import datetime
from pathlib import Path
from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.risk.events import EventStore
from mytrading.stores.recording import Recorder
d = Path(tempfile.mkdtemp())
store = EventStore(d / "risk.duckdb", print)
store.add(wire.RiskEvent(strategy="s", kind="halt", rule="r", reason="t"), time.time_ns(),
          datetime.now(IST))
store.close()
rec = Recorder(d / "rec.duckdb", flush_s=60)
rec.add_tick(wire.Tick("NSE", "X", 1.0, 1.0, 1.0, 1, 1, 1, exch_ns=time.time_ns()))
rec.flush()
rec.close()
assert store.stored == 1 and rec.ticks_written == 1, (store.stored, rec.ticks_written)
"""

# one process: each daemon's module in turn, and the heavy libraries loaded by then (the
# first daemon that brings one in is the one named); "writers": a batch through risk's
# events writer and the feed's recorder; "talib": a TA-Lib function run, last, as the
# control
_PROBE = (
    f"WRITERS = {_WRITERS!r}\n"
    + """
import importlib, json, sys
from mytrading.process.prestart import lean
lean()  # as every daemon's first line does (rich hidden from structlog)
importlib.import_module("mytrading.process.shell")
heavy = sys.argv[1].split(",")
out = {}
for daemon in sys.argv[2:]:
    if daemon == "writers":
        exec(WRITERS)
    elif daemon == "talib":
        from mytrading.indicators.talib_adapter import talib_vector
        talib_vector("SMA", close=[1.0, 2.0, 3.0], timeperiod=2)
    else:
        importlib.import_module(f"mytrading.{daemon}.daemon")
    out[daemon] = sorted(m for m in heavy if sys.modules.get(m) is not None)
print(json.dumps(out))
"""
)


def test_the_lean_daemons_load_no_heavy_library() -> None:
    got = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(HEAVY), *LEAN, "engine", "writers", "talib"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    loaded = json.loads(got.stdout)
    started = (*LEAN, "engine", "writers")
    assert {d: loaded[d] for d in started} == {d: [] for d in started}
    assert {"pandas", "talib"} <= set(loaded["talib"])  # the probe sees them where loaded
