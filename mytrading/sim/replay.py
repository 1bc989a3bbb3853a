"""Replays a recorded day from the DuckDB market data file instead of generating prices.

The simulator server uses it in place of ``SimMarket`` (``MT_SIM_REPLAY=YYYY-MM-DD``):
``step(now_ns)`` returns, in order, every recorded tick whose market time has come since
the last step, so the replay runs at whatever speed the market clock runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from mytrading.domain.refdata import IST, Instrument, RefData, RefDataError
from mytrading.messaging.wire import Tick
from mytrading.stores.recording import connect


class ReplayError(ValueError):
    """No recording, or no ticks for the requested day."""


@dataclass
class ReplayInstrument:
    inst: Instrument


class ReplayMarket:
    def __init__(self, refdata: RefData, db: Path, day: date) -> None:
        if not db.exists():
            raise ReplayError(f"no recording at {db}")
        con = connect(db, read_only=True)
        try:
            start = datetime.combine(day, time(0), tzinfo=IST)
            end = datetime.combine(day, time(23, 59, 59), tzinfo=IST)
            rows = con.execute(
                "SELECT epoch_ns(ts), exchange, symbol, ltp, bid, ask, bid_qty, ask_qty, volume, oi"
                " FROM ticks WHERE ts BETWEEN ? AND ? ORDER BY ts",
                [start, end],
            ).fetchall()
        finally:
            con.close()
        if not rows:
            raise ReplayError(f"{db} holds no ticks for {day}")
        self.ticks = [
            Tick(
                exchange=r[1],
                symbol=r[2],
                ltp=r[3],
                bid=r[4],
                ask=r[5],
                bid_qty=r[6],
                ask_qty=r[7],
                volume=r[8],
                oi=r[9],
                exch_ns=r[0],
            )
            for r in rows
        ]
        self.instruments: list[ReplayInstrument] = []
        for key in dict.fromkeys((t.exchange, t.symbol) for t in self.ticks):
            try:
                self.instruments.append(ReplayInstrument(refdata.instrument(*key)))
            except RefDataError:
                continue  # recorded under reference data we no longer carry
        self.spot: dict[str, float] = {}
        self._pos = 0

    def listed(self, exchange: str, symbol: str) -> bool:
        return any((i.inst.exchange, i.inst.symbol) == (exchange, symbol) for i in self.instruments)

    def watch(self, keys: object) -> None:
        """A recording plays every instrument it holds; nothing to choose."""

    def quote(self, exchange: str, symbol: str, now_ns: int) -> Tick | None:
        return None  # a recording has only the quotes it recorded

    def step(self, now_ns: int) -> list[Tick]:
        out = []
        while self._pos < len(self.ticks) and self.ticks[self._pos].exch_ns <= now_ns:
            t = self.ticks[self._pos]
            out.append(t)
            if t.exchange.endswith("_INDEX"):
                self.spot[t.symbol] = t.ltp
            self._pos += 1
        return out
