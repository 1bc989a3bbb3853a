"""The risk-event store: events reach DuckDB in order, readers can read while risk runs,
and a file held by another process delays events in the outbox, never risk."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.risk.events import EventStore, outbox_path, read_events


def ev(i: int, oids: list[str]) -> wire.RiskEvent:
    return wire.RiskEvent(strategy="s", kind="rejected", rule=f"r{i}", reason="why",
                          order_ids=oids, intent_id=f"i{i}")  # fmt: skip


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
    assert [r[10] for r in rows] == ["i2", "i1", "i0"]  # a refusal's intent (the shadow's)
    store.close()


def test_a_reader_holding_the_file_delays_events_and_loses_none(tmp_path: Path) -> None:
    """A read-only session elsewhere (a notebook) holds the DuckDB file: risk's store
    starts anyway, events wait in the outbox (and are read from there), and reach DuckDB
    once the reader is gone, each once."""
    path = tmp_path / "risk.duckdb"
    first = EventStore(path, lambda _: None)
    first.add(ev(0, []), time.time_ns(), datetime.now(IST))
    first.close()  # the file exists now, as it does on a second day
    errors: list[str] = []
    held: list[str] = []
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}, read_only=True); "
            "print('held', flush=True); sys.stdin.readline()",
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = EventStore(path, errors.append, held.append)  # a start while it is held
        t0 = time.monotonic()
        for i in (1, 2):
            store.add(ev(i, ["x"]), time.time_ns(), datetime.now(IST))
        assert time.monotonic() - t0 < 0.05  # the caller never waits for the disk
        deadline = time.monotonic() + 5
        while not held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held and "cannot be written" in held[0] and store.pending == 2
        assert store.stored == 0 and not errors
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the reader goes away
        holder.wait(timeout=10)
    # read while they still wait: from the outbox
    assert [r[3] for r in read_events(path)][:2] == ["r2", "r1"]
    deadline = time.monotonic() + 10
    while store.stored < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.stored == 2 and store.pending == 0 and store.held == ""
    store.close()
    assert [r[3] for r in read_events(path)] == ["r2", "r1", "r0"]  # each once


def test_a_move_cut_short_inserts_nothing_twice(tmp_path: Path) -> None:
    """The outbox rows of a move whose delete never ran (a crash) are there again at the
    next start: the DuckDB insert leaves out the ids it has."""
    import sqlite3

    from mytrading.risk.events import outbox_path

    path = tmp_path / "risk.duckdb"
    store = EventStore(path, lambda _: None)
    store.add(ev(0, []), time.time_ns(), datetime.now(IST))
    store.close()
    assert store.stored == 1
    import duckdb

    con = duckdb.connect(str(path))
    (eid,) = con.execute("SELECT id FROM risk_events").fetchone()
    con.close()
    box = sqlite3.connect(outbox_path(path))
    box.execute(
        "INSERT INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (eid, time.time_ns(), time.time_ns(), "s", "rejected", "r0", 0, 0, "", "why", "", "", ""),
    )
    box.commit()
    box.close()
    again = EventStore(path, lambda _: None)
    again.add(ev(1, []), time.time_ns(), datetime.now(IST))
    again.close()
    assert [r[3] for r in read_events(path)] == ["r1", "r0"]


def test_a_market_days_events_are_read_alone_from_duckdb_and_the_outbox(tmp_path: Path) -> None:
    """``read_events(day=...)``: the shadow run reads one day of a year's events."""
    path = tmp_path / "risk.duckdb"
    store = EventStore(path, lambda _: None)
    friday = datetime(2026, 11, 20, 15, 29, tzinfo=IST)
    monday = datetime(2026, 11, 23, 9, 16, tzinfo=IST)
    store.add(ev(0, []), time.time_ns(), friday)
    store.add(ev(1, []), time.time_ns(), monday)
    store.close()  # both moved into DuckDB
    con = sqlite3.connect(outbox_path(path))  # and one of each day waiting in the outbox
    for i, when in ((2, friday), (3, monday)):
        ns = int(when.timestamp() * 1e9)
        con.execute("INSERT INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (time.time_ns() + i, time.time_ns(), ns, "s", "rejected", f"r{i}", 0.0,
                     0.0, "", "why", f"i{i}", "", ""))  # fmt: skip
    con.commit()
    con.close()
    assert sorted(r[3] for r in read_events(path, day=friday.date())) == ["r0", "r2"]
    assert sorted(r[10] for r in read_events(path)) == ["i0", "i1", "i2", "i3"]  # both stores
    assert sorted(r[3] for r in read_events(path, day=monday.date())) == ["r1", "r3"]
    assert sorted(r[3] for r in read_events(path)) == ["r0", "r1", "r2", "r3"]


def test_a_changes_detail_is_kept_and_an_earlier_releases_files_are_taken_up(
    tmp_path: Path,
) -> None:
    """A strategy change's ``detail`` (the parameters before and after) reaches DuckDB and
    is read back, from there and from the outbox; files an earlier release left (its
    DuckDB table and its outbox without the column, an event waiting in the outbox) are
    brought forward, the waiting event moved with an empty detail."""
    import duckdb

    from mytrading.risk.events import OUTBOX_SCHEMA, SCHEMA

    path = tmp_path / "risk.duckdb"
    con = duckdb.connect(str(path))  # version 2's table, recorded as such
    con.execute(SCHEMA)
    con.execute("ALTER TABLE risk_events DROP COLUMN detail")
    con.execute("CREATE TABLE mt_schema (store VARCHAR PRIMARY KEY, version INTEGER)")
    con.execute("INSERT INTO mt_schema VALUES ('risk events', 2)")
    con.close()
    box = sqlite3.connect(outbox_path(path))  # version 2's outbox, an event waiting in it
    box.execute(OUTBOX_SCHEMA.replace(",\n    detail TEXT", ""))
    assert "detail" not in {r[1] for r in box.execute("PRAGMA table_info(pending)")}
    box.execute("INSERT INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (1, time.time_ns(), time.time_ns(), "s", "rejected", "old", 0.0, 0.0, "",
                 "why", "", ""))  # fmt: skip
    box.commit()
    box.close()
    assert [(r[3], r[9]) for r in read_events(path)] == [("old", "")]  # read as it waits
    change = wire.RiskEvent(strategy="s", kind="control", rule="strategy", reason="lots=2",
                            action="params", detail='{"before": {"lots": 1}}')  # fmt: skip
    store = EventStore(path, lambda _: None)
    store.add(change, time.time_ns(), datetime.now(IST))
    store.close()
    assert store.stored == 2 and store.pending == 0
    rows = read_events(path)
    assert [(r[3], r[9]) for r in rows] == [("strategy", '{"before": {"lots": 1}}'), ("old", "")]
    box = sqlite3.connect(outbox_path(path))  # the outbox, now with the column, read too
    box.execute("INSERT INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (time.time_ns(), time.time_ns(), time.time_ns(), "s", "control", "waiting", 0.0,
                 0.0, "params", "", "", "", '{"after": {}}'))  # fmt: skip
    box.commit()
    box.close()
    newest = read_events(path)[0]
    assert (newest[3], newest[9]) == ("waiting", '{"after": {}}')
