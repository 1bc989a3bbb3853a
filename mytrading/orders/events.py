"""A broker's events applied to an order tracker: one way for the live router and the
backtest's venue, so the two cannot drift (they had: the backtest's copy booked a trade
id twice and took a move no order can make without a word).

``BrokerEvents`` takes what a broker said of orders (``OrderEvent``, ``TradeEvent``:
``openalgo/broker.py``) and the outcome of a modify or cancel, and keeps them in the
tracker: each trade booked once (by account and trade id), a move the order's states
do not allow refused, counted and said, an event for an order we did not send said once
per broker id. What keeping means is the owner's: the router journals and publishes
(``router/daemon.py``), the backtest's venue hands the messages to its listener.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from mytrading.openalgo.broker import OrderEvent, TradeEvent, broker_state
from mytrading.orders.state import OrderState
from mytrading.orders.tracker import OrderTracker, TrackedOrder

NOT_OURS_KEPT = 1000  # broker ids of events for orders not ours, each said once
S = OrderState

Events = list[OrderEvent | TradeEvent]


class BrokerEvents:
    def __init__(
        self,
        tracker: OrderTracker,
        *,
        book: Callable[[TrackedOrder, TradeEvent], None],
        publish: Callable[[TrackedOrder], None],
        seen: Callable[[str, str], bool],
        error: Callable[..., None],
        warn: Callable[..., None],
        counts: collections.Counter[str],
    ) -> None:
        self.tracker = tracker
        self._book = book  # a new trade of an order: number it, keep it, say it
        self._publish = publish  # an order's state, as its sender hears it
        self._seen = seen  # (account, trade id) booked already
        self._error = error  # an error, counted
        self._warn = warn
        self.counts = counts
        self.not_ours: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()

    def apply(self, account: str, events: Events) -> None:
        """What ``account``'s broker said of its orders, in the order it said it."""
        for ev in events:
            jo = self.tracker.of_broker(account, ev.orderid)
            if jo is None:
                self._not_ours(account, ev.orderid)
                continue
            if isinstance(ev, TradeEvent):
                self.fill(jo, ev)  # a late fill of a finished order is booked too
                continue
            was = jo.state
            state = broker_state(ev.status, ev.filled_quantity)
            reason = ev.rejection_reason or jo.reason
            if not self.tracker.report(jo, state, ev.filled_quantity, ev.average_price, reason):
                self.counts["impossible_changes"] += 1
                self._error("the broker reported a change this order cannot make; kept "
                            f"{was}", order_id=jo.order.order_id, broker_status=ev.status,
                            account=account)  # fmt: skip
                continue
            if jo.state != was or not jo.final:
                self._publish(jo)

    def fill(self, jo: TrackedOrder, trade: TradeEvent) -> None:
        """One trade of ``jo``, booked once: a repeat (a push and a poll of one trade, a
        restart's read of the broker's books) is counted, not booked again."""
        if self._seen(jo.order.account, trade.tradeid):
            self.counts["fills_seen_twice"] += 1
            self._warn("a fill already booked; not counted again", fill_id=trade.tradeid)
            return
        self._book(jo, trade)

    def amended(
        self, account: str, jo: TrackedOrder, target: TrackedOrder, ok: bool, message: str,
        events: Events,
    ) -> None:  # fmt: skip
        """A modify or cancel (``jo``) of the working order ``target`` was answered. The
        outcome reaches the strategy as updates of the working order (a new quantity or
        price is said at once: brokers push no update for it); the amend itself is done
        (complete) or refused (rejected), after them."""
        msg = jo.order
        if msg.op == "modify" and ok:
            self.tracker.amend(target, msg)
            self._publish(target)
        self.counts[f"{msg.op}_{'ok' if ok else 'refused'}"] += 1
        if ok:
            self.tracker.set(jo, S.COMPLETE)
        else:
            self.tracker.set(jo, S.REJECTED, reason=f"{msg.op}: {message}")
        self._publish(jo)
        self.apply(account, events)

    def _not_ours(self, account: str, broker_id: str) -> None:
        self.counts["events_not_ours"] += 1
        if (account, broker_id) in self.not_ours:
            return  # said once per broker id
        self.not_ours[(account, broker_id)] = None
        while len(self.not_ours) > NOT_OURS_KEPT:
            self.not_ours.popitem(last=False)
        self._error("event for an order we did not send", broker_id=broker_id, account=account)
