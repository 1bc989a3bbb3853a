"""Settlement at expiry in the router's books: a position held through its contract's
expiry is closed as the exchange settles it (``mytrading/domain/settlement.py``), as fills marked
``settlement`` (``cash``, ``physical``, and ``delivery`` for the shares a physically
settled contract leaves), journaled and numbered like every fill, so the books, risk, the
strategy and the reconciler see settlement as settlement, not as a fill that went missing
while the broker's position book went flat.

The final settlement price is the underlying's last price of the expiry day (the index's
close; a stock's, else its future of that expiry), from the ticks the router watches: the
underlying of every derivative held is watched from the moment it is first held. When the
session of the expiry day has closed on the market clock (a later day, or past the close),
each position in the expired contract settles once; a fill, not a state, so a restart
replays it from the journal and never settles twice. Without a price of the expiry day
(the router was down through its close), nothing is settled: it says so once, and the
reconciler's mismatch against the broker's book stands until an operator looks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST, Instrument, RefData, RefDataError
from mytrading.domain.settlement import (
    expired,
    final_price_places,
    no_final_price,
    settle_legs,
    settled_through,
    settlement_fill,
    settlement_id,
    settlement_time,
)
from mytrading.messaging import wire
from mytrading.router.books import BookKey

KEEP_DAYS = 6  # a price per underlying and date, for this many dates


class ExpirySettler:
    def __init__(self, refdata: RefData, watch: Callable[[str, str], None]) -> None:
        self.refdata = refdata
        self._watch = watch
        self.finals: dict[tuple[str, str], dict[date, float]] = {}
        self._watched: set[tuple[str, str]] = set()
        # contracts held past expiry without a final price: what is said of each
        self.missing: dict[str, str] = {}

    def held(self, exchange: str, symbol: str) -> None:
        """A symbol first held: a derivative's underlying is watched for its final price."""
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError:
            return
        if inst.kind not in ("FUT", "CE", "PE") or inst.expiry is None:
            return
        for key in final_price_places(self.refdata, inst):
            if key not in self._watched:
                self._watched.add(key)
                self._watch(*key)

    def on_tick(self, tick: wire.Tick) -> None:
        key = (tick.exchange, tick.symbol)
        if key not in self._watched:
            return
        day = datetime.fromtimestamp(tick.exch_ns / 1e9, IST).date()
        prices = self.finals.setdefault(key, {})
        prices[day] = tick.ltp
        if len(prices) > KEEP_DAYS:
            del prices[min(prices)]

    def due(self, ledger: Ledger[BookKey], now: datetime) -> list[wire.Fill]:
        """The settlement fills of every position whose contract's expiry session has
        closed by ``now`` (unnumbered: ``fill_no`` 0; the caller numbers and books them)."""
        through, _ = settled_through(self.refdata.calendar, now)
        out: list[wire.Fill] = []
        for (strategy, ex, sym, prod, account), p in ledger.positions.items():
            inst = expired(self.refdata, ex, sym, through) if p.qty else None
            if inst is None or inst.expiry is None:
                continue
            legs = settle_legs(self.refdata, inst, p.qty, prod, self.final_price(inst))
            if legs is None:
                self.missing[sym] = no_final_price(inst)
                continue
            self.missing.pop(sym, None)
            at = int(settlement_time(self.refdata.calendar, inst.expiry).timestamp() * 1e9)
            base = settlement_id(sym, prod, inst.expiry, strategy, account)
            out.extend(
                settlement_fill(strategy, leg.where, leg.product, leg.signed, leg.price,
                                leg.how, at, base + leg.suffix, account=account)
                for leg in legs
            )  # fmt: skip
        return out

    def final_price(self, inst: Instrument) -> float | None:
        """The underlying's last price seen on ``inst``'s expiry day, if one was."""
        assert inst.expiry is not None
        for key in final_price_places(self.refdata, inst):
            price = self.finals.get(key, {}).get(inst.expiry)
            if price is not None:
                return price
        return None
