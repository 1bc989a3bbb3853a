"""The router's start: replay the journal and settle every order that was in flight
against its broker before any new order is accepted; publish what recovery found once
subscribers are back; carry a finished day's positions into the next.

A mixin of ``RouterDaemon`` (``router/daemon.py``), which owns the state it works on."""

from __future__ import annotations

import collections

from mytrading import wire
from mytrading.bus import Puller
from mytrading.positions import Ledger
from mytrading.router.books import snapshots
from mytrading.router.journal import JournaledOrder, Replay


class Recovery:
    def _recover(self, rep: Replay) -> None:
        """Replay the journal and settle every order in flight against the broker before
        any new order is accepted (the order pipe is opened after this returns)."""
        for c in rep.carried:
            key = (c.strategy, c.exchange, c.symbol, c.product, c.account)
            self.ledger.apply(key, c.quantity, c.avg_price)
            self._watch_marks(key)
        filled: dict[str, tuple[int, float]] = {}
        for f in rep.fills:
            self._book_fill(f)
            q, v = filled.get(f.order_id, (0, 0.0))
            filled[f.order_id] = (q + f.quantity, v + f.quantity * f.price)
        self.fill_no = rep.last_fill_no
        self.orders = rep.orders
        for lane in self.lanes.values():
            lane.broker.remember(
                {
                    jo.broker_id
                    for jo in self.orders.values()
                    if jo.broker_id and jo.order.account == lane.account
                }
            )
        outcome: collections.Counter[str] = collections.Counter()
        for jo in [jo for jo in self.orders.values() if not jo.final]:
            outcome[self._settle(jo, filled.get(jo.order.order_id, (0, 0.0)))] += 1
        for account in {a for a, _ in self.by_broker_id}:
            self._poll(self.lanes[account])  # fills and cancels while we were down
        self.log.info(
            "journal replayed",
            orders=len(self.orders),
            fills=len(rep.fills),
            carried=len(rep.carried),
            torn_bytes=rep.torn_bytes,
            **outcome,
        )
        if rep.torn_bytes:
            self.log.warning("journal: a torn last record was cut", bytes=rep.torn_bytes)

    def _release(self, journaled_fills: list[wire.Fill]) -> None:
        """Subscribers are back: publish the journal's fills (readers drop the numbers they
        have; a crash may have cut the last one's publication), then what recovery held
        back, in order. Only then is new work accepted."""
        held, self._held = self._held or [], None
        for f in journaled_fills:
            self.pub.publish(f"exec.fill.{f.strategy}", f)
        for topic, msg in held:
            self.pub.publish(topic, msg)
        self.orders_in = Puller(self.ctx, self.endpoints["pipe.orders"])
        self.add_puller(self.orders_in, self._on_order, then=self._after_orders)
        self.log.info("accepting orders", republished_fills=len(journaled_fills), held=len(held))

    def _settle(self, jo: JournaledOrder, fills: tuple[int, float]) -> str:
        o = jo.order
        if jo.state == "new":
            self._reject(jo, "router restarted before sending it; not sent")
            return "not_sent"
        if o.op != "place":
            self._reject(jo, f"{o.op}: outcome unknown after a router restart")
            return "amend_dropped"
        qty, value = fills
        done, avg = max(jo.filled, qty), (value / qty if qty else jo.avg)
        lane = self.lanes.get(o.account)
        bid = None
        if lane is not None:
            bid = lane.broker.recover(o, jo.broker_id, done, avg, jo.sent_ns / 1e9)
        if bid is None:
            if jo.state == "unknown":  # alerted (and its strategy halted) before the restart
                return "unknown"
            why = (
                "not found at the broker after a router restart"
                if lane is not None
                else f"account {o.account!r} is no longer configured"
            )
            self._set(jo, "unknown", reason=why)
            self._alert_unknown(jo, why)
            return "unknown"
        adopted = not jo.broker_id
        state = "open" if adopted or jo.state == "unknown" else jo.state
        self._set(jo, state, broker_id=bid, filled=done, avg=avg)
        self.by_broker_id[(o.account, bid)] = o.order_id
        self._publish(jo)
        return "adopted" if adopted else "resumed"

    def _carry(self, rep: Replay) -> list[wire.PositionSnapshot]:
        """The positions a journal of an earlier day ends with: carried into today's."""
        ledger = Ledger()
        for c in rep.carried:
            key = (c.strategy, c.exchange, c.symbol, c.product, c.account)
            ledger.apply(key, c.quantity, c.avg_price)
        for f in rep.fills:
            key = (f.strategy, f.exchange, f.symbol, f.product, f.account)
            ledger.apply(key, f.quantity if f.action == "BUY" else -f.quantity, f.price)
        return [s for s in snapshots(ledger) if s.quantity]
