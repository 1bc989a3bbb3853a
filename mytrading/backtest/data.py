"""Where a backtest's bars come from, read in batches of numpy columns, never as one list.

Every source answers ``batches(exchange, symbol, start, end)`` with ``Batch`` objects in
time order (1-minute bars unless the source holds only daily ones) and ``days(...)`` with
the trading days it has data for, so holes can be listed before anything runs.

* ``GeneratedBars``: seeded history from the simulated market's model (``sim/paths.py``:
  each index's walk at its moving implied-volatility level with the intraday pattern and
  overnight gaps; futures at the index times the cost of carry; options priced on the
  volatility surface along the same path, generated on demand per contract), the
  default, so a fresh clone can backtest with nothing downloaded. A date's bars depend
  only on the seed and the walk's origin (a year before the backtest's first day), so
  the same window always gives the same bars. A stock's equity bars are not generated.
* ``DuckBars``: the ``bars`` table of a DuckDB file: the feed's recordings, or the history
  cache that ``main.py data download`` and ``main.py data import`` fill (same schema).
* ``DuckTicks``: the recordings' ``ticks``, for a backtest whose fills follow ticks.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mytrading.backtest.metrics import DAY_NS, EPOCH_ORDINAL, IST_NS
from mytrading.domain.refdata import IST, Instrument, RefData, RefDataError
from mytrading.messaging import wire
from mytrading.sim.paths import option_points, walk
from mytrading.sim.surface import SurfaceParams

if TYPE_CHECKING:  # imported where a file is opened: a generated backtest never needs it
    import duckdb

NS = 1_000_000_000
MINUTE_NS = 60 * NS
BATCH_DAYS = 20  # trading days per generated batch (7,500 one-minute bars)
BATCH_VECTORS = 32  # DuckDB vectors (2,048 rows each) per batch read
RATE = 0.065  # the simulated market's cost of carry (sim/market.py)


class DataError(ValueError):
    """No data, or not the data asked for: the backtest refuses to run."""


@dataclass
class Batch:
    """Consecutive bars of one instrument: market time of each bar's start, OHLCV."""

    start_ns: np.ndarray  # int64
    open: np.ndarray  # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.start_ns)


def trading_days(refdata: RefData, exchange: str, start: date, end: date) -> list[date]:
    out = []
    d = start
    while d <= end:
        if refdata.calendar.hours(exchange, d) is not None:
            out.append(d)
        d += timedelta(days=1)
    return out


def day_minutes(refdata: RefData, exchange: str, day: date) -> np.ndarray:
    """Start (ns) of every one-minute bar of the day's continuous session."""
    hours = refdata.calendar.hours(exchange, day)
    if hours is None:
        return np.empty(0, dtype=np.int64)
    t0 = int(datetime.combine(day, hours[0], tzinfo=IST).timestamp()) * NS
    t1 = int(datetime.combine(day, hours[1], tzinfo=IST).timestamp()) * NS
    return np.arange(t0, t1, MINUTE_NS, dtype=np.int64)


@dataclass
class _Chunk:
    """``BATCH_DAYS`` trading days of an index's generated path."""

    starts: np.ndarray  # (n,) int64: each bar's start
    pts: np.ndarray  # (n, SUB + 1): the index at the bar's open and each sub-step
    levels: np.ndarray  # (n,): the implied-volatility level through each bar
    lots: np.ndarray  # (n,): volume in lots (futures)


class _IndexPath:
    """One underlying's path from the walk's origin, generated a chunk at a time in order
    (a chunk's bars depend only on the seed, the origin and what came before: the same
    window always gives the same bars, whatever was asked first). The last ``keep``
    chunks are kept (every chunk when None), for the contracts a run subscribes as it
    goes (an option leg reads from today); a reader of an older chunk walks a path of its
    own from the origin."""

    KEEP = 4

    def __init__(
        self,
        refdata: RefData,
        name: str,
        seed: int,
        origin: date,
        sub: int,
        keep: int | None = KEEP,
    ) -> None:
        self.refdata = refdata
        self.u = refdata.underlying(name)
        self.params = SurfaceParams.for_index(self.u.sim_vol)
        self.rng = np.random.default_rng([seed, *name.encode()])
        self.level_rng = np.random.default_rng([seed, *name.encode(), 1])
        self.logp = float(np.log(self.u.sim_spot))
        self.level = self.params.mean
        self.sub = sub
        self.origin = origin
        self.seed = seed
        self.next_day = origin
        self.keep = keep
        self.chunks: dict[int, _Chunk] = {}  # by number from the origin: the last keep
        self.firsts: list[date] = []  # each chunk's first day

    def extend(self) -> None:
        """Generate the next chunk."""
        days: list[date] = []
        d = self.next_day
        while len(days) < BATCH_DAYS:
            if self.refdata.calendar.hours(self.u.fo_exchange, d) is not None:
                days.append(d)
            d += timedelta(days=1)
        self.next_day = d
        per_day = [day_minutes(self.refdata, self.u.fo_exchange, x) for x in days]
        starts = np.concatenate(per_day)
        minute = np.concatenate([np.arange(len(m)) for m in per_day])
        pts, opens, levels, self.logp, self.level = walk(
            self.params, self.logp, self.level, minute, minute == 0, self.rng,
            self.level_rng, self.sub,
        )  # fmt: skip
        lots = self.rng.integers(20, 400, size=len(starts))
        n = len(self.firsts)
        self.chunks[n] = _Chunk(starts, np.exp(np.column_stack((opens, pts))), levels, lots)
        if self.keep is not None:
            self.chunks.pop(n - self.keep, None)
        self.firsts.append(days[0])

    def fresh(self) -> _IndexPath:
        """The same path again from its origin (for a reader behind the kept chunks)."""
        return _IndexPath(self.refdata, self.u.name, self.seed, self.origin, self.sub, self.keep)


class GeneratedBars:
    """Seeded one-minute bars of indices, futures and options (see the module's
    docstring): the simulated market's model (``sim/paths.py``) run over history."""

    name = "generated"
    SUB = 4  # price points per minute after the open

    def __init__(
        self,
        refdata: RefData,
        seed: int = 42,
        origin: date | None = None,
        keep_all: bool = False,
    ) -> None:
        self.refdata = refdata
        self.seed = seed
        # A sweep's worker keeps the whole walk (about 6 MB an underlying a year): its jobs
        # read windows out of order, and with the last few chunks only each job walked
        # the path again from the origin, twice (its warm-up, its window): up to two years
        # of walk for a six-month trial of a two-year walk-forward.
        self.keep: int | None = None if keep_all else _IndexPath.KEEP
        self.origin = origin  # first day of the walk; warm-up reads before the backtest's
        self._paths: dict[str, _IndexPath] = {}

    def _inst(self, exchange: str, symbol: str) -> Instrument:
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError as exc:
            raise DataError(str(exc)) from None
        if inst.kind not in ("INDEX", "FUT", "CE", "PE"):
            raise DataError(f"{symbol}: the generator makes index, futures and option bars")
        return inst

    def _path(self, name: str, start: date) -> _IndexPath:
        path = self._paths.get(name)
        if path is None:  # one walk per underlying: an index and its contracts move together
            origin = self.origin or start
            path = self._paths[name] = _IndexPath(
                self.refdata, name, self.seed, origin, self.SUB, self.keep
            )
        return path

    def days(self, exchange: str, symbol: str, start: date, end: date) -> list[date]:
        inst = self._inst(exchange, symbol)
        last = min(end, inst.expiry) if inst.expiry else end
        return trading_days(self.refdata, exchange, start, last)

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        inst = self._inst(exchange, symbol)
        path = self._path(inst.underlying, start)
        # the walk always starts at its origin: asked for days before it (a long warm-up),
        # it serves from the origin rather than start another walk
        last = min(end, inst.expiry) if inst.expiry else end
        first_ns = int(datetime.combine(start, datetime.min.time(), IST).timestamp()) * NS
        end_ns = int(datetime.combine(last, datetime.max.time(), IST).timestamp()) * NS
        tick = inst.tick_size
        while path.next_day <= start:  # the walk reaches ``start`` (lazily, as a run does)
            path.extend()
        k = max(bisect.bisect_right(path.firsts, start) - 1, 0)  # the chunk holding start
        while True:
            while k >= len(path.firsts) and path.next_day <= last:
                path.extend()
            if k >= len(path.firsts) or path.firsts[k] > last:
                return
            if k not in path.chunks:  # dropped: this reader walks the path on its own
                path = path.fresh()
                continue
            c = path.chunks[k]
            k += 1
            keep = (c.starts >= first_ns) & (c.starts <= end_ns)
            if not keep.any():
                continue
            s = c.starts[keep]
            pts = c.pts[keep]
            if inst.kind == "FUT":
                years = (_expiry_ns(inst) - s) / NS / (365.0 * 86_400)
                pts = pts * (1.0 + RATE * np.maximum(years, 0.0))[:, None]
                volume = (c.lots[keep] * inst.lot_size).astype(np.int64)
            elif inst.kind in ("CE", "PE"):
                pts, volume = self._option(inst, s, pts, c.levels[keep])
            else:
                volume = np.zeros(len(s), dtype=np.int64)
            opens, highs = _round(pts[:, 0], tick), _round(pts.max(axis=1), tick)
            lows, closes = _round(pts.min(axis=1), tick), _round(pts[:, -1], tick)
            if inst.kind in ("CE", "PE"):  # never below one tick, as the market quotes
                opens, highs, lows, closes = (
                    np.maximum(x, tick) for x in (opens, highs, lows, closes)
                )
            yield Batch(s, opens, highs, lows, closes, volume)

    def _option(
        self, inst: Instrument, starts: np.ndarray, spot: np.ndarray, levels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """An option's prices at the index's points, and its volume (its own stream of
        draws: the index's walk is the same whatever options are read)."""
        step = 60.0 / self.SUB * NS
        times = starts[:, None] + (np.arange(self.SUB + 1) * step)[None, :]
        years = np.maximum(_expiry_ns(inst) - times, 0) / NS / (365.0 * 86_400)
        u = self.refdata.underlying(inst.underlying)
        params = SurfaceParams.for_index(u.sim_vol)
        pts = option_points(params, spot, levels, years, inst.strike, inst.kind)
        intrinsic = spot - inst.strike if inst.kind == "CE" else inst.strike - spot
        pts = np.maximum(pts, intrinsic)
        rng = np.random.default_rng([self.seed, *inst.symbol.encode(), int(starts[0] // NS)])
        return pts, rng.integers(1, 200, size=len(starts)) * inst.lot_size


def _expiry_ns(inst: Instrument) -> int:
    assert inst.expiry is not None
    close = datetime.combine(inst.expiry, datetime.min.time(), IST) + timedelta(hours=15.5)
    return int(close.timestamp()) * NS


def _round(x: np.ndarray, tick: float) -> np.ndarray:
    """To the tick, as ``round_to_tick`` does one price (checked equal in the tests)."""
    return np.round(np.round(x / tick) * tick, 2)


def ist_days(start: date, end: date) -> tuple[datetime, datetime]:
    """The IST days ``start`` to ``end`` (both included) as a half-open range of instants,
    for a query's ``col >= ? AND col < ?``: DuckDB skips whole row groups outside it,
    where ``CAST(col AS DATE) BETWEEN`` converted every row's time zone first (the trading
    days of 300,000 minutes listed in 3 ms instead of 21, their bars read in 23 ms instead
    of 31-45)."""
    return (
        datetime.combine(start, datetime.min.time(), IST),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), IST),
    )


class DuckBars:
    """Bars from a DuckDB file with the recordings' ``bars`` schema (read-only)."""

    def __init__(self, path: Path, tf: str = "1m", name: str = "") -> None:
        if not path.is_file():
            raise DataError(f"no data file {path}")
        self.path = path
        self.tf = tf
        self.name = name or str(path)

    def _con(self) -> duckdb.DuckDBPyConnection:
        from mytrading.stores.recording import connect

        return connect(self.path, read_only=True)

    def days(self, exchange: str, symbol: str, start: date, end: date) -> list[date]:
        con = self._con()
        try:
            rows = con.execute(
                "SELECT DISTINCT (epoch_ns(start) + ?) // ? FROM bars WHERE tf = ? "
                "AND exchange = ? AND symbol = ? AND start >= ? AND start < ? ORDER BY 1",
                [IST_NS, DAY_NS, self.tf, exchange, symbol, *ist_days(start, end)],
            ).fetchall()
        finally:
            con.close()
        return [date.fromordinal(EPOCH_ORDINAL + r[0]) for r in rows]

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        con = self._con()
        try:
            con.execute(
                "SELECT epoch_ns(start) AS s, open, high, low, close, volume FROM bars "
                "WHERE tf = ? AND exchange = ? AND symbol = ? AND start >= ? AND start < ? "
                "ORDER BY start",
                [self.tf, exchange, symbol, *ist_days(start, end)],
            )
            while True:
                df = con.fetch_df_chunk(BATCH_VECTORS)
                if df.empty:
                    return
                yield Batch(
                    df["s"].to_numpy(np.int64),
                    df["open"].to_numpy(np.float64),
                    df["high"].to_numpy(np.float64),
                    df["low"].to_numpy(np.float64),
                    df["close"].to_numpy(np.float64),
                    df["volume"].fillna(0).to_numpy(np.int64),
                )
        finally:
            con.close()


class EarlierFrom:
    """The bars of ``first``, and up to its first bar of an instrument (that one
    included, where ``earlier`` has it) the bars of ``earlier``: a recording (which
    begins when the feed first recorded, perhaps mid-session) whose warm-ups reach back
    into the history cache (``MT_HISTORY_DB``), as the live engine warmed up from the
    broker's history up to its start and swapped its first, partial, bar for the
    broker's copy."""

    def __init__(self, first: Any, earlier: Any) -> None:
        self.first = first
        self.earlier = earlier
        self.tf = first.tf
        self.name = f"{first.name}, earlier from {earlier.name}"
        self._firsts: dict[tuple[str, str], tuple[date, int] | None] = {}

    def _first(self, exchange: str, symbol: str) -> tuple[date, int] | None:
        """The day and market ns of ``first``'s first bar of the instrument (kept: a
        warm-up and a first bar's completion each ask)."""
        key = (exchange, symbol)
        if key not in self._firsts:
            days = self.first.days(exchange, symbol, date(1990, 1, 1), date(2100, 12, 31))
            found = None
            if days:
                for b in self.first.batches(exchange, symbol, days[0], days[0]):
                    if len(b):
                        found = (days[0], int(b.start_ns[0]))
                        break
            self._firsts[key] = found
        return self._firsts[key]

    def days(self, exchange: str, symbol: str, start: date, end: date) -> list[date]:
        first = self._first(exchange, symbol)
        if first is not None and first[0] < start:
            return list(self.first.days(exchange, symbol, start, end))
        cut = first[0] if first is not None and first[0] <= end else end
        mine = self.first.days(exchange, symbol, start, end) if first is not None else []
        return sorted({*self.earlier.days(exchange, symbol, start, cut), *mine})

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        first = self._first(exchange, symbol)
        if first is not None and first[0] < start:  # all after the recording began
            yield from self.first.batches(exchange, symbol, start, end)
            return
        cut = first if first is not None and first[0] <= end else None
        last = -1  # the start of the last bar handed
        for b in self.earlier.batches(exchange, symbol, start, cut[0] if cut else end):
            # up to the recording's first minute, that one included: the feed joined the
            # market in it, so it holds part of the minute; live's engine swapped its own
            # first bar for the broker's whole copy, and so does this
            b = _where(b, b.start_ns <= cut[1]) if cut else b
            if len(b):
                last = int(b.start_ns[-1])
                yield b
        if cut:
            for b in self.first.batches(exchange, symbol, cut[0], end):
                b = _where(b, b.start_ns > last)
                if len(b):
                    yield b


def _where(b: Batch, keep: np.ndarray) -> Batch:
    if keep.all():
        return b
    return Batch(b.start_ns[keep], b.open[keep], b.high[keep], b.low[keep], b.close[keep],
                 b.volume[keep])  # fmt: skip


def holes(wanted: list[date], have: list[date]) -> list[date]:
    """Trading days in the window with no data."""
    got = set(have)
    return [d for d in wanted if d not in got]


class DuckTicks:
    """Every recorded tick of a window, in time order: the stream a tick backtest replays."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise DataError(f"no recording {path}")
        self.path = path

    def ticks(self, start: date, end: date) -> Iterator[wire.Tick]:
        from mytrading.stores.recording import connect

        con = connect(self.path, read_only=True)
        try:
            con.execute(
                "SELECT epoch_ns(ts) AS t, exchange, symbol, ltp, bid, ask, bid_qty, ask_qty, "
                "volume, oi FROM ticks WHERE ts >= ? AND ts < ? ORDER BY ts, rowid",
                list(ist_days(start, end)),
            )
            while True:
                rows = con.fetchmany(BATCH_VECTORS * 2048)
                if not rows:
                    return
                for t, ex, sym, ltp, bid, ask, bq, aq, vol, oi in rows:
                    yield wire.Tick(
                        exchange=ex,
                        symbol=sym,
                        ltp=ltp,
                        bid=bid or 0.0,
                        ask=ask or 0.0,
                        bid_qty=bq or 0,
                        ask_qty=aq or 0,
                        volume=vol or 0,
                        oi=oi or 0,
                        exch_ns=t,
                    )
        finally:
            con.close()
