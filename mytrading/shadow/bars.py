"""Bars that differed between the two sides: live's 1-minute bars against the recorded
ticks the shadow made its own from.

Live's strategies decided on the bars the feed handed out, and the feed records each one
as it hands it (``stores/recording.py``, table ``bars``); the shadow builds its bars from
the recorded ticks, every tick in the minute its stamp names. The two differ where live
did not see what the recording holds, and the records say which way:

* a tick that came after live had handed its minute's bar (a late tick: the bar never
  reopens, ``domain/bars.py``) is in the shadow's bar, not in live's: the OHLC differ;
* a minute the feed filled from the broker's history after an outage (the backfill) has a
  live bar and no recorded tick: the shadow has no bar there;
* a minute with recorded ticks and no live bar: live never handed it.

A decision one side made alone is put to such a bar when one of the instruments its
strategy watches had a differing bar that ended before the decision and after the two
sides last held the same positions (a strategy's position carries a bar's difference
forward: one side a decision ahead decides otherwise until both hold alike again) or
within the span its warm-ups asked (its indicators remember that far back). Only
the open, high, low and close are compared (the volume of a minute depends on where a
builder joined the day, not on what traded).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from mytrading.backtest.data import ist_days
from mytrading.domain.refdata import IST

MINUTE_NS = 60 * 10**9
OHLC = tuple[float, float, float, float]
Key = tuple[str, str]


@dataclass(frozen=True)
class BarDiff:
    exchange: str
    symbol: str
    start_ns: int
    live: OHLC | None  # the bar live handed; None: it handed none for the minute
    ticks: OHLC | None  # the bar the recorded ticks make; None: no tick recorded
    n_ticks: int = 0

    @property
    def end_ns(self) -> int:
        return self.start_ns + MINUTE_NS

    def said(self) -> str:
        at = datetime.fromtimestamp(self.start_ns / 1e9, IST).strftime("%H:%M")
        name = f"{self.symbol} {at}"
        if self.ticks is None:
            return (f"live's {name} bar came from the broker's history after a gap in the "
                    "feed (no tick recorded): the shadow had none")  # fmt: skip
        if self.live is None:
            return f"live handed no {name} bar ({self.n_ticks} tick(s) recorded in it)"
        parts = [
            f"{label} {a:,.2f} vs {b:,.2f}"
            for label, a, b in zip(
                ("open", "high", "low", "close"), self.live, self.ticks, strict=True
            )
            if abs(a - b) > 1e-9
        ]
        return f"live's {name} bar differed from its recorded ticks ({', '.join(parts)})"


def differing_bars(con: duckdb.DuckDBPyConnection, day: date) -> dict[Key, list[BarDiff]]:
    """Each instrument's 1-minute bars of ``day`` that live handed otherwise than its
    recorded ticks make them (by minute)."""
    ticks = con.execute(
        "SELECT exchange, symbol, epoch_ns(date_trunc('minute', ts)) AS m, "
        "arg_min(ltp, ts), max(ltp), min(ltp), arg_max(ltp, ts), count(*) "
        "FROM ticks WHERE ts >= ? AND ts < ? AND ltp > 0 GROUP BY ALL",
        list(ist_days(day, day)),
    ).fetchall()
    live = con.execute(
        "SELECT exchange, symbol, epoch_ns(start), open, high, low, close FROM bars "
        "WHERE tf = '1m' AND start >= ? AND start < ?",
        list(ist_days(day, day)),
    ).fetchall()
    return compare(
        ((ex, sym, int(m), (o, h, lo, c), int(n)) for ex, sym, m, o, h, lo, c, n in ticks),
        ((ex, sym, int(m), (o, h, lo, c)) for ex, sym, m, o, h, lo, c in live),
    )


def compare(
    ticks: Iterable[tuple[str, str, int, OHLC, int]], live: Iterable[tuple[str, str, int, OHLC]]
) -> dict[Key, list[BarDiff]]:
    """The minutes whose bars differ, per instrument, earliest first. Only instruments
    live handed bars of are compared (one live never made bars of decided nothing)."""
    made = {(ex, sym, m): (ohlc, n) for ex, sym, m, ohlc, n in ticks}
    handed = {(ex, sym, m): ohlc for ex, sym, m, ohlc in live}
    with_bars = {(ex, sym) for ex, sym, _ in handed}
    out: dict[Key, list[BarDiff]] = {}
    for k in sorted(set(made) | set(handed)):
        ex, sym, m = k
        if (ex, sym) not in with_bars:
            continue
        lv = handed.get(k)
        tk, n = made.get(k, (None, 0))
        if (
            lv is not None
            and tk is not None
            and all(abs(a - b) <= 1e-9 for a, b in zip(lv, tk, strict=True))
        ):
            continue
        out.setdefault((ex, sym), []).append(BarDiff(ex, sym, m, lv, tk, n))
    return out


def bar_cause(
    diffs: dict[Key, list[BarDiff]], watched: Iterable[Key], since_ns: int, at_ns: int
) -> str:
    """What a decision made at ``at_ns`` by one side alone is put to: the latest differing
    bar of a watched instrument that ended after ``since_ns`` (when the sides last held the
    same positions) and by ``at_ns``; "" when there is none."""
    found = [d for k in watched for d in diffs.get(k, ()) if since_ns < d.end_ns <= at_ns]
    if not found:
        return ""
    last = max(found, key=lambda d: (d.end_ns, d.symbol))
    more = f"; {len(found)} bars differed since the sides last held alike" if len(found) > 1 else ""
    return f"a bar that differed: {last.said()}{more}"
