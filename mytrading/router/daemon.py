"""The order router: sends risk-approved orders to the broker adapter, once each.

Only ``Order`` messages that risk approved are accepted on the order pipe; anything else
is counted and dropped. An order id it has seen before is never sent again. Broker
events become ``OrderUpdate`` (``exec.order.<strategy>``) and ``Fill``
(``exec.fill.<strategy>``, numbered router-wide by ``fill_no``). The router answers
book queries on ``rpc.router`` for the reconciler and publishes position snapshots with
mark-to-market P&L every heartbeat. In ``dry_run`` no order leaves the process.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import msgspec
import zmq

from mytrading import wire
from mytrading.bus import Puller, bind
from mytrading.daemon import Daemon
from mytrading.positions import Ledger
from mytrading.router.broker import BrokerAdapter, OrderEvent, TradeEvent
from mytrading.router.openalgo_adapter import OpenAlgoAdapter
from mytrading.router.simbroker import SimBroker

MAX_FILLS_KEPT = 100_000
MARGIN_POLL_S = 60.0  # the broker's margin per lot of each instrument traded
MARGIN_WATCH_MAX = 20  # instruments asked about per poll (OpenAlgo rate limits)
FUNDS_POLL_S = 2.0  # the broker's funds, for risk's margin checks (OpenAlgo: 0.5 req/s)


class RouterDaemon(Daemon):
    name = "router"
    required_peers = ("risk",)

    def setup(self) -> None:
        s = self.settings
        self.adapter: OpenAlgoAdapter | None = None
        if s.broker == "openalgo":
            self.adapter = OpenAlgoAdapter(
                s.api_key(), s.rest_url(), s.openalgo_timeout_s, lambda: self.clock.now_ns() / 1e9
            )
            self.broker: BrokerAdapter = self.adapter
            self.every(s.openalgo_poll_s, self._poll)
            self.log.info("broker: OpenAlgo", host=s.rest_url(), timeout_s=s.openalgo_timeout_s)
        else:
            # The in-process simulator fills against every tick.
            self.broker = SimBroker(
                self.refdata, self.clock, s.sim_slippage_ticks, capital=s.sim_capital
            )
            self.sub.subscribe("md.tick.")
        self.orders_in = Puller(self.ctx, self.endpoints["pipe.orders"])
        self.add_puller(self.orders_in, self._on_order)
        self.rep = self.ctx.socket(zmq.REP)
        self.rep.setsockopt(zmq.LINGER, 0)
        bind(self.rep, self.endpoints["rpc.router"])
        self.add_socket(self.rep, self._on_query)
        self.seen: dict[str, str] = {}  # our order id -> broker order id ("" if not placed)
        self.by_broker_id: dict[str, tuple[wire.Order, int]] = {}  # -> (order, sent_ns)
        self.ledger = Ledger()  # (strategy, exchange, symbol, product)
        self.keys_by_symbol: dict[tuple[str, str], set[tuple[str, str, str, str]]] = (
            collections.defaultdict(set)
        )
        self.fills: collections.deque[wire.Fill] = collections.deque(maxlen=MAX_FILLS_KEPT)
        self.fill_no = 0
        self.unknown_sent: dict[str, tuple[wire.Order, int]] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.every(self.settings.heartbeat_s, self._publish_positions)
        self.funds_failing = 0
        self.every(FUNDS_POLL_S, self._publish_funds, first_in=0)
        self.margin_watch: dict[tuple[str, str, str], None] = {}  # (ex, sym, product), LRU
        self.margin_next = 0.0  # monotonic time of the next poll; a new instrument: now
        self.every(FUNDS_POLL_S, self._maybe_margins)

    # ------------------------------------------------------------------- orders

    def _on_order(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.Order) or msg.approved_by != "risk" or msg.src != "risk":
            self.counts["unapproved_dropped"] += 1
            self.count_error(
                "refused an order risk did not approve", got=type(msg).__name__, src=msg.src
            )
            return
        if msg.order_id in self.seen:
            self.counts["duplicates_dropped"] += 1
            self.count_error("duplicate order not sent", order_id=msg.order_id)
            return
        self.seen[msg.order_id] = ""
        if msg.op != "place":
            self._amend(msg)
            return
        if self.settings.mode == "dry_run":
            self.counts["dry_run"] += 1
            self.log.info("dry run: order not sent", order_id=msg.order_id, symbol=msg.symbol)
            self._update(msg, "rejected", reason="dry_run: order not sent")
            return
        sent_ns = time.time_ns()
        result, events = self.broker.place_order(msg)
        if msg.origin_ns:
            self.record_latency_ns(sent_ns - msg.origin_ns)
        if not result.ok and result.message.startswith("unknown:"):
            # Maybe at the broker, maybe not: never sent again; looked for on every poll.
            self.counts["unknown"] += 1
            self.count_error("order state unknown", order_id=msg.order_id, reason=result.message)
            self._update(msg, "unknown", reason=result.message, sent_ns=sent_ns)
            self.unknown_sent[msg.order_id] = (msg, sent_ns)
            return
        if not result.ok:
            self.counts["broker_rejected"] += 1
            self.log.warning("broker rejected order", order_id=msg.order_id, reason=result.message)
            self._update(msg, "rejected", reason=result.message, sent_ns=sent_ns)
            return
        self.counts["sent"] += 1
        watched = (msg.exchange, msg.symbol, msg.product)
        if watched not in self.margin_watch:
            self.margin_next = 0.0  # ask about a new instrument at the next tick of the timer
        self.margin_watch.pop(watched, None)
        self.margin_watch[watched] = None  # most recent last
        self.seen[msg.order_id] = result.orderid
        self.by_broker_id[result.orderid] = (msg, sent_ns)
        self.log.info(
            "order sent",
            order_id=msg.order_id,
            broker_id=result.orderid,
            symbol=msg.symbol,
            action=msg.action,
            qty=msg.quantity,
            pricetype=msg.pricetype,
        )
        self._on_broker_events(events)

    def _amend(self, msg: wire.Order) -> None:
        """Modify or cancel a working order. The outcome reaches the strategy as updates of
        the working order; a refusal comes back as a rejection of the amend itself."""
        broker_id = self.seen.get(msg.ref_order_id, "")
        entry = self.by_broker_id.get(broker_id)
        if entry is None:
            self._update(msg, "rejected", reason=f"{msg.op}: {msg.ref_order_id} is not working")
            return
        target, sent_ns = entry
        if self.settings.mode == "dry_run":
            self._update(msg, "rejected", reason=f"dry_run: {msg.op} not sent")
            return
        if msg.op == "cancel":
            result, events = self.broker.cancel_order(broker_id)
        else:
            result, events = self.broker.modify_order(
                broker_id, msg.pricetype, msg.price, msg.trigger_price, msg.quantity
            )
            if result.ok:
                self.by_broker_id[broker_id] = (
                    msgspec.structs.replace(
                        target,
                        quantity=msg.quantity,
                        pricetype=msg.pricetype,
                        price=msg.price,
                        trigger_price=msg.trigger_price,
                    ),
                    sent_ns,
                )
        self.counts[f"{msg.op}_{'ok' if result.ok else 'refused'}"] += 1
        self.log.info(
            f"{msg.op} {'done' if result.ok else 'refused'}",
            order_id=msg.ref_order_id,
            broker_id=broker_id,
            reason=result.message,
        )
        if not result.ok:
            self._update(msg, "rejected", reason=f"{msg.op}: {result.message}")
        self._on_broker_events(events)

    def _on_broker_events(self, events: list[OrderEvent | TradeEvent]) -> None:
        for ev in events:
            entry = self.by_broker_id.get(ev.orderid)
            if entry is None:
                self.count_error("event for an order we did not send", broker_id=ev.orderid)
                continue
            order, sent_ns = entry
            if isinstance(ev, TradeEvent):
                self._fill(order, ev)
            else:
                self._update(
                    order,
                    ev.status,
                    broker_id=ev.orderid,
                    filled=ev.filled_quantity,
                    avg=ev.average_price,
                    reason=ev.rejection_reason,
                    sent_ns=sent_ns,
                )

    def _update(
        self,
        o: wire.Order,
        status: str,
        broker_id: str = "",
        filled: int = 0,
        avg: float = 0.0,
        reason: str = "",
        sent_ns: int = 0,
    ) -> None:
        self.pub.publish(
            f"exec.order.{o.strategy}",
            wire.OrderUpdate(
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
                avg_price=avg,  # type: ignore[arg-type]
                reason=reason,
                origin_ns=o.origin_ns,
                sent_ns=sent_ns,
                part=o.part,
                parts=o.parts,
            ),
        )

    def _fill(self, o: wire.Order, t: TradeEvent) -> None:
        self.fill_no += 1
        fill = wire.Fill(
            fill_no=self.fill_no,
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
        )
        key = (o.strategy, o.exchange, o.symbol, o.product)
        self.ledger.apply(key, t.quantity if o.action == "BUY" else -t.quantity, t.price)
        if not self.keys_by_symbol[(o.exchange, o.symbol)] and self.adapter is not None:
            self.sub.subscribe(wire.exact(wire.tick_topic(o.exchange, o.symbol)))  # for marks
        self.keys_by_symbol[(o.exchange, o.symbol)].add(key)
        self.fills.append(fill)
        self.counts["fills"] += 1
        self.pub.publish(f"exec.fill.{o.strategy}", fill)
        self.log.info(
            "fill",
            order_id=o.order_id,
            symbol=o.symbol,
            action=o.action,
            qty=t.quantity,
            price=t.price,
            fill_no=self.fill_no,
        )

    # ----------------------------------------------------------------- polling

    def _poll(self) -> None:
        assert self.adapter is not None
        events, resolved = self.adapter.poll()
        for order, outcome, broker_id in resolved:
            _, sent_ns = self.unknown_sent.pop(order.order_id, (order, 0))
            if outcome == "found":
                self.log.warning(
                    "unknown order found at the broker",
                    order_id=order.order_id,
                    broker_id=broker_id,
                )
                self.seen[order.order_id] = broker_id
                self.by_broker_id[broker_id] = (order, sent_ns)
            else:
                self.count_error(
                    "unknown order never appeared at the broker", order_id=order.order_id
                )
                self._update(
                    order,
                    "rejected",
                    reason="not found at the broker after a failed send; it was not sent again",
                    sent_ns=sent_ns,
                )
        self._on_broker_events(events)

    # ------------------------------------------------------------------ market

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick):
            events = self.broker.on_tick(msg)
            if events:
                self._on_broker_events(events)
            for key in self.keys_by_symbol.get((msg.exchange, msg.symbol), ()):
                self.ledger.mark(key, msg.ltp)

    def _publish_funds(self) -> None:
        """A failed poll is a warning (the broker may still be starting); three in a row
        are an error, counted once per outage."""
        try:
            funds = self.broker.funds()
        except ConnectionError as exc:
            self.counts["funds_failures"] += 1
            self.funds_failing += 1
            if self.funds_failing == 3:
                self.count_error("funds unavailable three times in a row", reason=str(exc))
            else:
                self.log.warning("funds unavailable", reason=str(exc))
            return
        self.funds_failing = 0
        self.pub.publish("exec.funds", funds)

    def _maybe_margins(self) -> None:
        if self.margin_watch and time.monotonic() >= self.margin_next:
            self.margin_next = time.monotonic() + MARGIN_POLL_S
            self._publish_margins()

    def _publish_margins(self) -> None:
        """Ask the broker what one lot of each recently traded instrument needs, short
        (and long, for futures); publish each answer for risk."""
        for ex, sym, prod in list(self.margin_watch)[-MARGIN_WATCH_MAX:]:
            inst = self.refdata.instrument(ex, sym)
            for action in ("SELL", "BUY") if inst.kind == "FUT" else ("SELL",):
                try:
                    per = self.broker.margin_per_lot(ex, sym, action, prod, inst.lot_size)
                except ConnectionError as exc:
                    self.log.warning("margin unavailable", symbol=sym, reason=str(exc))
                    return
                if per is not None:
                    self.pub.publish(
                        "exec.margin",
                        wire.MarginQuote(
                            exchange=ex,
                            symbol=sym,
                            action=action,  # type: ignore[arg-type]
                            product=prod,  # type: ignore[arg-type]
                            per_lot=round(per, 2),
                        ),
                    )

    def _snapshots(self) -> list[wire.PositionSnapshot]:
        return [
            wire.PositionSnapshot(
                strategy=strategy,
                exchange=ex,
                symbol=sym,
                product=prod,  # type: ignore[arg-type]
                quantity=p.qty,
                avg_price=round(p.avg, 2),
                realized_pnl=round(p.realized, 2),
                unrealized_pnl=round(p.unrealized(), 2),
                ltp=p.ltp,
            )
            for (strategy, ex, sym, prod), p in self.ledger.positions.items()
        ]

    def _publish_positions(self) -> None:
        for snap in self._snapshots():
            self.pub.publish(f"exec.position.{snap.strategy}", snap)

    # ----------------------------------------------------------------- queries

    def _on_query(self) -> None:
        try:
            raw = self.rep.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
        self.msgs_in += 1
        try:
            q = wire.decode_body(raw)
            if not isinstance(q, wire.BrokerQuery):
                raise wire.WireError(f"expected a BrokerQuery, got {type(q).__name__}")
        except wire.WireError as exc:
            self.count_error("bad query", reason=str(exc))
            self.rep.send(wire.encode_body(wire.BrokerReply(ok=False, error=str(exc))))
            return
        if q.kind == "strategy_positions":  # a restarted engine or risk catching up
            reply = wire.BrokerReply(
                ok=True, snapshots=self._snapshots(), last_fill_no=self.fill_no
            )
            self.rep.send(wire.encode_body(reply))
            return
        if q.kind == "funds":
            try:
                funds = self.broker.funds()
            except ConnectionError as exc:
                self.count_error("funds unavailable", reason=str(exc))
                self.rep.send(wire.encode_body(wire.BrokerReply(ok=False, error=str(exc))))
                return
            self.rep.send(wire.encode_body(wire.BrokerReply(ok=True, funds=funds)))
            return
        if q.kind == "positions":
            try:
                book = self.broker.positionbook()
            except ConnectionError as exc:
                self.count_error("position book unavailable", reason=str(exc))
                self.rep.send(wire.encode_body(wire.BrokerReply(ok=False, error=str(exc))))
                return
            reply = wire.BrokerReply(ok=True, positions=book, last_fill_no=self.fill_no)
        else:
            fills = [f for f in self.fills if f.fill_no > q.since_fill_no]
            reply = wire.BrokerReply(ok=True, fills=fills, last_fill_no=self.fill_no)
        self.rep.send(wire.encode_body(reply))

    def detail(self) -> dict[str, Any]:
        extra = self.adapter.counts if self.adapter is not None else {}
        return {"broker": self.settings.broker, "mode": self.settings.mode, **self.counts, **extra}

    def teardown(self) -> None:
        self.orders_in.close()
        self.rep.close(0)
