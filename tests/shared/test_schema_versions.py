"""Every store carries a schema version and migrates forward at open (``stores/schema.py``): a
store in the layout before versions (the previous release's: risk events without their
id column, no version table) opens, is migrated and keeps its rows; a store written by a
newer release is refused; the journal records its layout and refuses a newer one."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from mytrading.risk.events import SCHEMA as RISK_SCHEMA
from mytrading.router.journal import VERSION, Journal, Record, frame, read
from mytrading.router.recovery import carried
from mytrading.stores import recording
from mytrading.stores.schema import SchemaError, ensure, version_of


def test_previous_release_risk_events_are_migrated_with_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "risk.duckdb"
    con = duckdb.connect(str(path))
    # the previous release's table: risk_events as SCHEMA makes it, without the id
    con.execute(RISK_SCHEMA)
    con.execute("ALTER TABLE risk_events DROP COLUMN IF EXISTS detail")  # version 3's
    con.execute("ALTER TABLE risk_events DROP COLUMN IF EXISTS id")  # version 2's
    cols = [r[0] for r in con.execute("DESCRIBE risk_events").fetchall()]
    assert "id" not in cols and "detail" not in cols
    n = len(cols)
    con.execute(f"INSERT INTO risk_events VALUES ({', '.join(['NULL'] * n)})")
    con.close()
    assert version_of(path) == {}  # no version kept then
    con = duckdb.connect(str(path))
    assert ensure(con, "risk events") == 0
    cols = [r[0] for r in con.execute("DESCRIBE risk_events").fetchall()]
    assert "id" in cols and "detail" in cols
    assert con.execute("SELECT count(*) FROM risk_events").fetchone()[0] == 1  # type: ignore[index]
    assert ensure(con, "risk events") == 3  # once only
    con.close()
    assert version_of(path) == {"risk events": 3}


def test_a_store_opened_again_takes_a_frame_at_once(tmp_path: Path) -> None:
    """The version check reads its result to the end: DuckDB 2 refuses to ``register`` a
    frame on a connection with a result read short of its end ("unfinished result")."""
    import pandas as pd

    path = tmp_path / "md.duckdb"
    recording.connect(path).close()
    con = recording.connect(path)  # the version row is there now
    con.register("frame", pd.DataFrame({"a": [1]}))
    assert con.execute("SELECT a FROM frame").fetchall() == [(1,)]
    con.close()


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "md.duckdb"
    recording.connect(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE mt_schema SET version = 99 WHERE store = 'recordings'")
    con.close()
    with pytest.raises(SchemaError, match="newer release"):
        recording.connect(path)


def test_the_journal_records_its_layout_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    # the previous release's day record had no version: read as layout 1, rewritten as this
    path.write_bytes(frame(Record("day", 0, day="2026-12-18")))
    assert b"version" not in path.read_bytes() and read(path).version == 1
    j = Journal(path)
    j.open("2026-12-18", carried)
    j.close()
    assert b"version" in path.read_bytes() and read(path).version == VERSION == 1
    path.write_bytes(frame(Record("day", 0, day="2026-12-18", version=VERSION + 1)))
    with pytest.raises(SchemaError, match="newer release"):
        Journal(path).open("2026-12-18", carried)
