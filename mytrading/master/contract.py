"""The broker's master contract as OpenAlgo's ``instruments`` returns it, normalized.

OpenAlgo passes on each broker's file with light mapping (docs/openalgo.md §2-3: types
and tick units vary by broker), so rows are read defensively:

* ``instrumenttype`` varies by broker: ``FUT``/``FUTIDX``/``FUTSTK`` are futures;
  ``OPTIDX``/``OPTSTK``/``CE``/``PE`` options (the right from the symbol's suffix); ``EQ``
  (or empty) on NSE/BSE equities, ETFs included; every row on ``NSE_INDEX``/``BSE_INDEX``
  an index. Anything else is skipped and counted.
* ``expiry`` is ``DD-MMM-YY``; ``strike`` is -1 or 0 where it means nothing.
* **Tick sizes in paise** (issues #915, #1450): some brokers send 5 for 0.05. A file is in
  paise when its index derivatives (whose tick is 0.05 everywhere) say so; then every tick
  is divided by 100, and the sync reports it.
* **Row by row**: a lot that is not a whole number in [1, 1,000,000], a tick that is not
  finite in (0, 1000], an option strike that is not finite in (0, 10,000,000], a
  derivative without a readable expiry from 2000 on: the row is refused and counted by
  reason (``instruments history`` lists them), never a traceback. When more than
  ``REFUSE_SHARE`` of the rows are refused the file is (lot and tick swapped, #1450).

The result is one pandas frame with fixed columns, built with vectorised operations: a
real NSE+NFO+BSE+BFO file has some 100,000 rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a file is normalized: a daemon's start reads none
    import pandas as pd

COLUMNS = ["exchange", "symbol", "name", "kind", "expiry", "strike", "lot", "tick", "token"]
FUT_TYPES = {"FUT", "FUTIDX", "FUTSTK", "FUTCOM", "FUTCUR"}
OPT_TYPES = {"OPTIDX", "OPTSTK", "CE", "PE", "OPTFUT", "OPTCUR"}
EQ_TYPES = {"EQ", "", "ETF", "BE"}
INDEX_EXCHANGES = {"NSE_INDEX", "BSE_INDEX"}
EQUITY_EXCHANGES = {"NSE", "BSE"}
INDEX_DERIVATIVE_TICK = 0.05  # NIFTY, BANKNIFTY, SENSEX... futures and options
MAX_LOT = 1_000_000
MAX_TICK = 1_000.0
MAX_STRIKE = 10_000_000.0
FIRST_EXPIRY_YEAR = 2000
REFUSE_SHARE = 0.10  # more rows refused than this: the whole file is wrong
BAD_LOT = "lot size that is not a whole number in [1, 1000000]"
BAD_TICK = "no positive tick size (or not finite, or above 1000)"
BAD_STRIKE = "option strike that is not a finite number in (0, 10000000]"
BAD_EXPIRY = "no readable expiry (from 2000 on)"


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
    refused: dict[str, int] = field(default_factory=dict)  # reason -> rows refused
    examples: list[str] = field(default_factory=list)  # the first few refused rows


def normalize(rows: list[dict[str, Any]] | pd.DataFrame) -> Parsed:
    """Rows of ``instruments`` (any exchanges) to the fixed columns, or MasterError."""
    import numpy as np
    import pandas as pd

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

    lot = _number(raw["lotsize"])
    tick = _number(raw["tick_size"])
    index_deriv = (
        known
        & kind.isin(["FUT", "CE", "PE"])
        & raw.get("name", sym)
        .astype(str)
        .str.upper()
        .isin(["NIFTY", "BANKNIFTY", "SENSEX", "FINNIFTY", "MIDCPNIFTY"])
    )
    sane_ticks = tick[index_deriv & np.isfinite(tick)]
    in_paise = bool(len(sane_ticks) and sane_ticks.median() >= 1)
    if in_paise:
        tick = tick / 100.0

    expiry = pd.to_datetime(
        raw.get("expiry", pd.Series("", index=raw.index)).fillna("").astype(str).str.title(),
        format="%d-%b-%y",
        errors="coerce",
    ).dt.date
    strike = _number(raw.get("strike", pd.Series(0, index=raw.index)))
    option = kind.isin(["CE", "PE"])
    deriv = kind.isin(["FUT", "CE", "PE"])
    year = pd.Series([0 if pd.isna(d) else d.year for d in expiry], index=raw.index)
    why = pd.Series("", index=raw.index, dtype=object)
    for bad, reason in (
        (~(np.isfinite(lot) & (lot >= 1) & (lot <= MAX_LOT) & (lot == np.floor(lot))), BAD_LOT),
        (~(np.isfinite(tick) & (tick > 0) & (tick <= MAX_TICK)), BAD_TICK),
        (option & ~(np.isfinite(strike) & (strike > 0) & (strike <= MAX_STRIKE)), BAD_STRIKE),
        (deriv & (year < FIRST_EXPIRY_YEAR), BAD_EXPIRY),
    ):
        why[known & bad & (why == "")] = reason
    refused_rows = why != ""
    examples = [
        f"{r['exchange']}:{r['symbol']} lot {r['lotsize']!r} tick {r['tick_size']!r} "
        f"strike {r.get('strike')!r} expiry {r.get('expiry')!r}: {w}"
        for (_, r), w in zip(
            raw[refused_rows].head(3).iterrows(), why[refused_rows].head(3), strict=True
        )
    ]
    refused = why[refused_rows].value_counts().to_dict()
    if refused and refused_rows.sum() > REFUSE_SHARE * known.sum():
        worst = max(refused, key=refused.get)
        raise MasterError(
            f"{int(refused_rows.sum())} of {int(known.sum())} rows refused, most for a {worst}"
            f" (first {examples[0]})" + (": lot and tick swapped?" if worst == BAD_LOT else "")
        )
    known = known & ~refused_rows
    strike = strike.where(option, 0.0).fillna(0.0).clip(lower=0.0)
    frame = pd.DataFrame(
        {
            "exchange": ex,
            "symbol": sym,
            "name": raw.get("name", sym).fillna("").astype(str).str.upper(),
            "kind": kind,
            "expiry": expiry.where(deriv, None),
            "strike": strike.round(4),
            "lot": lot.where(known, 1).fillna(1).astype("int64"),
            "tick": tick.round(4),
            "token": raw.get("token", sym).fillna("").astype(str),
        }
    )[known]
    dup = frame.duplicated(["exchange", "symbol"])
    if dup.any():
        frame = frame[~dup]
        skipped["(duplicate symbol)"] = int(dup.sum())
    return Parsed(frame.reset_index(drop=True), skipped, in_paise, refused, examples)


def _number(col: pd.Series) -> pd.Series:
    """A column as floats: anything that is not a number is NaN ("inf" stays inf)."""
    import pandas as pd

    return pd.to_numeric(col, errors="coerce").astype("float64")
