"""The router's part in a backtest: approved orders to the simulated broker, its answers
back as the ``OrderUpdate`` and ``Fill`` messages the router publishes live.

The broker is ``fills.BarBroker`` (fills on bars) or the simulated broker itself
(``sim/matching.py``, fills on recorded ticks), both behind the adapter interface the
router uses. Each order is kept by the order tracker the live router's table is built on
(``orders/tracker.py``: the same states, moves and fill numbering), and the broker's
events and amend answers are applied by the router's own handling (``orders/events.py``:
each trade booked once, a move no order can make refused and counted). What differs from
the live router is what a single process does not need: no journal, no lanes, no retries
(the simulated broker always answers).
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import structlog

from mytrading.messaging import wire
from mytrading.openalgo.broker import OrderEvent, TradeEvent, fill_of, order_update
from mytrading.orders.events import BrokerEvents
from mytrading.orders.state import OrderState, published
from mytrading.orders.tracker import OrderTracker, TrackedOrder
from mytrading.sim.matching import SimBroker

Listener = Callable[[wire.OrderUpdate | wire.Fill], None]
S = OrderState
log = structlog.get_logger("backtest.venue")


class BacktestVenue:
    def __init__(self, broker: SimBroker, listener: Listener) -> None:
        self.broker = broker
        self._emit = listener
        self.tracker = OrderTracker()
        # broker id -> the account its order named: one simulated broker takes every
        # account's orders here, and its events name only the broker id
        self._account_of: dict[str, str] = {}
        self.counts: collections.Counter[str] = collections.Counter(
            {"placed": 0, "rejected": 0, "fills": 0, "modify": 0, "cancel": 0}
        )
        self._fill_ids: set[tuple[str, str]] = set()  # (account, trade id) booked
        self.events = BrokerEvents(
            self.tracker,
            book=self._fill,
            publish=self._publish,
            seen=lambda account, trade_id: (account, trade_id) in self._fill_ids,
            error=log.error,
            warn=log.warning,
            counts=self.counts,
        )

    def send(self, o: wire.Order) -> None:
        if o.op == "place":
            self._place(o)
        else:
            self._amend(o)

    def status(self, order_id: str) -> wire.OrderStatus:
        """What the latest update of an order said."""
        t = self.tracker.get(order_id)
        return published(t.state) if t is not None else "new"

    def on_events(self, events: list[OrderEvent | TradeEvent]) -> None:
        """The simulated broker's events: one broker for every account, so each event's
        account is the one its order named."""
        for ev in events:
            self.events.apply(self._account_of.get(ev.orderid, ""), [ev])

    def working(self) -> int:
        return self.tracker.working()

    # ------------------------------------------------------------------ internals

    def _place(self, o: wire.Order) -> None:
        t = self.tracker.add(o)
        result, events = self.broker.place_order(o)
        if not result.ok:
            self.counts["rejected"] += 1
            self.tracker.set(t, S.REJECTED, reason=result.message)
            self._publish(t)
            return
        self.counts["placed"] += 1
        self.tracker.set(t, S.SENT)
        self._account_of[result.orderid] = o.account
        self.tracker.at_broker(t, result.orderid)
        self._publish(t)
        self.on_events(events)

    def _amend(self, o: wire.Order) -> None:
        self.counts[o.op] += 1
        t = self.tracker.add(o)
        target = self.tracker.get(o.ref_order_id)
        if target is None or target.final or not target.broker_id:
            self.tracker.set(t, S.REJECTED, reason=f"{o.op}: {o.ref_order_id} is not working")
            self._publish(t)
            return
        if o.op == "cancel":
            result, events = self.broker.cancel_order(target.broker_id)
        else:
            result, events = self.broker.modify_order(
                target.broker_id, o.pricetype, o.price, o.trigger_price, o.quantity
            )
        self.events.amended(o.account, t, target, result.ok, result.message, events)

    def _fill(self, t: TrackedOrder, trade: TradeEvent) -> None:
        self.counts["fills"] += 1
        self._fill_ids.add((t.order.account, trade.tradeid))
        self._emit(fill_of(t.order, trade, self.tracker.next_fill_no()))

    def _publish(self, t: TrackedOrder) -> None:
        self._emit(
            order_update(t.order, published(t.state), t.broker_id, t.filled, t.avg, t.reason)
        )
