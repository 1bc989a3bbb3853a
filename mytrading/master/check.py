"""Is a new master contract believable next to the one in force?

A bad file does more harm than a day-old one: lot sizes that shrink by half trade double
the risk, a tick in paise prices every order a hundred times off. A new file is refused
(and yesterday's stays in force) when, against the one in force:

* it has fewer than half the rows, or an exchange that was there is gone;
* more than ``MAX_TICK_CHANGED`` of the contracts in both changed their tick size (ticks
  almost never change);
* any contract's lot and tick swapped places;
* more than ``MAX_LOT_CHANGED`` of the contracts in both changed their lot size (NSE revises
  lots twice a year, for new expiries; a file where most existing contracts changed is
  more likely wrong than revised: ``instruments sync --force`` accepts it on purpose).

Lot changes below that share are accepted and listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # every daemon reads the master through the store: no pandas at start
    import pandas as pd

MAX_TICK_CHANGED = 0.10
MAX_LOT_CHANGED = 0.50
MIN_ROWS_KEPT = 0.50


@dataclass
class Verdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)  # why refused
    notes: list[str] = field(default_factory=list)  # accepted, but worth saying


def compare(new: pd.DataFrame, old: pd.DataFrame | None) -> Verdict:
    if old is None or old.empty:
        return Verdict(True, notes=["first master contract: nothing to compare with"])
    v = Verdict(True)
    if len(new) < MIN_ROWS_KEPT * len(old):
        v.reasons.append(f"{len(new)} rows against {len(old)} in force (under half)")
    gone = sorted(set(old["exchange"]) - set(new["exchange"]))
    if gone:
        v.reasons.append(f"exchanges missing: {', '.join(gone)}")
    both = new.merge(old, on=["exchange", "symbol"], suffixes=("", "_old"))
    if len(both):
        tick_changed = both["tick"] != both["tick_old"]
        lot_changed = both["lot"] != both["lot_old"]
        # swapped, in rupees or with the tick in paise (5 for 0.05)
        lot_was_tick = (both["lot"] == both["tick_old"]) | (
            (both["lot"] - both["tick_old"] * 100).abs() < 1e-6
        )
        tick_was_lot = (both["tick"] == both["lot_old"]) | (
            (both["tick"] - both["lot_old"] / 100).abs() < 1e-9
        )
        swapped = lot_was_tick & tick_was_lot & lot_changed
        if swapped.any():
            r = both[swapped].iloc[0]
            v.reasons.append(
                f"lot and tick swapped in {int(swapped.sum())} contracts "
                f"(e.g. {r['exchange']}:{r['symbol']} lot {r['lot_old']} -> {r['lot']}, "
                f"tick {r['tick_old']} -> {r['tick']})"
            )
        share = tick_changed.mean()
        if share > MAX_TICK_CHANGED:
            r = both[tick_changed].iloc[0]
            v.reasons.append(
                f"tick size changed in {share:.0%} of contracts (e.g. {r['symbol']} "
                f"{r['tick_old']} -> {r['tick']})"
            )
        share = lot_changed.mean()
        if share > MAX_LOT_CHANGED:
            v.reasons.append(f"lot size changed in {share:.0%} of contracts")
        elif lot_changed.any():
            names = sorted(set(both.loc[lot_changed, "name"]))[:10]
            v.notes.append(
                f"lot size changed in {int(lot_changed.sum())} contracts ({', '.join(names)})"
            )
    v.ok = not v.reasons
    return v
