"""Where a backtest's bars come from, read in batches of numpy columns, never as one list.

Every source answers ``batches(exchange, symbol, start, end)`` with ``Batch`` objects in
time order (1-minute bars unless the source holds only daily ones) and ``days(...)`` with
the trading days it has data for, so holes can be listed before anything runs.

* ``GeneratedBars``: seeded history from the simulated market's model (a geometric random
  walk per index at its ``sim_vol``, futures at the index times the cost of carry), the
  default, so a fresh clone can backtest with nothing downloaded. A date's bars depend
  only on the seed and the walk's origin (a year before the backtest's first day), so
  the same window always gives the same bars. It knows indices and futures, not options.
* ``DuckBars``: the ``bars`` table of a DuckDB file: the feed's recordings, or the history
  cache that ``main.py data download`` and ``main.py data import`` fill (same schema).
* ``DuckTicks``: the recordings' ``ticks``, for a backtest whose fills follow ticks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from mytrading import wire
from mytrading.refdata import IST, Instrument, RefData, RefDataError

NS = 1_000_000_000
MINUTE_NS = 60 * NS
BATCH_DAYS = 20  # trading days per generated batch (7,500 one-minute bars)
BATCH_VECTORS = 32  # DuckDB vectors (2,048 rows each) per batch read
RATE = 0.065  # the simulated market's cost of carry (sim/market.py)
TRADING_SECONDS_PER_YEAR = 252 * 6.25 * 3600


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


class GeneratedBars:
    """Seeded one-minute bars of indices and futures (see the module's docstring)."""

    name = "generated"
    SUB = 4  # price points per minute: open, two inside, close

    def __init__(self, refdata: RefData, seed: int = 42, origin: date | None = None) -> None:
        self.refdata = refdata
        self.seed = seed
        self.origin = origin  # first day of the walk; warm-up reads before the backtest's

    def _inst(self, exchange: str, symbol: str) -> Instrument:
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError as exc:
            raise DataError(str(exc)) from None
        if inst.kind not in ("INDEX", "FUT"):
            raise DataError(
                f"{symbol}: the generator makes index and futures bars, not options; "
                "download or import option history (main.py data download / import)"
            )
        return inst

    def days(self, exchange: str, symbol: str, start: date, end: date) -> list[date]:
        inst = self._inst(exchange, symbol)
        last = min(end, inst.expiry) if inst.expiry else end
        return trading_days(self.refdata, exchange, start, last)

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        inst = self._inst(exchange, symbol)
        u = self.refdata.underlying(inst.underlying)
        # the walk always starts at its origin: asked for days before it (a long warm-up),
        # it serves from the origin rather than start another walk
        origin = self.origin or start
        start = max(start, origin)
        last = min(end, inst.expiry) if inst.expiry else end
        # one walk per underlying, from its origin: an index and its futures move together
        rng = np.random.default_rng([self.seed, *inst.underlying.encode()])
        level = np.log(u.sim_spot)
        dt = 60.0 / self.SUB / TRADING_SECONDS_PER_YEAR
        drift, scale = -0.5 * u.sim_vol**2 * dt, u.sim_vol * np.sqrt(dt)
        days = trading_days(self.refdata, u.fo_exchange, origin, last)
        first_ns = int(datetime.combine(start, datetime.min.time(), IST).timestamp()) * NS
        for i in range(0, len(days), BATCH_DAYS):
            chunk = days[i : i + BATCH_DAYS]
            starts = np.concatenate([day_minutes(self.refdata, u.fo_exchange, d) for d in chunk])
            n = len(starts)
            z = rng.standard_normal(n * self.SUB)
            steps = (drift + scale * z).reshape(n, self.SUB)
            logp = level + np.cumsum(steps.ravel()).reshape(n, self.SUB)
            opens = np.concatenate(([level], logp[:-1, -1]))
            level = float(logp[-1, -1])
            lots = rng.integers(20, 400, size=n)  # drawn for every chunk: same walk, any start
            keep = starts >= first_ns
            if not keep.any():
                continue
            pts = np.exp(np.column_stack((opens, logp)))[keep]
            vol = lots[keep] * inst.lot_size
            s = starts[keep]
            if inst.kind == "FUT":
                years = (_expiry_ns(inst) - s) / NS / (365.0 * 86_400)
                pts = pts * (1.0 + RATE * np.maximum(years, 0.0))[:, None]
                volume = vol.astype(np.int64)
            else:
                volume = np.zeros(len(s), dtype=np.int64)
            tick = inst.tick_size
            yield Batch(
                s,
                _round(pts[:, 0], tick),
                _round(pts.max(axis=1), tick),
                _round(pts.min(axis=1), tick),
                _round(pts[:, -1], tick),
                volume,
            )


def _expiry_ns(inst: Instrument) -> int:
    assert inst.expiry is not None
    close = datetime.combine(inst.expiry, datetime.min.time(), IST) + timedelta(hours=15.5)
    return int(close.timestamp()) * NS


def _round(x: np.ndarray, tick: float) -> np.ndarray:
    """To the tick, as ``round_to_tick`` does one price (checked equal in the tests)."""
    return np.round(np.round(x / tick) * tick, 2)


class DuckBars:
    """Bars from a DuckDB file with the recordings' ``bars`` schema (read-only)."""

    def __init__(self, path: Path, tf: str = "1m", name: str = "") -> None:
        if not path.is_file():
            raise DataError(f"no data file {path}")
        self.path = path
        self.tf = tf
        self.name = name or str(path)

    def _con(self):  # type: ignore[no-untyped-def]
        from mytrading.recording import connect

        return connect(self.path, read_only=True)

    def days(self, exchange: str, symbol: str, start: date, end: date) -> list[date]:
        con = self._con()
        try:
            rows = con.execute(
                "SELECT DISTINCT CAST(start AS DATE) FROM bars WHERE tf = ? AND exchange = ? "
                "AND symbol = ? AND CAST(start AS DATE) BETWEEN ? AND ? ORDER BY 1",
                [self.tf, exchange, symbol, start, end],
            ).fetchall()
        finally:
            con.close()
        return [r[0] for r in rows]

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        con = self._con()
        try:
            con.execute(
                "SELECT epoch_ns(start) AS s, open, high, low, close, volume FROM bars "
                "WHERE tf = ? AND exchange = ? AND symbol = ? "
                "AND CAST(start AS DATE) BETWEEN ? AND ? ORDER BY start",
                [self.tf, exchange, symbol, start, end],
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
        from mytrading.recording import connect

        con = connect(self.path, read_only=True)
        try:
            con.execute(
                "SELECT epoch_ns(ts) AS t, exchange, symbol, ltp, bid, ask, bid_qty, ask_qty, "
                "volume, oi FROM ticks WHERE CAST(ts AS DATE) BETWEEN ? AND ? ORDER BY ts, rowid",
                [start, end],
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
