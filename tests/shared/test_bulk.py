"""Rows into DuckDB in one statement (``stores/bulk.py``): every value as it went in."""

from __future__ import annotations

import duckdb
import pytest

from mytrading.stores.bulk import NS, columns_of, rows_select

COLS = [("ts", NS), ("symbol", "VARCHAR"), ("ltp", "DOUBLE"), ("qty", "BIGINT")]


def test_a_batch_goes_in_as_its_rows_with_times_floored_to_the_microsecond() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ts TIMESTAMPTZ, symbol VARCHAR, ltp DOUBLE, qty BIGINT)")
    rows = [
        (1_780_000_000_123_456_789, "NIFTY-I", 24_810.05, 75),
        (1_780_000_001_000_000_999, "", None, 0),  # "", a missing price
        (1_780_000_002_000_000_000, None, 3, -150),  # an int where a float goes
    ]
    con.execute(f"INSERT INTO t {rows_select(COLS)}", columns_of(rows, len(COLS)))
    got = con.execute("SELECT epoch_ns(ts), symbol, ltp, qty FROM t ORDER BY ts").fetchall()
    assert got == [
        (1_780_000_000_123_456_000, "NIFTY-I", 24_810.05, 75),
        (1_780_000_001_000_000_000, "", None, 0),
        (1_780_000_002_000_000_000, None, 3.0, -150),
    ]


def test_an_empty_batch_inserts_nothing_and_a_short_row_is_refused() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ts TIMESTAMPTZ, symbol VARCHAR, ltp DOUBLE, qty BIGINT)")
    con.execute(f"INSERT INTO t {rows_select(COLS)}", columns_of([], len(COLS)))
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with pytest.raises(ValueError, match="a row of 3 values for 4 columns"):
        columns_of([(1, "X", 1.0, 1), (1, "X", 1.0)], len(COLS))
