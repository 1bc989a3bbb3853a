"""Market data recording to DuckDB: one writer (the feed process) per database file.

The feed hands ticks and bars to ``Recorder.add_*`` (a deque append on its hot path); a
writer thread takes what has arrived every ``flush_s`` and inserts each batch in one
statement (``stores/bulk.py``: no pandas in the feed). A bar is keyed
by (tf, exchange, symbol, start): the same minute is never stored twice. DuckDB locks the
file for its writer, so readers (``main.py data``) open it while the feed is stopped.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

import duckdb
import structlog

from mytrading.messaging import wire
from mytrading.stores.bulk import NS, columns_of, rows_select
from mytrading.stores.schema import ensure

log = structlog.get_logger("feed.recorder")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ticks (
    ts TIMESTAMPTZ NOT NULL, exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
    ltp DOUBLE, bid DOUBLE, ask DOUBLE, bid_qty BIGINT, ask_qty BIGINT, volume BIGINT, oi BIGINT
);
CREATE TABLE IF NOT EXISTS bars (
    tf VARCHAR NOT NULL, exchange VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
    start TIMESTAMPTZ NOT NULL, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
    volume BIGINT, PRIMARY KEY (tf, exchange, symbol, start)
);
"""
TICK_COLS = ["ts", "exchange", "symbol", "ltp", "bid", "ask", "bid_qty", "ask_qty", "volume", "oi"]
BAR_COLS = ["tf", "exchange", "symbol", "start", "open", "high", "low", "close", "volume"]
_TICK_TYPES = [NS, "VARCHAR", "VARCHAR", *["DOUBLE"] * 3, *["BIGINT"] * 4]
_BAR_TYPES = ["VARCHAR", "VARCHAR", "VARCHAR", NS, *["DOUBLE"] * 4, "BIGINT"]
TICK_ROWS = rows_select(list(zip(TICK_COLS, _TICK_TYPES, strict=True)))
BAR_ROWS = rows_select(list(zip(BAR_COLS, _BAR_TYPES, strict=True)))


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'Asia/Kolkata'")
    if not read_only:
        # One thread: appending a second's batch needs no parallelism, and DuckDB's default
        # (every core) took CPU from the latency path on two cores (bench/latency.py p99).
        con.execute("SET threads = 1")
        # DuckDB's buffer pool grows towards 80 % of the machine's memory by default, with
        # the file: the feed's RSS rose ~4 MB a session over the 10-session soak. Appends
        # and the daily retention need little of it (DuckDB spills beyond the limit).
        con.execute("SET memory_limit = '64MB'")
        con.execute(SCHEMA)
        ensure(con, "recordings")
    return con


class Recorder:
    def __init__(self, path: Path, flush_s: float = 1.0) -> None:
        self.path = path
        self.flush_s = flush_s
        self.con = connect(path)  # raises if another process holds the file: one writer only
        # deques: append and popleft are atomic, so the writer can take a batch while the
        # feed keeps appending (swapping out a list could lose a tick appended mid-swap).
        self._ticks: collections.deque[tuple] = collections.deque()
        self._bars: collections.deque[tuple] = collections.deque()
        self.ticks_written = 0
        self.bars_written = 0
        self.errors = 0
        self.pruned = 0  # rows deleted by retention
        self._prune: tuple[int, int] | None = None  # (ticks before, bars before), in ns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def add_tick(self, t: wire.Tick) -> None:
        self._ticks.append(
            (
                t.exch_ns,
                t.exchange,
                t.symbol,
                t.ltp,
                t.bid,
                t.ask,
                t.bid_qty,
                t.ask_qty,
                t.volume,
                t.oi,
            )
        )

    def add_bar(self, b: wire.Bar) -> None:
        self._bars.append(
            (b.tf, b.exchange, b.symbol, b.start_ns, b.open, b.high, b.low, b.close, b.volume)
        )

    def prune(self, ticks_before_ns: int, bars_before_ns: int) -> None:
        """Retention: delete ticks and bars older than these (market) times, in the writer
        thread (it holds the file); DuckDB reuses the freed blocks, so the file stops
        growing once retention is reached."""
        self._prune = (ticks_before_ns, bars_before_ns)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()
            if self._prune is not None:
                self._do_prune(*self._prune)
                self._prune = None
        self.flush()

    def _do_prune(self, ticks_before_ns: int, bars_before_ns: int) -> None:
        try:
            for table, col, before in (("ticks", "ts", ticks_before_ns),
                                       ("bars", "start", bars_before_ns)):  # fmt: skip
                got = self.con.execute(
                    f"DELETE FROM {table} WHERE {col} < to_timestamp(?::BIGINT / 1e9)",
                    [before],
                ).fetchone()
                self.pruned += int(got[0]) if got else 0
        except duckdb.Error:
            self.errors += 1
            log.exception("recording retention failed")

    @staticmethod
    def _take(q: collections.deque[tuple]) -> list[tuple]:
        return [q.popleft() for _ in range(len(q))]

    def flush(self) -> None:
        """Write what has arrived (called by the writer thread only)."""
        ticks, bars = self._take(self._ticks), self._take(self._bars)
        try:
            if ticks:
                cols = columns_of(ticks, len(TICK_COLS))
                self.con.execute(f"INSERT INTO ticks {TICK_ROWS}", cols)
                self.ticks_written += len(ticks)
            if bars:
                self.con.execute(
                    f"INSERT OR IGNORE INTO bars {BAR_ROWS}", columns_of(bars, len(BAR_COLS))
                )
                self.bars_written += len(bars)
        except duckdb.Error:
            self.errors += 1
            # Dropped, counted and logged: re-queueing would grow without bound while the
            # disk stays full. The bus copy of the data was delivered either way.
            log.exception("recording failed", ticks=len(ticks), bars=len(bars))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.con.close()
