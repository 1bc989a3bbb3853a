"""The broker's master contract as OpenAlgo's ``instruments`` returns it, normalized.

OpenAlgo passes on each broker's file with light mapping (openalgo-protocol.md sections 2,
3 and the master-contract quirks in section 8), so rows are read defensively:

* ``instrumenttype`` varies by broker: ``FUT``/``FUTIDX``/``FUTSTK`` are futures;
  ``OPTIDX``/``OPTSTK``/``CE``/``PE`` options (the right from the symbol's suffix); ``EQ``
  (or empty) on NSE/BSE equities, ETFs included; every row on ``NSE_INDEX``/``BSE_INDEX``
  an index. Anything else is skipped and counted.
* ``expiry`` is ``DD-MMM-YY``; ``strike`` is -1 or 0 where it means nothing.
* **Tick sizes in paise** (issues #915, #1450): some brokers send 5 for 0.05. A file is in
  paise when its index derivatives (whose tick is 0.05 everywhere) say so; then every tick
  is divided by 100, and the sync reports it.
* **Lot and tick swapped** (#1450): a lot that is not a whole number >= 1 refuses the file.

The result is one pandas frame with fixed columns, built with vectorised operations: a
real NSE+NFO+BSE+BFO file has some 100,000 rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ["exchange", "symbol", "name", "kind", "expiry", "strike", "lot", "tick", "token"]
FUT_TYPES = {"FUT", "FUTIDX", "FUTSTK", "FUTCOM", "FUTCUR"}
OPT_TYPES = {"OPTIDX", "OPTSTK", "CE", "PE", "OPTFUT", "OPTCUR"}
EQ_TYPES = {"EQ", "", "ETF", "BE"}
INDEX_EXCHANGES = {"NSE_INDEX", "BSE_INDEX"}
EQUITY_EXCHANGES = {"NSE", "BSE"}
INDEX_DERIVATIVE_TICK = 0.05  # NIFTY, BANKNIFTY, SENSEX... futures and options


class MasterError(ValueError):
    """A master contract that cannot be used: the reason, for the operator and the alert."""


@dataclass(frozen=True)
class Contract:
    exchange: str
    symbol: str
    name: str  # the underlying (a stock, an index), or the company for an equity
    kind: str  # "EQ" | "INDEX" | "FUT" | "CE" | "PE"
    lot: int
    tick: float
    expiry: date | None
    strike: float
    token: str


@dataclass
class Parsed:
    frame: pd.DataFrame
    skipped: dict[str, int]  # instrument type -> rows skipped
    in_paise: bool  # ticks were divided by 100


def normalize(rows: list[dict[str, Any]] | pd.DataFrame) -> Parsed:
    """Rows of ``instruments`` (any exchanges) to the fixed columns, or MasterError."""
    raw = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if raw.empty:
        raise MasterError("the master contract is empty")
    need = {"exchange", "symbol", "instrumenttype", "lotsize", "tick_size"}
    missing = need - set(raw.columns)
    if missing:
        raise MasterError(f"the master contract lacks columns {sorted(missing)}")
    ex = raw["exchange"].astype(str).str.upper()
    sym = raw["symbol"].astype(str).str.strip().str.upper()
    itype = raw["instrumenttype"].fillna("").astype(str).str.upper().str.strip()
    suffix = sym.str[-2:]
    kind = pd.Series(np.full(len(raw), "", dtype=object), index=raw.index)
    kind[itype.isin(FUT_TYPES)] = "FUT"
    opt = itype.isin(OPT_TYPES) & suffix.isin(["CE", "PE"])
    kind[opt] = suffix[opt]
    kind[ex.isin(EQUITY_EXCHANGES) & itype.isin(EQ_TYPES)] = "EQ"
    kind[ex.isin(INDEX_EXCHANGES)] = "INDEX"
    known = kind != ""
    skipped = itype[~known].replace("", "(none)").value_counts().to_dict()

    lot = pd.to_numeric(raw["lotsize"], errors="coerce")
    tick = pd.to_numeric(raw["tick_size"], errors="coerce")
    bad_lot = known & ~((lot >= 1) & (lot == np.floor(lot)))
    if bad_lot.any():
        r = raw[bad_lot].iloc[0]
        raise MasterError(
            f"{int(bad_lot.sum())} rows have a lot size that is not a whole number >= 1 "
            f"(first {r['exchange']}:{r['symbol']} lot {r['lotsize']!r}, tick "
            f"{r['tick_size']!r}): lot and tick swapped?"
        )
    if (known & ~(tick > 0)).any():
        raise MasterError(f"{int((known & ~(tick > 0)).sum())} rows have no positive tick size")
    index_deriv = (
        known
        & kind.isin(["FUT", "CE", "PE"])
        & raw.get("name", sym)
        .astype(str)
        .str.upper()
        .isin(["NIFTY", "BANKNIFTY", "SENSEX", "FINNIFTY", "MIDCPNIFTY"])
    )
    in_paise = bool(index_deriv.any() and tick[index_deriv].median() >= 1)
    if in_paise:
        tick = tick / 100.0

    expiry = pd.to_datetime(
        raw.get("expiry", pd.Series("", index=raw.index)).fillna("").astype(str).str.title(),
        format="%d-%b-%y",
        errors="coerce",
    ).dt.date
    strike = pd.to_numeric(raw.get("strike", 0), errors="coerce").fillna(0.0)
    strike = strike.where(kind.isin(["CE", "PE"]), 0.0).clip(lower=0.0)
    deriv = kind.isin(["FUT", "CE", "PE"])
    no_expiry = known & deriv & expiry.isna()
    if no_expiry.any():
        r = raw[no_expiry].iloc[0]
        raise MasterError(
            f"{int(no_expiry.sum())} derivatives have no readable expiry "
            f"(first {r['exchange']}:{r['symbol']} expiry {r.get('expiry')!r})"
        )
    frame = pd.DataFrame(
        {
            "exchange": ex,
            "symbol": sym,
            "name": raw.get("name", sym).fillna("").astype(str).str.upper(),
            "kind": kind,
            "expiry": expiry.where(deriv, None),
            "strike": strike.round(4),
            "lot": lot.fillna(1).astype("int64"),
            "tick": tick.round(4),
            "token": raw.get("token", sym).fillna("").astype(str),
        }
    )[known]
    dup = frame.duplicated(["exchange", "symbol"])
    if dup.any():
        frame = frame[~dup]
        skipped["(duplicate symbol)"] = int(dup.sum())
    return Parsed(frame.reset_index(drop=True), skipped, in_paise)
