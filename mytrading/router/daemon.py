"""The order router: sends risk-approved orders to the broker adapter, once each.

Only ``Order`` messages that risk approved are accepted on the order pipe; anything else
is counted and dropped. An order id it has seen before is never sent again. Broker
events become ``OrderUpdate`` (``exec.order.<strategy>``) and ``Fill``
(``exec.fill.<strategy>``, numbered router-wide by ``fill_no``). The router answers
book queries on ``rpc.router`` for the reconciler and publishes position snapshots with
mark-to-market P&L every heartbeat. In ``dry_run`` no order leaves the process.

Each order goes to the account it names (``Order.account``), through that account's lane
(``router/lanes.py``): its own rate limits, order updates and polling, and its own worker
thread, so the orders of one fan-out reach several accounts' brokers in parallel.
"""

from __future__ import annotations

import collections
import math
import os
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import zmq

from mytrading import venue, wire
from mytrading.accounts import MAIN, Account, load_accounts
from mytrading.bus import Puller, Pusher, bind
from mytrading.daemon import Daemon
from mytrading.openalgo.broker import OrderEvent, TradeEvent
from mytrading.openalgo.orders import OpenAlgoAdapter
from mytrading.openalgo.ws import FeedClient
from mytrading.outbox import Outbox
from mytrading.positions import Ledger
from mytrading.router.journal import Journal, JournaledOrder, Record, Replay
from mytrading.router.lanes import LANES_DONE_PIPE, Call, Lane

MAX_FILLS_KEPT = 100_000
MARGIN_POLL_S = 60.0  # the broker's margin per lot of each instrument traded
MARGIN_WATCH_MAX = 20  # instruments asked about per poll (OpenAlgo rate limits)
FUNDS_POLL_S = 2.0  # the broker's funds, for risk's margin checks (OpenAlgo: 0.5 req/s)
HALT_WAIT_S = 24 * 3600.0  # a halt for an unknown order waits for risk as long as it takes
PUBLISHED_STATUS = {"partial": "open", "sent": "open"}  # journal state -> OrderUpdate status
ORDER_UPDATE_PIPE = "inproc://router.order_updates"
JOURNAL_SYNC_S = 0.2  # the longest an answer from the broker stays unflushed
SEND_BATCH = 16  # orders per flush; a crash mid-batch leaves the unsent ones UNKNOWN
RECOVERY_HOLD_S = 0.5  # subscribers reconnect every 0.1 s (ZMQ_RECONNECT_IVL)
CRASH_EXIT = 86  # the exit code of an injected crash (MT_ROUTER_CRASH_AT)


class RouterDaemon(Daemon):
    name = "router"
    required_peers = ("risk",)

    def setup(self) -> None:
        s = self.settings
        self.openalgo = s.broker == "openalgo"
        accounts = load_accounts(s)
        self.lanes: dict[str, Lane] = {}
        self.lanes_done = self.ctx.socket(zmq.PULL)  # a lane's worker: "my batch is answered"
        self.lanes_done.setsockopt(zmq.LINGER, 0)
        self.lanes_done.bind(LANES_DONE_PIPE)
        self.add_socket(self.lanes_done, self._on_lanes_done)
        self.market_tap: Callable[[wire.Tick], None] | None = None
        if self.openalgo:
            for acct in accounts.by_name.values():
                self.lanes[acct.name] = self._openalgo_lane(acct)
        else:
            self.lanes[MAIN] = self._local_lane(accounts.by_name[MAIN])
            self.sub.subscribe("md.tick.")  # the in-process venue fills against every tick
        self.every(min(s.openalgo_poll_s, s.openalgo_poll_no_ws_s), self._maybe_poll)
        self.main = self.lanes[MAIN]
        self.margin_watch: dict[tuple[str, str, str], None] = {}  # (ex, sym, product), LRU
        self.margin_next = 0.0  # monotonic time of the next poll; a new instrument: now
        self.orders: dict[str, JournaledOrder] = {}  # today's, by our (client) order id
        # (account, broker id) -> our id, orders not yet final
        self.by_broker_id: dict[tuple[str, str], str] = {}
        self.ledger = Ledger()  # (strategy, exchange, symbol, product, account)
        self.keys_by_symbol: dict[tuple[str, str], set[tuple[str, ...]]] = collections.defaultdict(
            set
        )
        self.fills: collections.deque[wire.Fill] = collections.deque(maxlen=MAX_FILLS_KEPT)
        self.fill_ids: set[tuple[str, str]] = set()  # (account, the broker's trade id)
        self.fill_no = 0
        self.unknown_ids: collections.deque[str] = collections.deque(maxlen=20)
        self.counts: collections.Counter[str] = collections.Counter()
        self._pump_at = math.inf  # monotonic time of the next scheduled send
        self._pump_due = False  # orders read that the end of the read will send
        self.halts: Outbox[wire.Command] = Outbox(
            Pusher(self.ctx, self.endpoints["pipe.commands"], self.name, "command"),
            lambda: self.peer_up("risk"),
            HALT_WAIT_S,
            lambda cmd, why: self.count_error("ALERT: a halt did not reach risk", reason=why),
            lambda: "risk is down",
        )
        self.every(0.1, self.halts.flush)
        self.journal = Journal(s.state_dir / "router" / "journal.bin", s.journal_fsync)
        rep = self.journal.open(self.clock.now().date().isoformat(), self._carry)
        # Until subscribers have reconnected to this new process, what it would publish
        # is held back (a PUB drops what it sends before they are there).
        self._held: list[tuple[str, wire.Msg]] | None = []
        self._recover(rep)
        self.journal.sync()
        self.every(JOURNAL_SYNC_S, self.journal.sync)
        self.after(RECOVERY_HOLD_S, lambda: self._release(rep.fills))
        self.rep = self.ctx.socket(zmq.REP)
        self.rep.setsockopt(zmq.LINGER, 0)
        bind(self.rep, self.endpoints["rpc.router"])
        self.add_socket(self.rep, self._on_query)
        self.every(self.settings.heartbeat_s, self._publish_positions)
        self.every(FUNDS_POLL_S, self._publish_funds, first_in=0)
        self.every(FUNDS_POLL_S, self._maybe_margins)

    def _local_lane(self, acct: Account) -> Lane:
        """The simulated venue in this process (``MT_BROKER=sim``), through the same OpenAlgo
        adapter: its REST calls go to the venue's request handling without a socket, its
        order updates arrive as the WebSocket's JSON, and it fills against the ticks this
        router receives. Calls run inline: there is no network to wait for."""
        s = self.settings
        local = venue.local_broker(s, self.refdata, self.clock)
        adapter = OpenAlgoAdapter(
            venue.LOCAL_KEY,
            venue.LOCAL_URL,
            s.openalgo_timeout_s,
            lambda: self.clock.now_ns() / 1e9,
            local=local.request,
        )
        lane = Lane(acct.name, adapter, Lane.rates(acct), adapter=adapter)
        lane.updates = local.updates
        self.market_tap = local.on_tick
        self.log.info("broker: the simulated venue in this process", account=acct.name)
        return lane

    def _openalgo_lane(self, acct: Account) -> Lane:
        """An OpenAlgo account: REST adapter, its rate limits, order changes as OpenAlgo
        pushes them and the order book polled behind them (every ``openalgo_poll_s``;
        every ``openalgo_poll_no_ws_s`` while the socket is down)."""
        s = self.settings
        adapter = OpenAlgoAdapter(
            acct.api_key, acct.rest_url, s.openalgo_timeout_s, lambda: self.clock.now_ns() / 1e9
        )
        lane = Lane(acct.name, adapter, Lane.rates(acct), adapter=adapter)
        pipe = f"{ORDER_UPDATE_PIPE}.{acct.name}"
        lane.updates_pull = self.ctx.socket(zmq.PULL)
        lane.updates_pull.setsockopt(zmq.LINGER, 0)
        lane.updates_pull.bind(pipe)
        self.add_socket(lane.updates_pull, lambda: self._on_ws_updates(lane))
        lane.updates = FeedClient(
            self.ctx, acct.ws_url, acct.api_key, [], pipe=pipe, order_updates=True
        )
        lane.updates.start()
        lane.start_pool(self.ctx)
        self.log.info(
            "broker: OpenAlgo",
            account=acct.name,
            host=acct.rest_url,
            orders_per_s=acct.orders_per_s,
            timeout_s=s.openalgo_timeout_s,
        )
        return lane

    # ------------------------------------------------------------------- orders

    def _on_order(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.Order) or msg.approved_by != "risk" or msg.src != "risk":
            self.counts["unapproved_dropped"] += 1
            self.count_error(
                "refused an order risk did not approve", got=type(msg).__name__, src=msg.src
            )
            return
        if msg.order_id in self.orders:
            # Risk sends again what a killed router never answered: expected, not an error.
            self.counts["duplicates_dropped"] += 1
            self.log.warning("duplicate order not sent", order_id=msg.order_id)
            return
        jo = self.orders[msg.order_id] = JournaledOrder(msg, "new", recv_ns=time.time_ns())
        self._set(jo, "new", with_order=True)
        lane = self.lanes.get(msg.account)
        if lane is None:
            self.count_error("order for an account not configured", account=msg.account)
            self._reject(jo, f"no account {msg.account!r} at the router")
            return
        if self.settings.mode == "dry_run":
            self.counts["dry_run"] += 1
            self.log.info("dry run: order not sent", order_id=msg.order_id, symbol=msg.symbol)
            self._reject(jo, f"dry_run: {msg.op} not sent")
            return
        lane.throttle.push(msg.order_id, "order", msg.exit or msg.op == "cancel")
        self._crash("new")
        self._pump_due = True  # at the end of this read of the pipe: one flush for all

    def _after_orders(self) -> None:
        """The pipe's batch is read: send now, before the loop turns to ticks and timers
        (an order waited behind a batch of ticks and a trip through the timer heap)."""
        if self._pump_due:
            self._pump_due = False
            self._pump()

    def _schedule_pump(self, wait: float) -> None:
        at = time.monotonic() + wait
        if at < self._pump_at:
            self._pump_at = at
            self.after(wait, self._pump)

    def _pump(self) -> None:
        """Send what the rate limits allow now to every idle lane (group commit: the
        batches' ``sent`` records and every queued ``new`` reach the disk in one flush
        before the first broker call; each lane then calls its broker on its own thread);
        come back when the next may go. A busy lane is pumped when its answers are in."""
        self._pump_at = math.inf
        now = time.monotonic()
        batches: dict[str, list[tuple[JournaledOrder, str | None]]] = {}
        for lane in self.lanes.values():
            if lane.inflight is not None:
                continue
            batch: list[tuple[JournaledOrder, str | None]] = []
            took: collections.Counter[str] = collections.Counter()
            while len(batch) < SEND_BATCH and (item := lane.throttle.pop_ready(now)) is not None:
                took[item.cls] += 1
                jo = self.orders.get(item.key)
                if jo is not None and jo.state == "new":
                    batch.append((jo, self._target_of(jo)))
            lane.taken = dict(took)
            if batch:
                batches[lane.account] = batch
            else:
                self._restamp(lane)
        market_now = self.clock.now_ns()
        for batch in batches.values():
            for jo, _ in batch:
                self._set(jo, "sent", sync=False, attempt=jo.attempt + 1, sent_ns=market_now)
        self.journal.sync()
        if batches:
            self._crash("sent")
        for account, batch in batches.items():
            self.lanes[account].send(batch, self._call)
        self._collect()  # a lane without a thread (the in-process simulator) is done

    def _on_lanes_done(self) -> None:
        while True:
            try:
                self.lanes_done.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
        self._collect()

    def _collect(self) -> None:
        """Journal and publish the answers of every lane whose batch is done; then the
        updates its broker pushed meanwhile; then pump again when the limits allow."""
        for lane in self.lanes.values():
            answers = lane.answered()
            if answers is None:
                continue
            for (jo, _), call in answers:
                try:
                    self._answered(lane, jo, call)
                except Exception as exc:  # a bug, not a broker answer: it may have happened
                    call.error = exc
                if call.error is not None:
                    err = repr(call.error)
                    self.count_error("send failed", order_id=jo.order.order_id, error=err)
                    if jo.state == "sent":
                        self._set(jo, "unknown", reason=f"send failed: {err}")
                        self._alert_unknown(jo, f"send failed: {err}")
            self._restamp(lane)
            if lane.updates is not None:
                self._take_updates(lane)
        now = time.monotonic()
        waits = [
            lane.throttle.next_in(now) for lane in self.lanes.values() if lane.inflight is None
        ]
        wait = min((w for w in waits if w is not None), default=None)
        if wait is not None:
            self._schedule_pump(wait)

    def _quiesce(self, lane: Lane) -> None:
        """Wait for the lane's batch in flight and journal its answers: the broker's
        position book then agrees with our fills and ``last_fill_no`` (a reader compares
        them)."""
        if lane.inflight is not None:
            lane.inflight.result()
            self._collect()

    @staticmethod
    def _restamp(lane: Lane) -> None:
        for cls, n in lane.taken.items():
            lane.throttle.restamp(cls, n, time.monotonic())
        lane.taken = {}

    def _target_of(self, jo: JournaledOrder) -> str | None:
        """The broker id an amend acts on, or None when it has nothing to act on: no such
        order, not working, or on another account (its broker id means nothing here)."""
        o = jo.order
        if o.op == "place":
            return ""
        target = self.orders.get(o.ref_order_id)
        if target is None or not target.broker_id or target.final:
            return None
        return target.broker_id if target.order.account == o.account else None

    @staticmethod
    def _call(lane: Lane, item: tuple[JournaledOrder, str | None]) -> Call:
        """The broker call for one order journaled as ``sent``, on its lane's thread; it
        touches nothing of the router's (the amend's target was resolved before)."""
        jo, target = item
        o = jo.order
        wall = time.time_ns()
        try:
            if o.op == "place":
                return Call(*lane.broker.place_order(o), wall)
            if target is None:
                return Call(None, [], wall)
            if o.op == "cancel":
                return Call(*lane.broker.cancel_order(target), wall)
            return Call(
                *lane.broker.modify_order(
                    target, o.pricetype, o.price, o.trigger_price, o.quantity
                ),
                wall,
            )
        except Exception as exc:
            return Call(None, [], wall, error=exc)

    def _answered(self, lane: Lane, jo: JournaledOrder, call: Call) -> None:
        """Journal and publish what the broker answered for one order."""
        o = jo.order
        if call.error is not None:
            return
        if o.op != "place":
            self._amended(lane, jo, call)
            return
        assert call.result is not None
        result, events = call.result, call.events
        jo.wall_sent_ns = call.wall_ns
        self._crash("placed")
        if jo.recv_ns and jo.attempt == 1:  # read off the pipe -> handed to the broker
            self.record_latency_ns(call.wall_ns - jo.recv_ns)
        if result.ok:
            self._set(jo, "open", broker_id=result.orderid)
            self.by_broker_id[(lane.account, result.orderid)] = o.order_id
            self._crash("open")
            self.counts["sent"] += 1
            self._watch_margin(o)
            self.log.info(
                "order sent",
                order_id=o.order_id,
                broker_id=result.orderid,
                symbol=o.symbol,
                action=o.action,
                qty=o.quantity,
                pricetype=o.pricetype,
                attempt=jo.attempt,
                account=lane.account,
            )
            self._on_broker_events(lane.account, events)
        elif result.retry and jo.attempt < self.settings.router_max_attempts:
            self._retry_later(lane, jo, result.message, result.retry_after_s)
        elif result.message.startswith("unknown:"):
            self._set(jo, "unknown", reason=result.message)
            self._alert_unknown(jo, result.message)
        else:
            self.counts["broker_rejected"] += 1
            self.log.warning("broker rejected order", order_id=o.order_id, reason=result.message)
            self._reject(jo, result.message)

    def _retry_later(self, lane: Lane, jo: JournaledOrder, why: str, retry_after_s: float) -> None:
        """It certainly did not reach the broker (a 429, a refused connection): back in the
        queue after a backoff, or the broker's ``retry_after`` when that is longer."""
        s = self.settings
        now = time.monotonic()
        backoff = s.router_retry_backoff_s * 2 ** (jo.attempt - 1)
        pause = min(retry_after_s, s.router_retry_after_max_s)
        if pause:
            lane.throttle.pause("order", now, pause)
        self._set(jo, "new", reason=f"attempt {jo.attempt} not sent: {why}")
        lane.throttle.push(jo.order.order_id, "order", jo.order.exit, due=now + max(backoff, pause))
        self.counts["retries"] += 1
        self.log.warning(
            "order not sent; retrying",
            order_id=jo.order.order_id,
            attempt=jo.attempt,
            in_s=round(max(backoff, pause), 3),
            reason=why,
        )

    def _watch_margin(self, o: wire.Order) -> None:
        watched = (o.exchange, o.symbol, o.product)
        if watched not in self.margin_watch:
            self.margin_next = 0.0  # ask about a new instrument at the next tick of the timer
        self.margin_watch.pop(watched, None)
        self.margin_watch[watched] = None  # most recent last

    def _amended(self, lane: Lane, jo: JournaledOrder, call: Call) -> None:
        """A modify or cancel of a working order was answered. The outcome reaches the
        strategy as updates of the working order; a refusal comes back as a rejection of
        the amend itself."""
        msg = jo.order
        target = self.orders.get(msg.ref_order_id)
        if call.result is None or target is None:
            self._reject(jo, f"{msg.op}: {msg.ref_order_id} is not working")
            return
        broker_id = target.broker_id
        result, events = call.result, call.events
        if msg.op == "modify" and result.ok:
            target.order = msgspec.structs.replace(
                target.order,
                quantity=msg.quantity,
                pricetype=msg.pricetype,
                price=msg.price,
                trigger_price=msg.trigger_price,
            )
            self._set(target, target.state, with_order=True)
            self._publish(target)  # brokers push no update for a new quantity or price
        self.counts[f"{msg.op}_{'ok' if result.ok else 'refused'}"] += 1
        self.log.info(
            f"{msg.op} {'done' if result.ok else 'refused'}",
            order_id=msg.ref_order_id,
            broker_id=broker_id,
            reason=result.message,
        )
        if result.ok:
            self._set(jo, "complete")
        else:
            self._reject(jo, f"{msg.op}: {result.message}")
        self._on_broker_events(lane.account, events)

    def _on_broker_events(self, account: str, events: list[OrderEvent | TradeEvent]) -> None:
        for ev in events:
            jo = self.orders.get(self.by_broker_id.get((account, ev.orderid), ""))
            if jo is None:
                self.count_error(
                    "event for an order we did not send", broker_id=ev.orderid, account=account
                )
                continue
            if isinstance(ev, TradeEvent):
                self._fill(jo, ev)
                continue
            state = "partial" if ev.status == "open" and ev.filled_quantity else ev.status
            self._set(
                jo,
                state,
                filled=ev.filled_quantity,
                avg=ev.average_price,
                reason=ev.rejection_reason or jo.reason,
            )
            if jo.final:
                self.by_broker_id.pop((account, ev.orderid), None)
            self._publish(jo)

    def _set(
        self,
        jo: JournaledOrder,
        state: str,
        *,
        sync: bool | None = None,
        with_order: bool = False,
        **changes: Any,
    ) -> None:
        """Journal a change of ``jo``, then keep it.

        Only ``sent`` is flushed to the disk before the call that follows it: it is the
        write-ahead point (it covers the ``new`` before it). What the broker told us after
        is written at once (a killed process loses none of it: the page cache keeps it) and
        flushed within ``JOURNAL_SYNC_S``; a power cut in that window loses at most the
        latest answers, which recovery reads again from the broker's books."""
        if sync is None:
            sync = state == "sent"
        for k, v in changes.items():
            setattr(jo, k, v)
        jo.state = state
        self.journal.append(
            Record(
                "order",
                time.time_ns(),
                order_id=jo.order.order_id,
                state=state,
                order=jo.order if with_order else None,
                broker_id=jo.broker_id,
                filled=jo.filled,
                avg=jo.avg,
                reason=jo.reason,
                attempt=jo.attempt,
                sent_ns=jo.sent_ns,
            ),
            sync=sync,
        )

    def _reject(self, jo: JournaledOrder, reason: str) -> None:
        self._set(jo, "rejected", reason=reason)
        self._publish(jo)

    def _publish(self, jo: JournaledOrder) -> None:
        status = PUBLISHED_STATUS.get(jo.state, jo.state)
        self._update(
            jo.order,
            status,
            broker_id=jo.broker_id,
            filled=jo.filled,
            avg=jo.avg,
            reason=jo.reason,
            sent_ns=jo.wall_sent_ns,
        )

    def _alert_unknown(self, jo: JournaledOrder, why: str) -> None:
        """An order that may or may not be at the broker: never sent again. A human must
        look, so the strategy is halted (through risk, the one keeper of trading states)."""
        o = jo.order
        self.counts["unknown"] += 1
        self.unknown_ids.append(o.order_id)
        self.count_error(
            "ALERT: order state unknown; strategy halted; check the broker's order book",
            order_id=o.order_id,
            strategy=o.strategy,
            symbol=o.symbol,
            action=o.action,
            qty=o.quantity,
            reason=why,
        )
        self._publish(jo)
        self.halts.put(
            wire.Command(
                command="state",
                value="halted",
                target=o.strategy,
                reason=f"order {o.order_id} unknown at the broker ({why}); check its order book",
                issued_by=self.name,
            )
        )

    def _crash(self, point: str) -> None:
        """Fault injection for the journal tests (``MT_ROUTER_CRASH_AT``): die like kill -9."""
        if self.settings.router_crash_at == point:
            self.journal.sync()  # what a real crash leaves: the page cache survives it
            os._exit(CRASH_EXIT)

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
        self._out(
            f"exec.order.{o.strategy}",
            wire.OrderUpdate(
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
                avg_price=avg,  # type: ignore[arg-type]
                reason=reason,
                origin_ns=o.origin_ns,
                sent_ns=sent_ns,
                part=o.part,
                parts=o.parts,
                account=o.account,
            ),
        )

    def _fill(self, jo: JournaledOrder, t: TradeEvent) -> None:
        if (jo.order.account, t.tradeid) in self.fill_ids:
            self.counts["fills_seen_twice"] += 1
            self.log.warning("a fill already journaled; not counted again", fill_id=t.tradeid)
            return
        o = jo.order
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
            account=o.account,
        )
        self.journal.append(
            Record("fill", time.time_ns(), order_id=o.order_id, fill=fill), sync=False
        )
        self._crash("fill")
        self._book_fill(fill)
        self.counts["fills"] += 1
        self._out(f"exec.fill.{o.strategy}", fill)
        self.log.info(
            "fill",
            order_id=o.order_id,
            symbol=o.symbol,
            action=o.action,
            qty=t.quantity,
            price=t.price,
            fill_no=self.fill_no,
            account=o.account,
        )

    def _book_fill(self, fill: wire.Fill) -> None:
        key = (fill.strategy, fill.exchange, fill.symbol, fill.product, fill.account)
        self.ledger.apply(
            key, fill.quantity if fill.action == "BUY" else -fill.quantity, fill.price
        )
        self._watch_marks(key)
        self.fill_ids.add((fill.account, fill.fill_id))
        self.fills.append(fill)

    def _watch_marks(self, key: tuple[str, ...]) -> None:
        ex, sym = key[1], key[2]
        if not self.keys_by_symbol[(ex, sym)] and self.openalgo:
            self.sub.subscribe(wire.exact(wire.tick_topic(ex, sym)))  # for marks
        self.keys_by_symbol[(ex, sym)].add(key)

    # ----------------------------------------------------------------- recovery

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

    def _out(self, topic: str, msg: wire.Msg) -> None:
        if self._held is not None:
            self._held.append((topic, msg))
        else:
            self.pub.publish(topic, msg)

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

    # ----------------------------------------------------------------- polling

    def _on_ws_updates(self, lane: Lane) -> None:
        lane.updates_pull.recv(zmq.NOBLOCK)
        if lane.inflight is None:  # else they wait in the client's queue (see lanes.py)
            self._take_updates(lane)

    def _take_updates(self, lane: Lane) -> None:
        assert lane.adapter is not None and lane.updates is not None
        for item in lane.updates.take():
            if isinstance(item, dict):
                with lane.lock:
                    events = lane.adapter.on_order_update(item)
                self._on_broker_events(lane.account, events)

    def _maybe_poll(self) -> None:
        s = self.settings
        for lane in self.lanes.values():
            assert lane.updates is not None
            up = lane.updates.authenticated
            every = s.openalgo_poll_s if up else s.openalgo_poll_no_ws_s
            if lane.inflight is None and time.monotonic() - lane.last_poll >= every - 1e-3:
                self._poll(lane)

    def _poll(self, lane: Lane) -> None:
        lane.last_poll = time.monotonic()
        assert lane.adapter is not None
        with lane.lock:
            events, resolved = lane.adapter.poll()
        for order, outcome, broker_id in resolved:
            jo = self.orders.get(order.order_id)
            if jo is None:
                continue
            if outcome == "found":
                self.log.warning(
                    "unknown order found at the broker; its strategy stays halted until resumed",
                    order_id=order.order_id,
                    broker_id=broker_id,
                )
                self._set(jo, "open", broker_id=broker_id)
                self.by_broker_id[(lane.account, broker_id)] = order.order_id
            else:
                self.count_error(
                    "ALERT: unknown order never appeared at the broker; it stays UNKNOWN "
                    "and was not sent again",
                    order_id=order.order_id,
                    account=lane.account,
                )
        self._on_broker_events(lane.account, events)

    # ------------------------------------------------------------------ market

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick):
            if self.market_tap is not None:  # the in-process venue: its fills come back as
                self.market_tap(msg)  # order updates, like any broker's
                if self.main.updates and self.main.inflight is None:
                    self._take_updates(self.main)
            for key in self.keys_by_symbol.get((msg.exchange, msg.symbol), ()):
                self.ledger.mark(key, msg.ltp)

    def _publish_funds(self) -> None:
        """Each account's funds. A failed poll is a warning (the broker may still be
        starting); three in a row are an error, counted once per outage."""
        for lane in self.lanes.values():
            try:
                funds = self._funds(lane)
            except ConnectionError as exc:
                self.counts["funds_failures"] += 1
                lane.funds_failing += 1
                if lane.funds_failing == 3:
                    self.count_error(
                        "funds unavailable three times in a row",
                        account=lane.account,
                        reason=str(exc),
                    )
                else:
                    self.log.warning("funds unavailable", account=lane.account, reason=str(exc))
                continue
            lane.funds_failing = 0
            self.pub.publish("exec.funds", funds)

    @staticmethod
    def _funds(lane: Lane) -> wire.Funds:
        with lane.lock:
            funds = lane.broker.funds()
        return msgspec.structs.replace(funds, account=lane.account)

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
                    with self.main.lock:
                        per = self.main.broker.margin_per_lot(ex, sym, action, prod, inst.lot_size)
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
        return snapshots(self.ledger)

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
        if q.kind in ("strategy_positions", "orders"):
            # A restarted engine or risk catching up (orders still working), or the
            # reconciler (every order of the day, final or not).
            reply = wire.BrokerReply(
                ok=True,
                snapshots=self._snapshots() if q.kind == "strategy_positions" else [],
                last_fill_no=self.fill_no,
                working=[
                    wire.WorkingOrder(
                        order=jo.order,
                        status=PUBLISHED_STATUS.get(jo.state, jo.state),  # type: ignore[arg-type]
                        filled_qty=jo.filled,
                        avg_price=jo.avg,
                        broker_order_id=jo.broker_id,
                    )
                    for jo in self.orders.values()
                    if jo.order.op == "place" and (q.kind == "orders" or not jo.final)
                ],
            )
            self.rep.send(wire.encode_body(reply))
            return
        if q.kind in ("funds", "positions"):
            lane = self.lanes.get(q.account)
            try:
                if lane is None:
                    raise ConnectionError(f"no account {q.account!r} at the router")
                if q.kind == "funds":
                    reply = wire.BrokerReply(ok=True, funds=self._funds(lane))
                else:
                    self._quiesce(lane)
                    with lane.lock:
                        book = lane.broker.positionbook()
                    reply = wire.BrokerReply(ok=True, positions=book, last_fill_no=self.fill_no)
            except ConnectionError as exc:
                self.count_error(f"{q.kind} unavailable", account=q.account, reason=str(exc))
                reply = wire.BrokerReply(ok=False, error=str(exc))
        else:
            fills = [f for f in self.fills if f.fill_no > q.since_fill_no]
            reply = wire.BrokerReply(ok=True, fills=fills, last_fill_no=self.fill_no)
        self.rep.send(wire.encode_body(reply))

    def detail(self) -> dict[str, Any]:
        """The main account's figures at the top level, every account's under ``accounts``."""
        per = {a: self._lane_detail(lane) for a, lane in self.lanes.items()}
        return {
            "broker": self.settings.broker,
            "mode": self.settings.mode,
            "working": len(self.by_broker_id),
            "unknown_orders": list(self.unknown_ids),
            "journal_appends": self.journal.appends,
            # the disk's share of the router's own latency figure (the write-ahead flush)
            "journal_flush_p50_us": round(float(np.percentile(self.journal.flush_us, 50)), 1)
            if self.journal.flush_us
            else 0.0,
            **per[MAIN],
            **({"accounts": per} if len(per) > 1 else {}),
            **self.counts,
        }

    @staticmethod
    def _lane_detail(lane: Lane) -> dict[str, Any]:
        out: dict[str, Any] = {"queued": len(lane.throttle), "in_flight": lane.inflight is not None}
        if lane.updates is not None and lane.adapter is not None:
            out["order_ws_up"] = lane.updates.authenticated
            out["order_ws_reconnects"] = lane.updates.reconnects
            out.update(lane.adapter.counts)
        return out

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

    def teardown(self) -> None:
        for lane in self.lanes.values():
            lane.close()  # waits for a batch in flight
        try:
            self._collect()  # its answers reach the journal (else recovery finds them)
        except Exception:
            self.log.warning("answers at stop not journaled", exc_info=True)
        self.lanes_done.close(0)
        self.journal.close()
        self.halts.pusher.close()
        if hasattr(self, "orders_in"):
            self.orders_in.close()
        self.rep.close(0)


def snapshots(ledger: Ledger) -> list[wire.PositionSnapshot]:
    """Each (strategy, exchange, symbol, product, account) position of ``ledger``, with
    its P&L."""
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
            account=account,
        )
        for (strategy, ex, sym, prod, account), p in ledger.positions.items()  # type: ignore[misc]
    ]
