"""History into the local cache (``MT_HISTORY_DB``, the recordings' ``bars`` schema): from
OpenAlgo's ``history`` endpoint (``main.py data download``) or from a CSV/Parquet file
(``main.py data import``).

A download is **resumable**: every trading day asked for is recorded in ``days`` with the
number of bars it got, so running the same command again fetches only the days not yet
recorded (today's, still growing, is always fetched again). A trading day that came back
empty is a **hole**, listed at the end and kept as such (``--retry-holes`` asks again).
An import is checked whole before a row is written: a bad row refuses the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mytrading.backtest.data import trading_days
from mytrading.domain.bars import DAILY, TIMEFRAMES
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.messaging import wire
from mytrading.stores.recording import BAR_COLS, connect

DAYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS days (
    tf VARCHAR, exchange VARCHAR, symbol VARCHAR, day DATE, bars BIGINT, source VARCHAR,
    fetched TIMESTAMPTZ, PRIMARY KEY (tf, exchange, symbol, day)
);
"""
INTERVALS = ("1m", "5m", "15m", "1h", DAILY)
CHUNK_DAYS = {DAILY: 365}  # trading days per request; intraday: 5
STORE_ROWS = 100_000  # bars a transaction at most (``_store``)


class HistoryInputError(ValueError):
    """A file or a request that cannot be imported as asked."""


@dataclass
class Outcome:
    fetched: list[date] = field(default_factory=list)
    skipped: int = 0  # days already in the cache
    bars: int = 0
    holes: list[date] = field(default_factory=list)
    error: str = ""


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(path)
    con.execute(DAYS_SCHEMA)
    return con


def check_request(refdata: RefData, exchange: str, symbol: str, interval: str) -> None:
    if interval not in INTERVALS:
        raise HistoryInputError(f"--interval {interval!r}: one of {', '.join(INTERVALS)}")
    try:
        refdata.instrument(exchange, symbol)
    except RefDataError as exc:
        raise HistoryInputError(str(exc)) from None


def download(
    path: Path,
    refdata: RefData,
    fetch: Callable[[str, str, str, date, date], list[wire.Bar]],
    exchange: str,
    symbol: str,
    interval: str,
    start: date,
    end: date,
    today: date,
    retry_holes: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Fetch the trading days of ``[start, end]`` not yet cached, in chunks, each stored as
    it arrives (an interrupted download keeps what it got)."""
    from mytrading.openalgo.history import HistoryError

    check_request(refdata, exchange, symbol, interval)
    out = Outcome()
    wanted = trading_days(refdata, exchange, start, min(end, today))
    con = _open(path)
    try:
        have = {
            d: n
            for d, n in con.execute(
                "SELECT day, bars FROM days WHERE tf = ? AND exchange = ? AND symbol = ?",
                [interval, exchange, symbol],
            ).fetchall()
        }
        todo = [d for d in wanted if d not in have or d == today or (retry_holes and have[d] == 0)]
        out.skipped = len(wanted) - len(todo)
        out.holes = [d for d in wanted if have.get(d) == 0 and d not in todo]
        size = CHUNK_DAYS.get(interval, 5)
        for i in range(0, len(todo), size):
            chunk = todo[i : i + size]
            try:
                bars = fetch(exchange, symbol, interval, chunk[0], chunk[-1])
            except HistoryError as exc:
                out.error = f"{exc} (run the same command again to resume)"
                break
            by_day: dict[date, list[wire.Bar]] = {d: [] for d in chunk}
            for b in bars:
                d = datetime.fromtimestamp(b.start_ns / 1e9, IST).date()
                if d in by_day:
                    by_day[d].append(b)
            _store(con, interval, exchange, symbol, by_day, "openalgo")
            for d, got in by_day.items():
                out.fetched.append(d)
                out.bars += len(got)
                if not got:
                    out.holes.append(d)
            if progress:
                progress(min(i + size, len(todo)), len(todo))
    finally:
        con.close()
    out.holes.sort()
    return out


def _store(
    con: duckdb.DuckDBPyConnection,
    tf: str,
    exchange: str,
    symbol: str,
    by_day: dict[date, list[wire.Bar]],
    source: str,
) -> None:
    """The bars of ``by_day`` and a row a day saying how many it has, a transaction a part
    of at most ``STORE_ROWS`` bars (whole days): the store's connection keeps DuckDB to
    64 MB (``stores/recording.connect``), and one transaction of 300,000 bars (three years
    of one instrument's minutes: a file's import) ran out of it in a store that held as
    many already, and stored none of them. A day's row is committed with its bars, so an
    interruption leaves whole days, which the next download skips and the next import
    replaces."""
    part: dict[date, list[wire.Bar]] = {}
    rows = 0
    for d, got in by_day.items():
        if part and rows + len(got) > STORE_ROWS:
            _store_part(con, (tf, exchange, symbol, source), part)
            part, rows = {}, 0
        part[d] = got
        rows += len(got)
    if part:  # nothing given: nothing stored
        _store_part(con, (tf, exchange, symbol, source), part)


def _store_part(
    con: duckdb.DuckDBPyConnection,
    what: tuple[str, str, str, str],
    by_day: dict[date, list[wire.Bar]],
) -> None:
    """One transaction of ``_store``'s: ``what`` is (tf, exchange, symbol, source)."""
    tf, exchange, symbol, source = what
    bars = [b for got in by_day.values() for b in got]
    frame = pd.DataFrame(  # by column: a Timestamp made per row cost 3 us a bar
        {
            "tf": tf,
            "exchange": [b.exchange for b in bars],
            "symbol": [b.symbol for b in bars],
            "start": pd.to_datetime([b.start_ns for b in bars], utc=True),
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
        },
        columns=BAR_COLS,
    )
    con.execute("BEGIN")
    try:
        if bars:
            con.register("frame", frame)
            con.execute("INSERT OR REPLACE INTO bars SELECT * FROM frame")
            con.unregister("frame")
        con.executemany(
            "INSERT OR REPLACE INTO days VALUES (?, ?, ?, ?, ?, ?, now())",
            [(tf, exchange, symbol, d, len(got), source) for d, got in by_day.items()],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


TIME_NAMES = ("time", "timestamp", "datetime", "date", "start")


def read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise HistoryInputError(f"no file {path}")
    fn = {".csv": "read_csv", ".parquet": "read_parquet"}.get(path.suffix.lower())
    if fn is None:
        raise HistoryInputError(f"{path}: import reads .csv or .parquet files")
    try:
        con = duckdb.connect()
        return con.execute(f"SELECT * FROM {fn}(?)", [str(path)]).df()
    except duckdb.Error as exc:
        raise HistoryInputError(f"{path}: {exc}") from None


MAX_PRICE = 1e9  # rupees: no instrument is quoted above it; a larger one is a broken row
MAX_VOLUME = float(2**53)  # every whole number below it is exact in a float and a BIGINT


def normalise(df: pd.DataFrame, refdata: RefData, exchange: str, interval: str) -> pd.DataFrame:
    """Columns time/open/high/low/close[/volume] (any case); naive times are IST; epoch
    seconds or milliseconds are accepted. Every row is checked; the first bad ones are
    named by their line in the file."""
    cols = {c.lower().strip(): c for c in df.columns}
    tcol = next((cols[n] for n in TIME_NAMES if n in cols), None)
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    if tcol is None or missing:
        raise HistoryInputError(
            f"columns: need one of {TIME_NAMES} and open, high, low, close (missing "
            f"{missing or 'a time column'}); got {list(df.columns)}"
        )
    if df.empty:
        raise HistoryInputError("no bars: the file has its columns and no row under them")
    t = df[tcol]
    if pd.api.types.is_numeric_dtype(t):
        unit = "ms" if t.abs().max() > 10**11 else "s"
        times = pd.to_datetime(t, unit=unit, utc=True)
    else:
        times = pd.to_datetime(t, errors="coerce")
        if getattr(times.dt, "tz", None) is None:
            times = times.dt.tz_localize(IST)
    if "volume" in cols:
        raw_vol = df[cols["volume"]]
        vol = pd.to_numeric(raw_vol, errors="coerce").astype("float64")
        # a volume must fit its BIGINT column exactly: whole, >= 0, below 2**53 (a float
        # holds every integer up to there); blank is 0, text or 1e30 is a bad row
        bad_vol = (raw_vol.notna() & vol.isna()) | ~(
            vol.isna() | (np.isfinite(vol) & (vol >= 0) & (vol < MAX_VOLUME) & (vol % 1 == 0))
        )
        vol = vol.where(~bad_vol & vol.notna(), 0.0)
    else:
        vol = pd.Series(0.0, index=df.index)
        bad_vol = pd.Series(False, index=df.index)
    out = pd.DataFrame(
        {
            "start": times.dt.tz_convert(IST),
            "open": pd.to_numeric(df[cols["open"]], errors="coerce").astype("float64"),
            "high": pd.to_numeric(df[cols["high"]], errors="coerce").astype("float64"),
            "low": pd.to_numeric(df[cols["low"]], errors="coerce").astype("float64"),
            "close": pd.to_numeric(df[cols["close"]], errors="coerce").astype("float64"),
            "volume": vol.astype("int64"),
        }
    )
    prices = out[["open", "high", "low", "close"]]
    bad = (
        out[["start", "open", "high", "low", "close"]].isna().any(axis=1)
        | (prices <= 0).any(axis=1)
        | ~np.isfinite(prices).all(axis=1)
        | (prices > MAX_PRICE).any(axis=1)
        | bad_vol
        | (out["high"] < out[["open", "close", "low"]].max(axis=1))
        | (out["low"] > out[["open", "close", "high"]].min(axis=1))
    )
    dup = out["start"].duplicated(keep=False)
    problems = bad | dup
    if problems.any():
        lines = [str(i + 2) for i in out.index[problems][:5]]  # + header, 1-based
        kind = "duplicate times" if dup.any() and not bad.any() else "bad rows"
        raise HistoryInputError(
            f"{int(problems.sum())} {kind} (a price missing, <= 0, not finite or above "
            f"{MAX_PRICE:.0e}, a volume that is not a whole number in [0, 2**53), high below "
            f"or low above the others, or a time twice); first at line(s) {', '.join(lines)}; "
            "nothing imported"
        )
    if interval == DAILY:
        days = out["start"].dt.date
        hours = [refdata.calendar.hours(exchange, d) for d in days]
        out["start"] = [
            datetime.combine(d, h[0] if h else datetime.min.time(), IST)
            for d, h in zip(days, hours, strict=True)
        ]
    elif interval in TIMEFRAMES:
        step = TIMEFRAMES[interval]
        secs = out["start"].dt.hour * 3600 + out["start"].dt.minute * 60 + out["start"].dt.second
        if (secs % 60).any() or ((secs - 9 * 3600 - 15 * 60) % step).any():
            raise HistoryInputError(
                f"times are not on {interval} bars aligned to 09:15 IST (e.g. "
                f"{out['start'][((secs - 33_300) % step) != 0].iloc[0]}); "
                "give bar start times (IST, or with their offset)"
            )
    return out.sort_values("start").reset_index(drop=True)


def import_bars(
    path: Path, df: pd.DataFrame, exchange: str, symbol: str, interval: str
) -> tuple[int, list[date]]:
    """Store normalised bars (replacing the same bars); returns (rows, days)."""
    by_day: dict[date, list[wire.Bar]] = {}
    for r in df.itertuples(index=False):
        d = r.start.date()
        by_day.setdefault(d, []).append(
            wire.Bar(
                exchange=exchange,
                symbol=symbol,
                tf=interval,
                start_ns=int(r.start.value),
                open=float(r.open),
                high=float(r.high),
                low=float(r.low),
                close=float(r.close),
                volume=int(r.volume),
            )
        )
    con = _open(path)
    try:
        _store(con, interval, exchange, symbol, by_day, "import")
    finally:
        con.close()
    return len(df), sorted(by_day)
