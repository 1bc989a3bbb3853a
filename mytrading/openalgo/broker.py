"""What the router needs from a broker: the adapter Protocol, and the values it answers
with.

``OpenAlgoAdapter`` (``openalgo/orders.py``) implements it over OpenAlgo's REST API and
is what every lane of the router holds, the in-process simulator's included (its REST
calls go to the simulated venue without a socket). ``sim/matching.py`` and the backtest's
fills answer the three order calls with the same ``PlaceResult``. What the books say
comes back as reports (``OrderReport``, ``FillReport``, ``PositionReport``): a broker's
rows are read in its adapter and nowhere else, so a change in its replies is one
module's change. The table in ``BrokerAdapter``'s docstring says what each call returns.

A broker's order statuses are mapped to our order states (``orders/state.py``) here and
nowhere else (``broker_state``): the live router's table, the backtest's venue and the
simulator read a broker's word through it. OpenAlgo passes on some brokers' own words
(``canceled``, ``filled``, ``pending``, ``expired``); ``status_of`` says them as OpenAlgo's
set does; a status outside that set (a broker's "validation pending") is an order still
working there.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec

from mytrading.domain import PriceType
from mytrading.messaging import wire
from mytrading.openalgo.replies import Failure
from mytrading.orders.state import BROKER_STATES, OrderState

# OpenAlgo's order statuses, as a broker (the simulator included) reports them
BrokerStatus = Literal["open", "trigger pending", "complete", "cancelled", "rejected"]
RESTING: frozenset[str] = frozenset({"open", "trigger pending"})  # at the exchange, not over

STATUS_MAP = {  # brokers' own words OpenAlgo passes on, in its set's words
    "canceled": "cancelled",
    "filled": "complete",
    "pending": "open",
    "expired": "cancelled",
}


def status_of(v: Any) -> str:
    """A broker's status in OpenAlgo's words, lowercase."""
    s = str(v or "").strip().lower()
    return STATUS_MAP.get(s, s)


# a broker's word as our state, for the words OpenAlgo's set and STATUS_MAP name (one
# lookup for the common case; anything else is read through ``status_of``)
_STATE_OF: dict[str, OrderState] = {s.value: s for s in BROKER_STATES} | {
    word: OrderState(ours) for word, ours in STATUS_MAP.items()
}


def broker_state(status: str, filled: int) -> OrderState:
    """The state a broker's reported status puts an order in: ``partial`` for an open
    order with a part filled; a status outside OpenAlgo's set is an order still working
    there (``open``)."""
    state = _STATE_OF.get(status)
    if state is None:
        state = _STATE_OF.get(status_of(status), OrderState.OPEN)
    return OrderState.PARTIAL if filled and state is OrderState.OPEN else state


SESSION_EXPIRED = "broker session expired"
# An order whose placement may or may not have reached the broker is *absent* (certainly
# never placed) only after this many successful reads of its order book taken after the
# call, none showing it, over at least this long (a broker's book can lag its orders)
ABSENT_READS = 3
ABSENT_MIN_S = 30.0


def expired_reply(code: int, message: str) -> bool:
    """Is this failure the broker's answer for a revoked session (OpenAlgo's daily expiry,
    a logout) or a wrong key: the same 403, which no call can get past either? Asked of a
    ``PlaceResult``'s status and message, or of a read's ``ConnectionError`` text."""
    return code == 403 and "invalid openalgo apikey" in message.lower()


class Outcome(enum.Enum):
    """What became of one order call, which decides what the router does next."""

    ACCEPTED = "accepted"  # the broker took it (``orderid`` names it)
    REJECTED = "rejected"  # the broker refused it: final, nothing to look for
    RETRY = "retry"  # it certainly never reached the broker: it may be sent again
    UNKNOWN = "unknown"  # it may or may not be at the broker: never sent again


class PlaceResult(msgspec.Struct, frozen=True, gc=False):
    outcome: Outcome
    orderid: str = ""
    message: str = ""
    http_status: int = 200
    retry_after_s: float = 0.0  # a 429's retry_after (``RETRY`` only)
    # the broker did not answer the call (a timeout, an ambiguous 5xx), whatever the order
    # book then said of the order: the rest of a batch waits (``router/lanes.py``)
    unanswered: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    @classmethod
    def accepted(cls, orderid: str) -> PlaceResult:
        return cls(Outcome.ACCEPTED, orderid=orderid)

    @classmethod
    def rejected(cls, message: str, http_status: int = 400) -> PlaceResult:
        return cls(Outcome.REJECTED, message=message, http_status=http_status)


class OrderEvent(msgspec.Struct, frozen=True, gc=False):
    """A change of a broker order's state (OpenAlgo ``order_update``)."""

    orderid: str
    status: str  # OpenAlgo order_status: open, trigger pending, complete, cancelled, rejected
    filled_quantity: int
    average_price: float
    rejection_reason: str = ""


class TradeEvent(msgspec.Struct, frozen=True, gc=False):
    orderid: str
    tradeid: str
    quantity: int
    price: float
    ts_ns: int


Events = list[OrderEvent | TradeEvent]


class OrderReport(msgspec.Struct, frozen=True, gc=False):
    """One order as the broker's order book (or a pushed update) shows it, already read:
    numbers as numbers, the status normalised to OpenAlgo's lowercase set, the time as
    epoch seconds. What a router, its recovery or the reconciler may know of a broker
    order; the rows themselves stay in the adapter."""

    broker_id: str
    exchange: str
    symbol: str
    action: str  # BUY / SELL as the broker wrote it (upper case; "" if it did not)
    quantity: int
    pricetype: str  # MARKET, LIMIT, SL, SL-M as written ("" if it did not say)
    product: str  # MIS, NRML, CNC as written
    status: str  # open, trigger pending, complete, cancelled, rejected ("" not said)
    filled: int | None  # None: the row does not say (a live order book: see the trades)
    avg_price: float
    price: float = 0.0
    trigger_price: float = 0.0
    placed_s: float | None = None  # the broker's time of the order, if it gave one
    strategy: str | None = None  # the strategy tag it carries, if any
    reason: str = ""  # a rejection's reason


class FillReport(msgspec.Struct, frozen=True, gc=False):
    """One trade of the broker's trade book."""

    broker_id: str  # the order it filled
    quantity: int
    price: float


@dataclass(frozen=True)
class BrokerBooks:
    """An account's order and trade books, read together."""

    orders: dict[str, OrderReport]  # by broker id
    fills: list[FillReport]

    def filled(self) -> dict[str, tuple[int, float]]:
        """(quantity, value) traded per broker order id."""
        out: dict[str, tuple[int, float]] = {}
        for f in self.fills:
            q, v = out.get(f.broker_id, (0, 0.0))
            out[f.broker_id] = (q + f.quantity, v + f.quantity * f.price)
        return out


PositionReport = wire.BrokerPosition  # one row of the position book (it travels to risk)


class BrokerAdapter(Protocol):
    """Everything a router lane asks of one account's broker.

    ==================  ========  ===========================================================
    call                required  what the router relies on
    ==================  ========  ===========================================================
    place_order         yes       one call, never repeated by the adapter; ``UNKNOWN`` when
                                  it may have reached the broker and was not found there
    cancel_order        yes       by broker id; ``REJECTED`` when the order is not working
    modify_order        yes       by broker id, new type/price/trigger/quantity
    poll                yes       events of tracked orders from the order book, and the
                                  unknown orders it found there or knows to be absent
                                  (``ABSENT_READS`` good reads over ``ABSENT_MIN_S``)
    unresolved          yes       how many unknown orders it still looks for (the router
                                  reads the order book more often meanwhile)
    claim               yes       the reconciler saw an unknown order of ours as this
                                  broker id: taken at the next poll if the row matches
    on_order_update     yes       one pushed ``order_update``; an order not tracked yet is
                                  kept until its placement is answered
    recover / remember  yes       after a restart: take up journaled orders, never adopt
                                  a broker id already ours
    positionbook        yes       ``PositionReport``s; raises ``ConnectionError`` when it
                                  cannot be read
    funds               yes       ``wire.Funds``; raises ``ConnectionError`` likewise
    ping                yes       the session probe: None when the broker answers
    books               yes       ``BrokerBooks`` (``OrderReport`` by broker id and the
                                  ``FillReport``s), for settling a damaged journal and
                                  for the reconciler; None when either cannot be read
    counts              yes       the adapter's own counters, shown in the router's status
    close               yes       its connection released (a daemon's teardown)
    margin_per_lot      optional  None where the broker does not answer margin queries
    on_tick             optional  only a venue that fills locally uses market data;
                                  others return ``[]``
    ==================  ========  ===========================================================

    Calls are made with the lane's lock held, from the lane's worker thread (the three
    order calls) or the router's thread (everything else), never two at once.
    """

    counts: dict[str, int]
    # set by the router: whether its order updates are pushed right now (then a new
    # order's first state comes from the push), and an instrument's (tick, trading unit)
    # (a fill's part derived from rounded averages is priced exactly where it can be)
    pushing: Callable[[], bool]
    steps_of: Callable[[str, str], tuple[float, int]] | None
    absent_s: float  # an unknown order is absent after ABSENT_READS good reads over this long

    def place_order(self, order: wire.Order) -> tuple[PlaceResult, Events]:
        """Send one order; return the broker's answer and any events it caused at once."""
        ...

    def cancel_order(self, orderid: str) -> tuple[PlaceResult, Events]: ...

    def modify_order(
        self, orderid: str, pricetype: PriceType, price: float, trigger_price: float, quantity: int
    ) -> tuple[PlaceResult, Events]: ...

    def poll(self) -> tuple[Events, list[tuple[wire.Order, str, str]]]:
        """(events of tracked orders, [(order, "found" | "absent", broker id)] for the
        unknown orders resolved)."""
        ...

    def on_order_update(self, msg: dict[str, Any]) -> Events: ...

    def unresolved(self) -> int:
        """Orders whose placement may or may not have reached the broker, still looked for."""
        ...

    def claim(self, order_id: str, broker_id: str) -> bool:
        """Our unknown order ``order_id`` is the broker's ``broker_id`` (the reconciler
        matched them): False when it is not unknown here or the id is ours already."""
        ...

    def on_tick(self, tick: wire.Tick) -> Events:
        """Market data for brokers that fill locally (the simulator); live adapters ignore it."""
        ...

    def positionbook(self) -> list[PositionReport]: ...

    def funds(self) -> wire.Funds: ...

    def ping(self) -> Failure | None: ...

    def books(self) -> BrokerBooks | None:
        """The order and trade books, read, or None when either cannot be read."""
        ...

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

    def close(self) -> None:
        """Release the adapter's connection."""
        ...


def order_update(
    o: wire.Order,
    status: wire.OrderStatus,
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
        status=status,
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
