"""The router's part in a backtest: approved orders to the simulated broker, its answers
back as the ``OrderUpdate`` and ``Fill`` messages the router publishes live.

The broker is ``fills.BarBroker`` (fills on bars) or the simulated broker itself
(``sim/matching.py``, fills on recorded ticks), both behind the adapter interface the
router uses. What differs from the live router is what a single process does not need:
no journal, no lanes, no retries (the simulated broker always answers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from mytrading import wire
from mytrading.openalgo.broker import OrderEvent, TradeEvent, fill_of, order_update
from mytrading.sim.matching import SimBroker

Listener = Callable[[wire.OrderUpdate | wire.Fill], None]


@dataclass
class Working:
    order: wire.Order
    broker_id: str = ""
    status: str = "new"
    filled: int = 0
    avg: float = 0.0
    reason: str = ""


class BacktestVenue:
    def __init__(self, broker: SimBroker, listener: Listener) -> None:
        self.broker = broker
        self._emit = listener
        self.orders: dict[str, Working] = {}  # our order id ->
        self.by_broker: dict[str, str] = {}  # broker id -> our order id
        self.fill_no = 0
        self.counts = {"placed": 0, "rejected": 0, "fills": 0, "modify": 0, "cancel": 0}

    def send(self, o: wire.Order) -> None:
        if o.op == "place":
            self._place(o)
        else:
            self._amend(o)

    def on_events(self, events: list[OrderEvent | TradeEvent]) -> None:
        for ev in events:
            w = self.orders.get(self.by_broker.get(ev.orderid, ""))
            if w is None:
                continue
            if isinstance(ev, TradeEvent):
                self._fill(w, ev)
                continue
            w.status, w.filled, w.avg = ev.status, ev.filled_quantity, ev.average_price
            w.reason = ev.rejection_reason or w.reason
            self._publish(w)

    def working(self) -> int:
        return sum(1 for w in self.orders.values() if w.status not in wire.TERMINAL_STATUSES)

    # ------------------------------------------------------------------ internals

    def _place(self, o: wire.Order) -> None:
        w = self.orders[o.order_id] = Working(o)
        result, events = self.broker.place_order(o)
        if not result.ok:
            self.counts["rejected"] += 1
            w.status, w.reason = "rejected", result.message
            self._publish(w)
            return
        self.counts["placed"] += 1
        w.broker_id, w.status = result.orderid, "open"
        self.by_broker[result.orderid] = o.order_id
        self._publish(w)
        self.on_events(events)

    def _amend(self, o: wire.Order) -> None:
        self.counts[o.op] += 1
        w = self.orders[o.order_id] = Working(o)
        target = self.orders.get(o.ref_order_id)
        if target is None or target.status in wire.TERMINAL_STATUSES:
            w.status, w.reason = "rejected", f"{o.op}: {o.ref_order_id} is not working"
            self._publish(w)
            return
        if o.op == "cancel":
            result, events = self.broker.cancel_order(target.broker_id)
        else:
            result, events = self.broker.modify_order(
                target.broker_id, o.pricetype, o.price, o.trigger_price, o.quantity
            )
            if result.ok:
                target.order = msgspec.structs.replace(
                    target.order,
                    quantity=o.quantity,
                    pricetype=o.pricetype,
                    price=o.price,
                    trigger_price=o.trigger_price,
                )
        w.status = "complete" if result.ok else "rejected"
        w.reason = "" if result.ok else f"{o.op}: {result.message}"
        if not result.ok:
            self._publish(w)
        self.on_events(events)
        if result.ok:  # done: after the working order's own update, as the router says it
            self._publish(w)

    def _fill(self, w: Working, t: TradeEvent) -> None:
        self.fill_no += 1
        self.counts["fills"] += 1
        self._emit(fill_of(w.order, t, self.fill_no))

    def _publish(self, w: Working) -> None:
        self._emit(
            order_update(
                w.order, wire.order_status(w.status), w.broker_id, w.filled, w.avg, w.reason
            )
        )
