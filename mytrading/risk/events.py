"""Risk events in DuckDB: every rejection, trigger, exit and state change, queryable later.

The risk daemon is the file's only writer. Volumes are small (events, not ticks), so each
event is inserted as it happens, on a connection opened for it: DuckDB lets one process
hold a file, and this way `main.py risk events` can read it while the stack runs. A failed
insert (the file held by a reader at that instant, a full disk) is logged and counted by
the caller; the event is still on the bus.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from mytrading import wire
from mytrading.refdata import IST

SCHEMA = """
CREATE TABLE IF NOT EXISTS risk_events (
    ts TIMESTAMPTZ,          -- wall time the event was published
    market_ts TIMESTAMPTZ,   -- market time (the simulated clock in the demo)
    strategy VARCHAR,
    kind VARCHAR,            -- rejected, exit, exit_confirmed, exit_retry, halt, state, ...
    rule VARCHAR,
    threshold DOUBLE,
    value DOUBLE,
    action VARCHAR,
    reason VARCHAR,
    intent_id VARCHAR,
    order_ids VARCHAR[]
)
"""


COLUMNS = [
    "ts",
    "market_ts",
    "strategy",
    "kind",
    "rule",
    "threshold",
    "value",
    "action",
    "reason",
    "intent_id",
    "order_ids",
]


class EventStore:
    """Events go to a writer thread, which inserts each batch on a connection it opens and
    closes again, so a reader can open the file between batches and the risk loop never
    waits for the disk (an open-insert-close costs ~20 ms here)."""

    def __init__(self, path: Path, on_error: Callable[[str], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.on_error = on_error
        self.stored = 0
        with self._connect() as con:
            con.execute(SCHEMA)
        self._q: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="risk-events", daemon=True)
        self._thread.start()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(self.path))
        con.execute("SET TimeZone = 'Asia/Kolkata'")
        con.execute("SET threads = 1")
        return con

    def add(self, ev: wire.RiskEvent, wall_ns: int, market: datetime) -> None:
        self._q.put(
            (
                datetime.fromtimestamp(wall_ns / 1e9, IST),
                market,
                ev.strategy,
                ev.kind,
                ev.rule,
                ev.threshold,
                ev.value,
                ev.action,
                ev.reason,
                ev.intent_id,
                ",".join(ev.order_ids),  # a list again in SQL (pandas cannot type [] columns)
            )
        )

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        import pandas as pd  # in the writer thread: 0.25 s off the risk daemon's start

        done = False
        while not done:
            rows = [self._q.get()]
            while True:
                try:
                    rows.append(self._q.get_nowait())
                except queue.Empty:
                    break
            done = None in rows
            rows = [r for r in rows if r is not None]
            if not rows:
                continue
            for attempt in range(3):  # a reader may hold the file for a moment
                try:
                    with self._connect() as con:
                        # One bulk insert from a frame: executemany goes row by row, and a
                        # flood of rejections (thousands a second) must not back up here.
                        batch = pd.DataFrame(rows, columns=COLUMNS)  # noqa: F841 (read by SQL)
                        con.execute(
                            "INSERT INTO risk_events SELECT * EXCLUDE (order_ids), "
                            "CASE WHEN order_ids = '' THEN []::VARCHAR[] "
                            "ELSE string_split(order_ids, ',') END FROM batch"
                        )
                    self.stored += len(rows)
                    break
                except duckdb.Error as exc:
                    if attempt == 2:
                        self.on_error(f"{len(rows)} risk events not stored: {exc}")
                    else:
                        time.sleep(0.2)


def read_events(path: Path, limit: int = 50) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'Asia/Kolkata'")
        return con.execute(
            "SELECT strftime(market_ts, '%Y-%m-%d %H:%M:%S'), strategy, kind, rule, threshold, "
            "value, action, reason, order_ids FROM risk_events ORDER BY ts DESC LIMIT ?",
            [limit],
        ).fetchall()
    finally:
        con.close()
