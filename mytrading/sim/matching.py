"""A simulated broker that fills against the simulated market like OpenAlgo's sandbox.

Acceptance and fill rules follow docs/openalgo.md §7:

* LIMIT and SL need price > 0; SL and SL-M need trigger > 0; NRML is refused on NSE/BSE
  and CNC on derivative exchanges; F&O quantity must be a lot multiple; a MARKET order
  with no quote is refused.
* MARKET fills at once at the ask (BUY) or bid (SELL), falling back to the LTP.
* A marketable LIMIT fills at once at the LTP; a resting LIMIT fills at its limit price
  when the LTP crosses it.
* SL and SL-M wait as ``trigger pending``; a BUY triggers at LTP >= trigger, a SELL at
  LTP <= trigger. SL-M then fills at the LTP; SL fills at the LTP when its limit allows,
  else it rests as an ``open`` limit order.
* Every fill is a full fill. ``sim_slippage_ticks`` worsens MARKET fills by that many ticks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from mytrading.domain import Action, PriceType, Product
from mytrading.domain.clock import MarketClock
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.messaging import wire
from mytrading.openalgo.broker import RESTING, BrokerStatus, OrderEvent, PlaceResult, TradeEvent

DERIVATIVE_EXCHANGES = frozenset({"NFO", "BFO", "CDS", "BCD", "MCX", "NCO"})
CASH_EXCHANGES = frozenset({"NSE", "BSE"})

Event = OrderEvent | TradeEvent
DAY_NS = 86_400 * 10**9
IST_OFFSET_NS = 19_800 * 10**9  # +05:30: India has no daylight saving


@dataclass
class SimOrder:
    orderid: str
    exchange: str
    symbol: str
    action: Action
    quantity: int
    pricetype: PriceType
    product: Product
    price: float
    trigger_price: float
    status: BrokerStatus
    filled: int = 0
    avg: float = 0.0
    triggered: bool = False


class SimBroker:
    def __init__(
        self,
        refdata: RefData,
        clock: MarketClock,
        slippage_ticks: int = 0,
        model: str = "sandbox",
        partial_fills: bool = False,
        capital: float = 10_000_000.0,
    ) -> None:
        if model not in ("sandbox", "realistic"):
            raise ValueError(f"fill model {model!r}: allowed sandbox, realistic")
        self.refdata = refdata
        self.clock = clock
        self.slippage_ticks = slippage_ticks
        self.model = model
        self.partial_fills = partial_fills
        self.capital = capital
        self.quotes: dict[tuple[str, str], wire.Tick] = {}
        self.orders: dict[str, SimOrder] = {}
        self.live: dict[tuple[str, str], list[str]] = {}  # working order ids per instrument
        # (exchange, symbol, product) -> net position
        self.ledger: Ledger[tuple[str, str, Product]] = Ledger()
        self.trades = 0
        self._ids = itertools.count(1)
        self._day_no = -1
        self._day = ""

    # ---------------------------------------------------------------- adapter API

    def place_order(self, order: wire.Order) -> tuple[PlaceResult, list[Event]]:
        err = self._validate(order)
        if err:
            return PlaceResult.rejected(err, 400), []
        oid = self._next_id()
        so = SimOrder(
            oid,
            order.exchange,
            order.symbol,
            order.action,
            order.quantity,
            order.pricetype,
            order.product,
            order.price,
            order.trigger_price,
            "trigger pending" if order.pricetype in ("SL", "SL-M") else "open",
        )
        self.orders[oid] = so
        self.live.setdefault((so.exchange, so.symbol), []).append(oid)
        events: list[Event] = [OrderEvent(oid, so.status, 0, 0.0)]
        quote = self.quotes.get((so.exchange, so.symbol))
        if quote is not None:
            events += self._evaluate(so, quote, at_placement=True)
        return PlaceResult.accepted(oid), events

    def _working(self, orderid: str) -> SimOrder | PlaceResult:
        """The order if it can still be changed, else the refusal OpenAlgo gives."""
        so = self.orders.get(orderid)
        if so is None:
            return PlaceResult.rejected(f"Order {orderid} not found", 404)
        if so.status not in RESTING:
            return PlaceResult.rejected(f"Order {orderid} is {so.status}", 400)
        return so

    def cancel_order(self, orderid: str) -> tuple[PlaceResult, list[Event]]:
        so = self._working(orderid)
        if isinstance(so, PlaceResult):
            return so, []
        so.status = "cancelled"
        self._unlist(so)
        return PlaceResult.accepted(orderid), [OrderEvent(orderid, "cancelled", so.filled, so.avg)]

    def modify_order(
        self, orderid: str, pricetype: PriceType, price: float, trigger_price: float, quantity: int
    ) -> tuple[PlaceResult, list[Event]]:
        """Change a working order's type, prices or quantity (OpenAlgo ``modifyorder``)."""
        so = self._working(orderid)
        if isinstance(so, PlaceResult):
            return so, []
        probe = wire.Order(
            order_id="",
            intent_id="",
            strategy="",
            exchange=so.exchange,
            symbol=so.symbol,
            action=so.action,
            quantity=quantity,
            pricetype=pricetype,
            product=so.product,
            price=price,
            trigger_price=trigger_price,
            approved_by="",
        )
        err = self._validate(probe)
        if err:
            return PlaceResult.rejected(err, 400), []
        so.pricetype, so.price, so.trigger_price, so.quantity = (
            pricetype,
            price,
            trigger_price,
            quantity,
        )
        so.triggered = False
        so.status = "trigger pending" if pricetype in ("SL", "SL-M") else "open"
        events: list[Event] = [OrderEvent(orderid, so.status, 0, 0.0)]
        quote = self.quotes.get((so.exchange, so.symbol))
        if quote is not None:
            events += self._evaluate(so, quote, at_placement=True)
        return PlaceResult.accepted(orderid), events

    def on_tick(self, tick: wire.Tick) -> list[Event]:
        key = (tick.exchange, tick.symbol)
        self.quotes[key] = tick
        ids = self.live.get(key)
        if not ids:
            return []
        events: list[Event] = []
        for oid in list(ids):
            events += self._evaluate(self.orders[oid], tick, at_placement=False)
        return events

    def funds(self) -> wire.Funds:
        """The in-process broker keeps no cash: it reports ``capital`` plus realized P&L
        as available (the OpenAlgo simulator server models margin use; use that path to
        see margin limits bite)."""
        realized = sum(p.realized for p in self.ledger.positions.values())
        unrealized = sum(p.unrealized() for p in self.ledger.positions.values())
        return wire.Funds(
            available=self.capital + realized,
            utilised=0.0,
            realized=realized,
            unrealized=unrealized,
        )

    def recover(
        self, order: wire.Order, broker_id: str, filled: int, avg: float, since_s: float
    ) -> str | None:
        """An in-process book dies with the router: a journaled order cannot be matched."""
        so = self.orders.get(broker_id)
        return broker_id if so is not None else None

    def remember(self, broker_ids: set[str]) -> None:
        """Ids end in a counter that restarts with the process: continue after the journal's
        (a reused id would be mistaken for an order of before the restart)."""
        nums = [int(b[-8:]) for b in broker_ids if len(b) == 14 and b.isdigit()]
        if nums:
            self._ids = itertools.count(max(nums) + 1)

    def margin_per_lot(
        self, exchange: str, symbol: str, action: str, product: str, lot: int
    ) -> float | None:
        return None  # the in-process broker has no margin model: risk uses its table

    def positionbook(self) -> list[wire.BrokerPosition]:
        return [
            wire.BrokerPosition(ex, sym, prod, p.qty, round(p.avg, 2))
            for (ex, sym, prod), p in sorted(self.ledger.positions.items())
        ]

    # ------------------------------------------------------------------ internals

    def _next_id(self) -> str:
        # Sandbox ids: YYMMDD + a running number, 14 digits in all.
        day_no = (self.clock.now_ns() + IST_OFFSET_NS) // DAY_NS
        if day_no != self._day_no:
            self._day_no = day_no
            self._day = datetime.fromtimestamp(self.clock.now_ns() / 1e9, IST).strftime("%y%m%d")
        return self._day + str(next(self._ids)).zfill(8)

    def _validate(self, o: wire.Order) -> str:
        try:
            inst = self.refdata.instrument(o.exchange, o.symbol)
        except RefDataError as exc:
            return f"Symbol '{o.symbol}' not found for exchange '{o.exchange}': {exc}"
        if not inst.tradable:
            return f"{o.symbol} on {o.exchange} is an index and cannot be traded"
        if o.quantity <= 0:
            return "Quantity must be positive"
        if o.exchange in DERIVATIVE_EXCHANGES and o.quantity % inst.lot_size:
            return f"Quantity must be a multiple of lot size {inst.lot_size}"
        if o.product == "NRML" and o.exchange in CASH_EXCHANGES:
            return "NRML product is not allowed on cash exchanges"
        if o.product == "CNC" and o.exchange in DERIVATIVE_EXCHANGES:
            return "CNC product is not allowed on derivative exchanges"
        if o.pricetype in ("LIMIT", "SL") and o.price <= 0:
            return f"Price must be greater than 0 for {o.pricetype} orders"
        if o.pricetype in ("SL", "SL-M") and o.trigger_price <= 0:
            return f"Trigger price must be greater than 0 for {o.pricetype} orders"
        if o.pricetype == "MARKET" and (o.exchange, o.symbol) not in self.quotes:
            return f"Cannot place MARKET order for {o.symbol}: unable to fetch current price"
        return ""

    def _evaluate(self, so: SimOrder, q: wire.Tick, at_placement: bool) -> list[Event]:
        if self.model == "realistic":
            return self._evaluate_realistic(so, q, at_placement)
        buy = so.action == "BUY"
        if so.pricetype == "MARKET":
            px = (q.ask if buy else q.bid) or q.ltp
            return self._fill(so, so.quantity - so.filled, self._slip(so, px), q)
        if so.pricetype in ("SL", "SL-M") and not so.triggered:
            if not (q.ltp >= so.trigger_price if buy else q.ltp <= so.trigger_price):
                return []
            so.triggered = True
            if so.pricetype == "SL-M":
                return self._fill(so, so.quantity, q.ltp, q)
            if q.ltp <= so.price if buy else q.ltp >= so.price:
                return self._fill(so, so.quantity, q.ltp, q)
            so.status = "open"  # triggered, limit not satisfiable: rests as a limit order
            return [OrderEvent(so.orderid, "open", 0, 0.0)]
        # LIMIT, or a triggered SL resting as a limit
        crossed = q.ltp <= so.price if buy else q.ltp >= so.price
        if not crossed:
            return []
        return self._fill(so, so.quantity, q.ltp if at_placement else so.price, q)

    def _evaluate_realistic(self, so: SimOrder, q: wire.Tick, at_placement: bool) -> list[Event]:
        """Fills at the touch, book walking for size, partial fills on a thin touch.

        MARKET (and a triggered SL-M) takes the whole quantity, walking five synthetic
        levels of the touch size, each a tick worse, plus the configured slippage. A
        marketable limit takes what the touch offers at the touch price; a resting limit
        fills at its own price when the touch reaches it. With partial fills on, a limit
        takes at most the touch quantity per quote and keeps working for the rest.
        """
        buy = so.action == "BUY"
        touch = (q.ask if buy else q.bid) or q.ltp
        if so.pricetype in ("SL", "SL-M") and not so.triggered:
            if not (q.ltp >= so.trigger_price if buy else q.ltp <= so.trigger_price):
                return []
            so.triggered = True
            at_placement = True  # on triggering it takes liquidity like a new order
            if so.pricetype == "SL":
                so.status = "open"
        if so.pricetype in ("MARKET", "SL-M"):
            events: list[Event] = []
            for qty, price in self._walk(so, q, so.quantity - so.filled):
                events += self._fill(so, qty, self._slip(so, price), q)
            return events
        crossed = touch <= so.price if buy else touch >= so.price
        if not crossed:
            return (
                [OrderEvent(so.orderid, "open", 0, 0.0)]
                if so.pricetype == "SL" and at_placement
                else []
            )
        left = so.quantity - so.filled
        avail = (q.ask_qty if buy else q.bid_qty) or left
        qty = min(left, avail) if self.partial_fills else left
        return self._fill(so, qty, touch if at_placement else so.price, q)

    def _walk(self, so: SimOrder, q: wire.Tick, qty: int) -> list[tuple[int, float]]:
        """(quantity, price) per level taking ``qty`` through five levels of the touch size,
        each a tick worse; whatever is left after four levels takes the fifth."""
        buy = so.action == "BUY"
        touch = (q.ask if buy else q.bid) or q.ltp
        size = (q.ask_qty if buy else q.bid_qty) or qty
        tick = self.refdata.instrument(so.exchange, so.symbol).tick_size
        fills, left, level = [], qty, 0
        while left > 0:
            take = left if level == 4 else min(left, size)
            fills.append((take, touch + (level * tick if buy else -level * tick)))
            left -= take
            level += 1
        return fills

    def _slip(self, so: SimOrder, price: float) -> float:
        slip = self.slippage_ticks * self.refdata.instrument(so.exchange, so.symbol).tick_size
        return price + slip if so.action == "BUY" else price - slip

    def _fill(self, so: SimOrder, qty: int, price: float, q: wire.Tick) -> list[Event]:
        inst = self.refdata.instrument(so.exchange, so.symbol)
        price = inst.round_price(price)
        so.avg = (so.avg * so.filled + price * qty) / (so.filled + qty)
        so.filled += qty
        done = so.filled == so.quantity
        so.status = "complete" if done else "open"
        if done:
            self._unlist(so)
        signed = qty if so.action == "BUY" else -qty
        self.ledger.apply((so.exchange, so.symbol, so.product), signed, price)
        self.trades += 1
        return [
            TradeEvent(so.orderid, f"T{so.orderid}-{self.trades}", qty, price, q.exch_ns),
            OrderEvent(so.orderid, so.status, so.filled, round(so.avg, 2)),
        ]

    def _unlist(self, so: SimOrder) -> None:
        ids = self.live.get((so.exchange, so.symbol))
        if ids and so.orderid in ids:
            ids.remove(so.orderid)
