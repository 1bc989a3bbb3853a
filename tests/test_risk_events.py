"""The risk-event store: events reach DuckDB in order, readers can read while risk runs,
and a file held by another process is a counted, logged failure, never a stall."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from mytrading import wire
from mytrading.refdata import IST
from mytrading.risk.events import EventStore, read_events


def ev(i: int, oids: list[str]) -> wire.RiskEvent:
    return wire.RiskEvent(strategy="s", kind="rejected", rule=f"r{i}", reason="why", order_ids=oids)


def test_events_are_stored_and_readable_while_the_store_is_open(tmp_path: Path) -> None:
    errors: list[str] = []
    store = EventStore(tmp_path / "risk.duckdb", errors.append)
    for i in range(3):
        store.add(ev(i, ["a", "b"] if i else []), time.time_ns(), datetime.now(IST))
    deadline = time.monotonic() + 5
    while store.stored < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = read_events(tmp_path / "risk.duckdb")  # another connection, store still open
    assert [r[3] for r in rows] == ["r2", "r1", "r0"] and rows[0][8] == ["a", "b"]
    assert rows[2][8] == [] and not errors
    store.close()


def test_a_file_held_elsewhere_is_a_counted_failure(tmp_path: Path) -> None:
    path = tmp_path / "risk.duckdb"
    errors: list[str] = []
    store = EventStore(path, errors.append)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
            "time.sleep(4)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        store.add(ev(0, []), time.time_ns(), datetime.now(IST))
        assert time.monotonic() - t0 < 0.05  # the caller never waits for the disk
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert errors and "1 risk events not stored" in errors[0]
    finally:
        holder.kill()
        holder.wait()
    store.add(ev(1, []), time.time_ns(), datetime.now(IST))  # and it recovers
    store.close()
    assert [r[3] for r in read_events(path)] == ["r1"]
