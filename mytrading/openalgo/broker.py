"""The broker adapter interface the router talks to.

The simulated broker implements it in-process; the OpenAlgo REST adapter
implements the same calls over HTTP. Field names follow OpenAlgo's order, trade and
position books (docs/openalgo.md §1-2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mytrading import wire


@dataclass(frozen=True)
class PlaceResult:
    ok: bool
    orderid: str = ""
    message: str = ""
    http_status: int = 200
    retry: bool = False  # it certainly did not reach the broker: it may be sent again
    retry_after_s: float = 0.0  # a 429's retry_after


@dataclass(frozen=True)
class OrderEvent:
    """A change of a broker order's state (OpenAlgo ``order_update``)."""

    orderid: str
    status: str  # OpenAlgo order_status: open, trigger pending, complete, cancelled, rejected
    filled_quantity: int
    average_price: float
    rejection_reason: str = ""


@dataclass(frozen=True)
class TradeEvent:
    orderid: str
    tradeid: str
    quantity: int
    price: float
    ts_ns: int


class BrokerAdapter(Protocol):
    def place_order(self, order: wire.Order) -> tuple[PlaceResult, list[OrderEvent | TradeEvent]]:
        """Send one order; return the broker's answer and any events it caused at once."""
        ...

    def cancel_order(self, orderid: str) -> tuple[PlaceResult, list[OrderEvent | TradeEvent]]: ...

    def modify_order(
        self, orderid: str, pricetype: str, price: float, trigger_price: float, quantity: int
    ) -> tuple[PlaceResult, list[OrderEvent | TradeEvent]]: ...

    def on_tick(self, tick: wire.Tick) -> list[OrderEvent | TradeEvent]:
        """Market data for brokers that fill locally (the simulator); live adapters ignore it."""
        ...

    def positionbook(self) -> list[wire.BrokerPosition]: ...

    def funds(self) -> wire.Funds: ...

    def recover(
        self, order: wire.Order, broker_id: str, filled: int, avg: float, since_s: float
    ) -> str | None:
        """After a router restart: take up a journaled order again. With ``broker_id``, track
        it from its journaled fill state; without one (sent, never answered), look for it at
        the broker. Returns the broker id, or None when it cannot be matched with certainty."""
        ...

    def remember(self, broker_ids: set[str]) -> None:
        """Broker ids already ours (from the journal): never matched to another order."""
        ...

    def margin_per_lot(
        self, exchange: str, symbol: str, action: str, product: str, lot: int
    ) -> float | None: ...


def order_update(
    o: wire.Order,
    status: str,
    broker_id: str = "",
    filled: int = 0,
    avg: float = 0.0,
    reason: str = "",
    sent_ns: int = 0,
) -> wire.OrderUpdate:
    """The update the router publishes for one of its orders (the backtest's venue too)."""
    return wire.OrderUpdate(
        order_id=o.order_id,
        intent_id=o.intent_id,
        strategy=o.strategy,
        exchange=o.exchange,
        symbol=o.symbol,
        action=o.action,
        quantity=o.quantity,
        status=status,  # type: ignore[arg-type]
        broker_order_id=broker_id,
        filled_qty=filled,
        avg_price=avg,
        reason=reason,
        origin_ns=o.origin_ns,
        sent_ns=sent_ns,
        part=o.part,
        parts=o.parts,
        account=o.account,
    )


def fill_of(o: wire.Order, t: TradeEvent, fill_no: int) -> wire.Fill:
    """Our fill message for a broker's trade of order ``o``."""
    return wire.Fill(
        fill_no=fill_no,
        fill_id=t.tradeid,
        order_id=o.order_id,
        broker_order_id=t.orderid,
        strategy=o.strategy,
        exchange=o.exchange,
        symbol=o.symbol,
        product=o.product,
        action=o.action,
        quantity=t.quantity,
        price=t.price,
        exch_ns=t.ts_ns,
        account=o.account,
    )
