"""The master contract in force, and every sync attempt, in DuckDB (``MT_INSTRUMENTS_DB``).

``contracts`` holds the accepted file, replaced in one transaction by a sync that passes
its checks; a refused one leaves it as it was. ``syncs`` records every attempt: when, the
trading day, accepted or refused, the row count, and the reasons and notes.

``MasterIndex`` is what the daemons use: the whole table in a dict keyed by (exchange,
symbol), loaded once, a lookup in well under a microsecond (``bench/instruments.py``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import structlog

from mytrading.domain.refdata import IST
from mytrading.master.check import Verdict
from mytrading.master.contract import COLUMNS, Contract
from mytrading.stores.schema import ensure

if TYPE_CHECKING:  # pandas at run time only where a frame is read: an import costs 0.4 s
    import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS contracts (
    exchange VARCHAR, symbol VARCHAR, name VARCHAR, kind VARCHAR, expiry DATE,
    strike DOUBLE, lot BIGINT, tick DOUBLE, token VARCHAR, PRIMARY KEY (exchange, symbol)
);
CREATE TABLE IF NOT EXISTS syncs (
    ts VARCHAR, day DATE, source VARCHAR, accepted BOOLEAN, rows BIGINT, report VARCHAR
);
"""


class MasterStore:
    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(path), read_only=read_only)
        if not read_only:
            self.con.execute(SCHEMA)
            ensure(self.con, "instruments")

    def close(self) -> None:
        self.con.close()

    def current(self) -> pd.DataFrame:
        return self.con.execute(f"SELECT {', '.join(COLUMNS)} FROM contracts").df()

    def replace(self, frame: pd.DataFrame, day: date, source: str, verdict: Verdict) -> None:
        """Put ``frame`` in force and record the sync, in one transaction."""
        self.con.execute("BEGIN")
        try:
            self.con.execute("DELETE FROM contracts")
            self.con.register("incoming", frame[COLUMNS])
            self.con.execute(f"INSERT INTO contracts SELECT {', '.join(COLUMNS)} FROM incoming")
            self.con.unregister("incoming")
            self._record(day, source, True, len(frame), verdict)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def refuse(self, day: date, source: str, rows: int, verdict: Verdict) -> None:
        self._record(day, source, False, rows, verdict)

    def _record(self, day: date, source: str, ok: bool, rows: int, v: Verdict) -> None:
        self.con.execute(
            "INSERT INTO syncs VALUES (?, ?, ?, ?, ?, ?)",
            [
                datetime.now(IST).isoformat(timespec="seconds"),
                day,
                source,
                ok,
                rows,
                json.dumps({"reasons": v.reasons, "notes": v.notes}),
            ],
        )

    def last_accepted_day(self) -> date | None:
        row = self.con.execute("SELECT max(day) FROM syncs WHERE accepted").fetchone()
        return row[0] if row else None

    def history(self, n: int = 10) -> list[tuple]:
        return self.con.execute(
            "SELECT ts, day, source, accepted, rows, report FROM syncs ORDER BY ts DESC LIMIT ?",
            [n],
        ).fetchall()

    def search(self, text: str, exchange: str | None = None, n: int = 20) -> pd.DataFrame:
        """Contracts whose symbol or name holds ``text``; an exact symbol first."""
        q = f"%{text.upper()}%"
        args: list[object] = [q, q]
        where = "(symbol LIKE ? OR name LIKE ?)"
        if exchange:
            where += " AND exchange = ?"
            args.append(exchange.upper())
        return self.con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM contracts WHERE {where} "
            "ORDER BY symbol = ? DESC, length(symbol), symbol LIMIT ?",
            [*args, text.upper(), n],
        ).df()


class MasterIndex:
    """The contracts in force, by (exchange, symbol)."""

    def __init__(self, contracts: dict[tuple[str, str], Contract]) -> None:
        self.contracts = contracts

    def __len__(self) -> int:
        return len(self.contracts)

    def get(self, exchange: str, symbol: str) -> Contract | None:
        return self.contracts.get((exchange, symbol))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> MasterIndex:
        import pandas as pd

        cols = [frame[c].tolist() for c in COLUMNS]
        out: dict[tuple[str, str], Contract] = {}
        for ex, sym, name, kind, expiry, strike, lot, tick, token in zip(*cols, strict=True):
            exp = None if expiry is None or pd.isna(expiry) else _as_date(expiry)
            out[(ex, sym)] = Contract(
                ex, sym, name, kind, int(lot), float(tick), exp, float(strike), token
            )
        return cls(out)

    @classmethod
    def load(cls, path: Path) -> MasterIndex | None:
        """The contracts in force in ``path``, or None when there is no file or no sync."""
        if not path.exists():
            return None
        try:
            store = MasterStore(path, read_only=True)
        except duckdb.Error as exc:  # a sync holds the file: the next start will read it
            structlog.get_logger("refdata").warning(
                "master contract unreadable: instruments.toml only", path=str(path), why=str(exc)
            )
            return None
        try:
            frame = store.current()
        except duckdb.Error:  # a file with no sync yet
            return None
        finally:
            store.close()
        return cls.from_frame(frame) if len(frame) else None


def _as_date(v: object) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    import pandas as pd

    return pd.Timestamp(v).date()
