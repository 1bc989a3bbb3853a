"""Backtest runs in DuckDB: one row per run, its metrics, and every table it produced.

A run is written in one transaction, after its report files exist: a run that failed half
way leaves nothing behind, and a run that is listed is complete. The schema carries a
version (``meta``); a file from a newer version is refused rather than misread.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from mytrading.backtest.metrics import Metrics
from mytrading.domain.refdata import IST

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, created TIMESTAMPTZ, strategies VARCHAR, params VARCHAR,
    start DATE, "end" DATE, capital DOUBLE, data VARCHAR, fills VARCHAR, slippage INTEGER,
    bars BIGINT, seconds DOUBLE, report VARCHAR, notes VARCHAR, sweep VARCHAR
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR, strategy VARCHAR, name VARCHAR, value DOUBLE
);
CREATE TABLE IF NOT EXISTS orders (
    run_id VARCHAR, time TIMESTAMPTZ, strategy VARCHAR, order_id VARCHAR, exchange VARCHAR,
    symbol VARCHAR, action VARCHAR, quantity BIGINT, status VARCHAR, filled BIGINT,
    avg_price DOUBLE, reason VARCHAR, op VARCHAR, pricetype VARCHAR, price DOUBLE,
    "trigger" DOUBLE
);
CREATE TABLE IF NOT EXISTS fills (
    run_id VARCHAR, time TIMESTAMPTZ, strategy VARCHAR, order_id VARCHAR, exchange VARCHAR,
    symbol VARCHAR, product VARCHAR, action VARCHAR, quantity BIGINT, price DOUBLE,
    charges DOUBLE, brokerage DOUBLE, stt DOUBLE, exchange_fees DOUBLE, sebi DOUBLE,
    stamp DOUBLE, gst DOUBLE
);
CREATE TABLE IF NOT EXISTS positions (
    run_id VARCHAR, time TIMESTAMPTZ, strategy VARCHAR, symbol VARCHAR, quantity BIGINT,
    avg_price DOUBLE, realized DOUBLE
);
CREATE TABLE IF NOT EXISTS trades (
    run_id VARCHAR, strategy VARCHAR, exchange VARCHAR, symbol VARCHAR, side VARCHAR,
    quantity BIGINT, entry_time TIMESTAMPTZ, entry_price DOUBLE, exit_time TIMESTAMPTZ,
    exit_price DOUBLE, gross_pnl DOUBLE, charges DOUBLE, net_pnl DOUBLE
);
CREATE TABLE IF NOT EXISTS events (
    run_id VARCHAR, time TIMESTAMPTZ, strategy VARCHAR, kind VARCHAR, rule VARCHAR,
    reason VARCHAR, action VARCHAR
);
CREATE TABLE IF NOT EXISTS equity (
    run_id VARCHAR, time TIMESTAMPTZ, equity DOUBLE, drawdown DOUBLE
);
"""
LOCK_WAIT_S = 60.0  # a run's results wait this long for another run's write to finish
TABLES = ("orders", "fills", "positions", "trades", "events", "equity")


class StoreError(RuntimeError):
    """No such run, a locked or unreadable file: said plainly, the command exits."""


@dataclass
class RunRecord:
    run_id: str
    strategies: list[str]
    params: dict[str, dict[str, Any]]
    start: date
    end: date
    capital: float
    data: str
    fills: str
    slippage: int
    bars: int
    seconds: float
    report: str
    notes: list[str]
    sweep: str = ""


def new_run_id(now: datetime) -> str:
    return f"{now.astimezone(IST):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if read_only and not path.exists():
        raise StoreError(f"no backtest runs yet ({path} does not exist)")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:  # another run writing holds the file for a moment: wait for it
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StoreError(f"{path}: {exc}") from None
            if time.monotonic() > deadline:
                raise StoreError(f"{path} is locked by another process") from None
            time.sleep(0.2)
    con.execute("SET TimeZone = 'Asia/Kolkata'")
    if not read_only:
        con.execute(SCHEMA)
        got = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if got is None:
            con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        elif int(got[0]) > SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {got[0]} is newer than this program's")
    return con


def save(
    path: Path,
    run: RunRecord,
    metrics: dict[str, Metrics],
    tables: dict[str, pd.DataFrame],
    keep: int | None = None,
) -> None:
    """Write a complete run in one transaction. ``metrics``: by strategy, ``*`` the total.
    ``keep``: retention (``MT_BACKTEST_KEEP_RUNS``): older runs beyond the newest ``keep``
    are deleted with their report directories."""
    con = connect(path)
    try:
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO runs VALUES (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.run_id,
                ",".join(run.strategies),
                json.dumps(run.params, default=str),
                run.start,
                run.end,
                run.capital,
                run.data,
                run.fills,
                run.slippage,
                run.bars,
                run.seconds,
                run.report,
                "\n".join(run.notes),
                run.sweep,
            ],
        )
        rows = [
            (run.run_id, strategy, name, _num(value))
            for strategy, m in metrics.items()
            for name, value in m.as_dict().items()
        ]
        con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows)
        for name in TABLES:
            df = tables.get(name)
            if df is None or df.empty:
                continue
            df = df.assign(run_id=run.run_id)
            con.register("frame", df)
            cols = [c for c in _columns(con, name) if c in df.columns]
            names = ", ".join(f'"{c}"' for c in cols)
            con.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM frame")
            con.unregister("frame")
        con.execute("COMMIT")
        if keep is not None:
            _prune_runs(con, keep)
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def _prune_runs(con: duckdb.DuckDBPyConnection, keep: int) -> None:
    old = con.execute(
        "SELECT run_id, report FROM runs ORDER BY created DESC, run_id DESC OFFSET ?", [keep]
    ).fetchall()
    if not old:
        return
    ids = [r[0] for r in old]
    con.execute("BEGIN")
    for name in ("runs", "metrics", *TABLES):
        con.execute(f"DELETE FROM {name} WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [ids])
    con.execute("COMMIT")
    for run_id, report in old:
        d = Path(report).parent if report else None
        if d is not None and d.name == run_id:
            shutil.rmtree(d, ignore_errors=True)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _num(v: Any) -> float | None:
    if hasattr(v, "total_seconds"):
        v = v.total_seconds() / 86_400.0  # durations are stored in days
    v = float(v)
    return None if math.isnan(v) else v


def runs(path: Path, limit: int = 50) -> pd.DataFrame:
    con = connect(path, read_only=True)
    try:
        return con.execute(
            """
            SELECT r.run_id, r.created, r.strategies, r.start, r."end", r.bars, r.sweep,
                max(CASE WHEN m.name = 'net_pnl' THEN m.value END) AS net_pnl,
                max(CASE WHEN m.name = 'total_return' THEN m.value END) AS total_return,
                max(CASE WHEN m.name = 'sharpe' THEN m.value END) AS sharpe,
                max(CASE WHEN m.name = 'max_drawdown' THEN m.value END) AS max_drawdown,
                max(CASE WHEN m.name = 'trades' THEN m.value END) AS trades
            FROM runs r LEFT JOIN metrics m ON m.run_id = r.run_id AND m.strategy = '*'
            GROUP BY ALL ORDER BY r.created DESC LIMIT ?
            """,
            [limit],
        ).df()
    finally:
        con.close()


def run(path: Path, run_id: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """(the run's row, its metrics: one column per strategy, ``*`` the total)."""
    con = connect(path, read_only=True)
    try:
        rows = con.execute(
            "SELECT * FROM runs WHERE run_id = ? OR run_id LIKE ? ORDER BY created DESC",
            [run_id, run_id + "%"],
        ).df()
        if rows.empty:
            raise StoreError(f"no backtest run {run_id!r} (see: main.py backtest list)")
        if len(rows) > 1 and run_id not in set(rows["run_id"]):
            raise StoreError(f"{run_id!r} names {len(rows)} runs: give more of the id")
        row = rows.iloc[0].to_dict()
        m = con.execute(
            "SELECT strategy, name, value FROM metrics WHERE run_id = ?", [row["run_id"]]
        ).df()
    finally:
        con.close()
    table = m.pivot(index="name", columns="strategy", values="value") if not m.empty else m
    return row, table


def table(path: Path, run_id: str, name: str) -> pd.DataFrame:
    if name not in TABLES:
        raise StoreError(f"no table {name!r}; have {TABLES}")
    con = connect(path, read_only=True)
    try:
        return con.execute(f"SELECT * FROM {name} WHERE run_id = ?", [run_id]).df()
    finally:
        con.close()


def export(path: Path, run_id: str, out: Path, fmt: str) -> list[Path]:
    """Every table of a run as CSV or Parquet files in ``out``."""
    if fmt not in ("csv", "parquet"):
        raise StoreError(f"format must be csv or parquet, not {fmt!r}")
    out.mkdir(parents=True, exist_ok=True)
    con = connect(path, read_only=True)
    written = []
    try:
        for name in (*TABLES, "metrics"):
            dest = out / f"{run_id}-{name}.{fmt}"
            opts = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER, DELIMITER ',')"
            con.execute(
                f"COPY (SELECT * FROM {name} WHERE run_id = '{_safe(run_id)}') TO '{dest}' {opts}"
            )
            written.append(dest)
    finally:
        con.close()
    return written


def _safe(run_id: str) -> str:
    if not all(c.isalnum() or c in "-_" for c in run_id):
        raise StoreError(f"bad run id {run_id!r}")
    return run_id
