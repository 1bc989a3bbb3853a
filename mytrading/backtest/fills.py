"""The fill model on bars: the simulated broker's books, acceptance rules and fills, with
prices taken from the next bar instead of the next tick.

An order is first looked at on the first bar that **starts after it was placed**: a
strategy that decides on bar *t* (it sees *t* only once *t* has closed) fills on *t+1* at
the earliest. On that bar, with slippage ``s`` ticks (worse for the order: up for a BUY):

* MARKET fills at the bar's open + s.
* LIMIT BUY at P: the open if the open is at or below P (a gap through the limit fills
  at the better open), else P if the bar's low reaches P. SELL mirrors it.
* SL-M BUY with trigger T: the open + s if the open is at or above T (a gap), else T + s
  if the high reaches T. SELL mirrors it.
* SL BUY with trigger T and limit P (P >= T): triggered as SL-M; at the open it fills at
  the open if the open is within P, else it rests as a LIMIT at P from the next bar; a
  trigger inside the bar fills at T. SELL mirrors it.
* Every fill is a whole fill, stamped with the bar's start. An order placed while bar
  *t+1*'s fills are handled (a bracket's stop after its entry fills) is first looked at
  on *t+2*: nothing inside a bar is known, so nothing is assumed about its path.

Validation (lot multiples, products, prices) is the simulated broker's, unchanged.
"""

from __future__ import annotations

from mytrading.domain import PriceType
from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent, PlaceResult
from mytrading.sim.matching import Event, SimBroker, SimOrder


class BarBroker(SimBroker):
    def __init__(self, refdata: RefData, clock: MarketClock, slippage_ticks: int = 0) -> None:
        super().__init__(refdata, clock, slippage_ticks, "sandbox", False)
        self.placed_ns: dict[str, int] = {}  # order id -> market time it was placed
        self._bar_tick = wire.Tick(
            exchange="", symbol="", ltp=0.0, bid=0.0, ask=0.0, bid_qty=0, ask_qty=0, volume=0
        )

    def place_order(self, order: wire.Order) -> tuple[PlaceResult, list[Event]]:
        result, events = super().place_order(order)
        if result.ok:
            self.placed_ns[result.orderid] = self.clock.now_ns()
        return result, events

    def modify_order(
        self, orderid: str, pricetype: PriceType, price: float, trigger_price: float, quantity: int
    ) -> tuple[PlaceResult, list[Event]]:
        result, events = super().modify_order(orderid, pricetype, price, trigger_price, quantity)
        if result.ok:  # the changed order is a new decision: from the next bar on
            self.placed_ns[orderid] = self.clock.now_ns()
        return result, events

    def _evaluate(self, so: SimOrder, q: wire.Tick, at_placement: bool) -> list[Event]:
        return []  # nothing fills at placement or on a quote: only ``on_bar`` fills

    def on_bar(self, bar: wire.Bar) -> list[Event]:
        """Fill what the bar reaches; keep the bar's close as the quote (for validation)."""
        key = (bar.exchange, bar.symbol)
        ids = self.live.get(key)
        events: list[Event] = []
        if ids:
            q = self._bar_tick
            q.exch_ns = bar.start_ns
            for oid in list(ids):
                so = self.orders[oid]
                if self.placed_ns.get(oid, 0) <= bar.start_ns:
                    events += self._on_bar(so, bar, q)
        if key not in self.quotes:  # validation asks only that a quote exists
            self.quotes[key] = self._quote(bar)
        return events

    def _quote(self, bar: wire.Bar) -> wire.Tick:
        return wire.Tick(
            exchange=bar.exchange,
            symbol=bar.symbol,
            ltp=bar.close,
            bid=bar.close,
            ask=bar.close,
            bid_qty=0,
            ask_qty=0,
            volume=bar.volume,
            exch_ns=bar.start_ns,
        )

    def _on_bar(self, so: SimOrder, bar: wire.Bar, q: wire.Tick) -> list[Event]:
        buy = so.action == "BUY"
        o = bar.open
        if so.pricetype == "MARKET":
            return self._fill(so, so.quantity, self._slip(so, o), q)
        if so.pricetype in ("SL", "SL-M") and not so.triggered:
            t = so.trigger_price
            if (buy and o >= t) or (not buy and o <= t):
                at = o  # gapped through the trigger
            elif (buy and bar.high >= t) or (not buy and bar.low <= t):
                at = t
            else:
                return []
            so.triggered = True
            if so.pricetype == "SL-M":
                return self._fill(so, so.quantity, self._slip(so, at), q)
            if (buy and at <= so.price) or (not buy and at >= so.price):
                return self._fill(so, so.quantity, at, q)
            so.status = "open"  # past its limit at the open: rests as a limit order
            self.placed_ns[so.orderid] = bar.start_ns  # looked at again from the next bar
            return [OrderEvent(so.orderid, "open", 0, 0.0)]
        p = so.price  # LIMIT, or a triggered SL resting at its limit
        if (buy and o <= p) or (not buy and o >= p):
            return self._fill(so, so.quantity, o, q)
        if (buy and bar.low <= p) or (not buy and bar.high >= p):
            return self._fill(so, so.quantity, p, q)
        return []
