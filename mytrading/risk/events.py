"""Risk events in DuckDB: every rejection, trigger, exit and state change, queryable later.

No reader can stop risk. DuckDB lets one process at a time write a file, and any other
process holding it (a notebook's read-only session is enough) makes every open fail with
"Could not set lock": risk used to open the file in its set-up and crash-looped while a
reader held it. Now the risk loop only queues an event; a writer thread appends each
batch to an **outbox** (``<risk_db stem>.outbox.sqlite``, SQLite in WAL mode, which
readers never block), and moves what the outbox holds into ``risk.duckdb`` whenever it
can open the file, retrying every few seconds while it cannot. Each event has an id
(its wall time in ns, unique within the process), so a move cut by a crash between the
DuckDB insert and the outbox delete inserts nothing twice. ``main.py risk events`` reads
both files, so what waits in the outbox is shown too.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.stores.bulk import NS, columns_of, rows_select
from mytrading.stores.schema import ensure

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
    order_ids VARCHAR[],
    id BIGINT,              -- the event's id in the outbox (NULL: stored before outboxes)
    detail VARCHAR          -- a strategy change's parameters, JSON (``RiskEvent.detail``)
)
"""

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY,  -- the event's id: its wall time in ns, unique in the process
    ts_ns INTEGER, market_ns INTEGER, strategy TEXT, kind TEXT, rule TEXT,
    threshold REAL, value REAL, action TEXT, reason TEXT, intent_id TEXT, order_ids TEXT,
    detail TEXT
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
    "detail",
    "id",
]
# The outbox's columns as DuckDB types, for the one-statement insert of a batch.
_TYPES = [NS, NS, *["VARCHAR"] * 3, "DOUBLE", "DOUBLE", *["VARCHAR"] * 5, "BIGINT"]
BATCH_ROWS = rows_select(list(zip(COLUMNS, _TYPES, strict=True)))
RETRY_S = 3.0  # while the DuckDB file cannot be opened, a try this often
MOVE_BATCH = 5000


def outbox_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.outbox.sqlite")


class EventLog(Protocol):
    """Where risk keeps its events: ``EventStore`` (DuckDB, by a writer thread) in a
    process, a list in the simulation."""

    stored: int
    pending: int
    held: str

    def add(self, ev: wire.RiskEvent, wall_ns: int, market: datetime) -> None: ...

    def close(self) -> None: ...


class EventStore:
    """The risk loop calls ``add`` (a queue put); the writer thread does the rest."""

    def __init__(
        self,
        path: Path,
        on_error: Callable[[str], None],
        on_held: Callable[[str], None] | None = None,
        keep_days: float = 365.0,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_s = keep_days * 86400  # retention: events older than this are deleted
        self.pruned = 0
        self._next_prune = 0.0
        self.path = path
        self.outbox = outbox_path(path)
        self.on_error = on_error  # an event could not even reach the outbox
        self.on_held = on_held or (lambda _reason: None)  # the DuckDB file is held: said once
        self.stored = 0  # moved into DuckDB
        self.pending = 0  # in the outbox, waiting for the DuckDB file
        self.held = ""  # why the DuckDB file cannot be written now ("" when it can)
        self._last_id = 0
        self._q: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="risk-events", daemon=True)
        self._thread.start()

    def add(self, ev: wire.RiskEvent, wall_ns: int, market: datetime) -> None:
        self._last_id = eid = max(wall_ns, self._last_id + 1)
        self._q.put(
            (
                eid,
                wall_ns,
                int(market.timestamp() * 1e9),
                ev.strategy,
                ev.kind,
                ev.rule,
                ev.threshold,
                ev.value,
                ev.action,
                ev.reason,
                ev.intent_id,
                ",".join(ev.order_ids),
                ev.detail,
            )
        )

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    # ------------------------------------------------------------ writer thread

    def _run(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # the outbox itself failed (disk): events stay on the bus
            self.on_error(f"risk events writer stopped: {type(exc).__name__}: {exc}")

    def _serve(self) -> None:
        con = _outbox(self.outbox)
        self.pending = con.execute("SELECT count(*) FROM pending").fetchone()[0]
        next_move = 0.0
        done = False
        while not done:
            try:
                first = self._q.get(timeout=RETRY_S if self.pending else None)
            except queue.Empty:
                first = ()
            rows = [first] if first else []
            done = first is None
            while True:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    done = True
                else:
                    rows.append(item)
            if rows:
                try:
                    with con:
                        con.executemany(
                            "INSERT OR IGNORE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            rows,
                        )
                    self.pending += len(rows)
                except sqlite3.Error as exc:
                    self.on_error(f"{len(rows)} risk events not stored: {exc}")
            due = self.pending and (time.monotonic() >= next_move or done)
            if due and not self._move(con):
                next_move = time.monotonic() + RETRY_S
        con.close()

    def _move(self, con: sqlite3.Connection) -> bool:
        """Everything in the outbox into DuckDB; False while the file cannot be opened."""
        while self.pending:
            rows = con.execute(
                "SELECT * FROM pending ORDER BY id LIMIT ?", (MOVE_BATCH,)
            ).fetchall()
            if not rows:
                self.pending = 0
                return True
            # The outbox's row: id first, then the columns in COLUMNS' order but id.
            batch = columns_of([(*r[1:], r[0]) for r in rows], len(COLUMNS))
            try:
                with contextlib.closing(duckdb.connect(str(self.path))) as db:
                    db.execute("SET TimeZone = 'Asia/Kolkata'")
                    db.execute("SET threads = 1")
                    db.execute(SCHEMA)
                    ensure(db, "risk events")  # 2: the id column
                    # One bulk insert of the batch (executemany goes row by row); rows
                    # already there from a move a crash cut short are left out.
                    db.execute(
                        f"INSERT INTO risk_events BY NAME WITH batch AS ({BATCH_ROWS}) "
                        "SELECT b.* EXCLUDE (order_ids), "
                        "CASE WHEN b.order_ids = '' THEN []::VARCHAR[] "
                        "ELSE string_split(b.order_ids, ',') END AS order_ids FROM batch b "
                        "WHERE NOT EXISTS (SELECT 1 FROM risk_events r WHERE r.id = b.id "
                        "AND r.id >= (SELECT min(id) FROM batch))",
                        batch,
                    )
                    if time.monotonic() >= self._next_prune:  # retention, hourly
                        self._next_prune = time.monotonic() + 3600
                        got = db.execute(
                            "DELETE FROM risk_events WHERE ts < to_timestamp(?)",
                            [time.time() - self.keep_s],
                        ).fetchone()
                        self.pruned += int(got[0]) if got else 0
            except duckdb.Error as exc:
                if not self.held:
                    self.on_held(
                        f"{self.path} cannot be written ({type(exc).__name__}: {exc}); "
                        f"{self.pending} events wait in {self.outbox.name}"
                    )
                self.held = str(exc)
                return False
            with con:
                con.execute("DELETE FROM pending WHERE id <= ?", (rows[-1][0],))
            self.stored += len(rows)
            self.pending = max(0, self.pending - len(rows))
            self.held = ""
        return True


def _outbox(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=5.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(OUTBOX_SCHEMA)
    have = {r[1] for r in con.execute("PRAGMA table_info(pending)")}
    if "detail" not in have:  # an outbox an earlier release left (events may wait in it)
        con.execute("ALTER TABLE pending ADD COLUMN detail TEXT")
    return con


def read_events(
    path: Path, limit: int = 50, attempts: int = 10, day: date | None = None
) -> list[tuple[Any, ...]]:
    """The newest ``limit`` events (of the market day ``day``, when given), from DuckDB and
    from the outbox (what waits there to be written). The DuckDB file is read even while
    risk runs: its writer holds it only for a moment at a time, so a busy file is tried
    again for up to ~2 s. Each row: market time (``%Y-%m-%d %H:%M:%S``), strategy, kind,
    rule, threshold, value, action, reason, order ids, detail, intent id (a refusal's: a
    follower's copy is its lead's intent and ``@account``)."""
    lo_ns = int(datetime.combine(day, dtime.min, IST).timestamp() * 1e9) if day else 0
    hi_ns = lo_ns + 86_400 * 10**9 if day else 2**62
    rows: list[tuple[Any, ...]] = []
    if path.exists():
        for attempt in range(attempts):
            try:
                con = duckdb.connect(str(path), read_only=True)
            except duckdb.IOException:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)
                continue
            try:
                con.execute("SET TimeZone = 'Asia/Kolkata'")
                cols = {r[0] for r in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'risk_events'").fetchall()}  # fmt: skip
                # a file an earlier release wrote (read-only here: not brought forward)
                detail = "coalesce(detail, '')" if "detail" in cols else "''"
                rows = con.execute(
                    "SELECT epoch_ms(ts), strftime(market_ts, '%Y-%m-%d %H:%M:%S'), strategy, "
                    "kind, rule, threshold, value, action, reason, order_ids, "
                    f"{detail}, coalesce(intent_id, '') FROM risk_events "
                    "WHERE epoch_ns(market_ts) >= ? AND epoch_ns(market_ts) < ? "
                    "ORDER BY ts DESC LIMIT ?",
                    [lo_ns, hi_ns, limit],
                ).fetchall()
            finally:
                con.close()
            break
    box = outbox_path(path)
    if box.exists():
        con2 = sqlite3.connect(f"file:{box}?mode=ro", uri=True, timeout=5.0)
        try:
            for r in con2.execute(
                "SELECT * FROM pending WHERE market_ns >= ? AND market_ns < ? "
                "ORDER BY id DESC LIMIT ?",
                (lo_ns, hi_ns, limit),
            ).fetchall():
                market = datetime.fromtimestamp(r[2] / 1e9, IST).strftime("%Y-%m-%d %H:%M:%S")
                oids = [o for o in (r[11] or "").split(",") if o]
                detail = (r[12] or "") if len(r) > 12 else ""
                rows.append((r[1] // 1_000_000, market, *r[3:10], oids, detail, r[10] or ""))
        except sqlite3.OperationalError:
            pass  # no table yet: the writer has not run
        finally:
            con2.close()
    rows.sort(key=lambda r: r[0], reverse=True)
    return [r[1:] for r in rows[:limit]]
