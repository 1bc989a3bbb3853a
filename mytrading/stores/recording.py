"""Market data recording to DuckDB: one writer (the feed process) per database file.

The feed hands ticks and bars to ``Recorder.add_*`` (a deque append on its hot path); a
writer thread takes what has arrived every ``flush_s`` and inserts each batch in one
statement (``stores/bulk.py``: no pandas in the feed). A bar is keyed
by (tf, exchange, symbol, start): the same minute is never stored twice.

DuckDB lets one process hold a file, reader or writer. The writer lets the file go when
it has had nothing to write for ``idle_release_s`` (a minute; after the close, the market
quiet), so the day's shadow and the end-of-day report, which read it, can open it on a
running stack; it takes the file again at the next batch. A batch that finds the file held
by a reader waits in memory, written once the reader lets go: nothing is lost unless a
reader keeps it past ``max_queued`` rows (then the oldest are dropped, counted and logged).

When the first ticks of a new market day are written, the day before is copied to a file
of its own (``day_copy``: ``marketdata.day-YYYY-MM-DD.duckdb`` beside the recording, the
newest ``KEEP_DAY_COPIES`` kept), which readers open whenever they like: on the simulator,
whose clock jumps from the close to the next open, the recording is never idle while the
stack runs, and on a real market yesterday's shadow can run while today is recorded.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import date, datetime
from pathlib import Path

import duckdb
import structlog

from mytrading.domain.refdata import IST
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
KEEP_DAY_COPIES = 5  # the newest days' copies kept beside the recording
COPY_BARS_DAYS = 10  # a day's copy holds the bars of this many days before it (warm-ups)
DAY_NS = 86_400 * 10**9
IST_NS = 19_800 * 10**9  # India's offset from UTC
IDLE_RELEASE_S = 60.0  # nothing to write this long: the file let go for readers
MAX_QUEUED = 500_000  # ticks (and bars) kept in memory while a reader holds the file
TICK_ROWS = rows_select(list(zip(TICK_COLS, _TICK_TYPES, strict=True)))
BAR_ROWS = rows_select(list(zip(BAR_COLS, _BAR_TYPES, strict=True)))


def day_copy(path: Path, day: date) -> Path:
    """Where the recording ``path``'s copy of ``day`` is kept."""
    return path.with_name(f"{path.stem}.day-{day.isoformat()}{path.suffix}")


def day_copies(path: Path) -> dict[date, Path]:
    """The recording's day copies there are, by day."""
    out = {}
    for f in path.parent.glob(f"{path.stem}.day-*{path.suffix}"):
        try:
            out[date.fromisoformat(f.name[len(path.stem) + 5 : len(path.stem) + 15])] = f
        except ValueError:
            continue  # not one of ours
    return out


def _day_of(ns: int) -> int:
    """The IST day number of a market time."""
    return (ns + IST_NS) // DAY_NS


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
    def __init__(
        self,
        path: Path,
        flush_s: float = 1.0,
        idle_release_s: float | None = IDLE_RELEASE_S,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.path = path
        self.flush_s = flush_s
        self.idle_release_s = idle_release_s
        self.max_queued = max_queued
        # raises if another process holds the file: at the start, one writer only
        self.con: duckdb.DuckDBPyConnection | None = connect(path)
        # deques: append and popleft are atomic, so the writer can take a batch while the
        # feed keeps appending (swapping out a list could lose a tick appended mid-swap).
        self._ticks: collections.deque[tuple] = collections.deque()
        self._bars: collections.deque[tuple] = collections.deque()
        self.ticks_written = 0
        self.bars_written = 0
        self.errors = 0
        self.pruned = 0  # rows deleted by retention
        self.releases = 0  # times the file was let go while idle
        self.day_copies = 0  # days copied to their own file
        self._day = self._last_day()  # the IST day number of the newest tick written
        self.dropped = 0  # rows dropped while a reader held the file past ``max_queued``
        self._held_since: float | None = None  # a reader held the file at the last try
        self._last_write = time.monotonic()
        self._prune: tuple[int, int] | None = None  # (ticks before, bars before), in ns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def _last_day(self) -> int | None:
        """The day of the newest tick recorded (a restart across a day boundary copies
        the day before, too, at its first ticks)."""
        assert self.con is not None
        got = self.con.execute("SELECT epoch_ns(max(ts)) FROM ticks").fetchone()
        return _day_of(int(got[0])) if got and got[0] is not None else None

    @property
    def held_s(self) -> float:
        """How long a reader has held the file while rows waited (0: not held)."""
        since = self._held_since
        return 0.0 if since is None else time.monotonic() - since

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
            if self._prune is not None and self._open():
                self._do_prune(*self._prune)
                self._prune = None
        self.flush()
        if self._ticks or self._bars:
            log.error(
                "recording closed with rows unwritten: a reader held the file",
                ticks=len(self._ticks),
                bars=len(self._bars),
                path=str(self.path),
            )

    def _open(self) -> bool:
        """The file held for writing; False while a reader holds it (said once a hold)."""
        if self.con is not None:
            return True
        try:
            self.con = connect(self.path)
        except duckdb.Error as exc:
            if self._held_since is None:
                self._held_since = time.monotonic()
                log.warning("recording held by a reader: what arrives waits in memory",
                            path=str(self.path), reason=str(exc))  # fmt: skip
            return False
        if self._held_since is not None:
            log.info("recording free again: what waited is written",
                     waited_s=round(self.held_s, 1), ticks=len(self._ticks))  # fmt: skip
            self._held_since = None
        return True

    def _release(self) -> None:
        assert self.con is not None
        self.con.close()
        self.releases += 1  # counted before it shows: a reader seeing no con sees the count
        self.con = None
        log.info("recording let go while idle: readers may open it", path=str(self.path),
                 idle_s=self.idle_release_s)  # fmt: skip

    def _bound(self) -> None:
        """While a reader holds the file: the oldest rows over ``max_queued`` dropped."""
        over = 0
        for q in (self._ticks, self._bars):
            while len(q) > self.max_queued:
                q.popleft()
                over += 1
        if over:
            if not self.dropped:
                log.error("recording held by a reader too long: the oldest rows dropped",
                          path=str(self.path), held_s=round(self.held_s, 1))  # fmt: skip
            self.dropped += over

    def _do_prune(self, ticks_before_ns: int, bars_before_ns: int) -> None:
        assert self.con is not None
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
        """Write what has arrived (called by the writer thread only); with nothing to
        write for ``idle_release_s``, let the file go."""
        if not self._ticks and not self._bars:
            idle = self.idle_release_s
            if (
                self.con is not None
                and idle is not None
                and (time.monotonic() - self._last_write >= idle)
            ):
                self._release()
            return
        if not self._open():
            self._bound()
            return
        assert self.con is not None
        ticks, bars = self._take(self._ticks), self._take(self._bars)
        self._last_write = time.monotonic()
        try:
            if ticks:
                cols = columns_of(ticks, len(TICK_COLS))
                self.con.execute(f"INSERT INTO ticks {TICK_ROWS}", cols)
                self.ticks_written += len(ticks)
                newest = _day_of(max(cols[0]))
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
            return
        if ticks:
            if self._day is not None and newest > self._day:
                self._copy_day(self._day)
            self._day = max(self._day or newest, newest)

    def _copy_day(self, day: int) -> None:
        """The day ``day``'s ticks, and its bars with ``COPY_BARS_DAYS`` days' before them
        (a replay's warm-up), to their own file (written aside, then renamed: a reader
        never finds half of one); the oldest copies past ``KEEP_DAY_COPIES`` removed. A
        failure is counted and logged; the recording goes on."""
        assert self.con is not None
        lo = day * DAY_NS - IST_NS
        d = datetime.fromtimestamp(lo / 1e9, IST).date()
        final = day_copy(self.path, d)
        part = final.with_name(final.name + ".part")
        try:
            part.unlink(missing_ok=True)
            self.con.execute(f"ATTACH '{str(part).replace(chr(39), chr(39) * 2)}' AS day_copy")
            try:
                hi = lo + DAY_NS
                for table, col, since in (
                    ("ticks", "ts", lo),
                    ("bars", "start", lo - COPY_BARS_DAYS * DAY_NS),
                ):
                    self.con.execute(
                        f"CREATE TABLE day_copy.{table} AS SELECT * FROM {table} WHERE "
                        f"{col} >= to_timestamp(?::BIGINT / 1e9) AND "
                        f"{col} < to_timestamp(?::BIGINT / 1e9)",
                        [since, hi],
                    )
                self.con.execute("CREATE TABLE day_copy.mt_schema AS SELECT * FROM mt_schema")
            finally:
                self.con.execute("DETACH day_copy")
            part.replace(final)
        except (duckdb.Error, OSError):
            self.errors += 1
            log.exception("the day's copy of the recording failed", day=d.isoformat())
            return
        self.day_copies += 1
        log.info("the day's recording copied for readers", day=d.isoformat(), path=str(final))
        for old_day, f in sorted(day_copies(self.path).items())[:-KEEP_DAY_COPIES]:
            f.unlink(missing_ok=True)
            log.info("an old day copy of the recording removed", day=old_day.isoformat())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.con is not None:
            self.con.close()
            self.con = None
