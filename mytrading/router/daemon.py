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
import statistics
from collections.abc import Callable
from typing import Any

import msgspec

from mytrading import hosttime, venue
from mytrading.domain.accounts import MAIN, Account
from mytrading.domain.refdata import RefDataError
from mytrading.messaging import wire
from mytrading.messaging.outbox import Outbox
from mytrading.openalgo.broker import OrderEvent, Outcome, TradeEvent, order_update
from mytrading.orders.events import BrokerEvents
from mytrading.orders.state import UNSENT, OrderState, published
from mytrading.orders.tracker import TrackedOrder
from mytrading.process import live
from mytrading.process.base import Daemon, Peer
from mytrading.process.rehearsal import Rehearsal
from mytrading.router.books import Books
from mytrading.router.broker_reads import BrokerReads
from mytrading.router.expiry import ExpirySettler
from mytrading.router.faults import JOURNAL_RETRY_S, JournalFaults, Sessions
from mytrading.router.journal import Journal, prune_aside, rehearse
from mytrading.router.lanes import Call, Lane
from mytrading.router.publishing import Publications
from mytrading.router.queries import Queries
from mytrading.router.recovery import Recovery
from mytrading.router.session import expired_reply
from mytrading.router.table import OrderTable
from mytrading.router.worksplit import WorkSplit
from mytrading.settings import FaultSwitches

FUNDS_POLL_S = 2.0  # the broker's funds, for risk's margin checks (OpenAlgo: 0.5 req/s)
HALT_WAIT_S = 24 * 3600.0  # a halt for an unknown order waits for risk as long as it takes
JOURNAL_SYNC_S = 0.2  # the longest an answer from the broker stays unflushed
SEND_BATCH = 16  # orders per flush; a crash mid-batch leaves the unsent ones UNKNOWN
RECOVERY_HOLD_S = 0.5  # subscribers reconnect every 0.1 s (ZMQ_RECONNECT_IVL)
CRASH_EXIT = 86  # the exit code of an injected crash (MT_ROUTER_CRASH_AT)
CONFIRM_AGAIN_S = 3.0  # an account's position book unread at start: read again this often
S = OrderState


class RouterDaemon(Daemon):
    """The router's shell: sockets, lanes, timers, publications and status, around the
    parts it composes: ``OrderTable`` (journal, order states, broker-id index), ``Books``
    (positions, fills, marks), ``Recovery`` (the start: journal replayed, in-flight orders
    settled against the brokers) and ``BrokerReads`` (order updates, the polled order book,
    funds, margins). Each part is given what it works on; what it asks of the shell is
    ``RouterPorts`` (``router/ports.py``), which this class provides."""

    name = "router"
    required_peers = ("risk",)

    def setup(self) -> None:
        s = self.settings
        self.crash_at = FaultSwitches().router_crash_at  # the journal's tests only
        self.openalgo = s.broker == "openalgo"
        accounts = self.accounts
        confirmation = live.confirmed(s, accounts) if s.mode == "live" else None
        self.venue = venue.current(
            s, accounts, live.reported(confirmation) if confirmation else None
        )
        if confirmation is not None:
            for name in live.check_brokers(s, accounts, confirmation):
                self.log.warning("live: account not answering at start", account=name)
        legacy = venue.set_aside_legacy(s.state_dir, self.venue.dir)
        if legacy is not None:
            self.count_error(
                "ALERT: state kept before it was kept per venue is not restored (its venue "
                "is unknown); trading states were carried over, the rest kept aside",
                kept_in=str(legacy),
            )
        self.log.warning("orders: " + self.venue.banner(), venue=self.venue.id)
        self.lanes: dict[str, Lane] = {}
        self.market_taps: list[tuple[Lane, Callable[[wire.Tick], None]]] = []
        for acct in accounts.by_name.values():
            route = self.venue.routes[acct.name]
            if route.kind in ("local", "paper"):
                self.lanes[acct.name] = self._local_lane(acct, route)
            else:
                self.lanes[acct.name] = self._openalgo_lane(acct, route)
        if self.market_taps:
            self.subscribe("md.tick.")  # the in-process venues fill against every tick
        self.main = self.lanes[MAIN]
        self.expiry = ExpirySettler(self.refdata, self._subscribe_tick)
        self._said_missing: set[str] = set()
        # orders unknown at the broker now (their strategies held), and the fates of the
        # latest resolved: (order id, what became of it, market time)
        self.unknown_ids: dict[str, str] = {}  # our order id -> why unknown
        self.unknown_fates: collections.deque[tuple[str, str, str]] = collections.deque(maxlen=20)
        self.counts: collections.Counter[str] = collections.Counter()
        self._pump_at = math.inf  # monotonic time of the next scheduled send
        self._pump_due = False  # orders read that the end of the read will send
        # the router's own figure less the write-ahead flush its order waited for, per
        # order (the flush is the disk's; this is the router's work), stage by stage:
        # an order's flush and its pump's stamps until its answer comes
        self._pumped: dict[str, tuple[float, tuple[int, int, int, int]]] = {}
        self.work = WorkSplit()
        self.halts: Outbox[wire.Command] = Outbox(
            self.host.pipe_out("pipe.commands", "command"),
            lambda: self.peer_up("risk"),
            HALT_WAIT_S,
            lambda cmd, why: self.count_error("ALERT: a halt did not reach risk", reason=why),
            lambda: "risk is down",
            retry_in=self.after,
            retry_s=0.1,
        )
        self.table = OrderTable(
            Journal(self.venue.dir / "router" / "journal.bin", s.router.journal_fsync),
            self.clock.now_ns,
        )
        self.books = Books(self._watch_symbol, numbers=self.table)  # fills numbered by the table
        self.events = BrokerEvents(
            self.table,
            book=self._book_fill,
            publish=self.publish_order,
            seen=self.books.seen,
            error=self.count_error,
            warn=self.log.warning,
            counts=self.counts,
        )
        self.journal_faults = JournalFaults(
            self.table, self.clock, self, self.counts, self._journal_back
        )
        self.bus_out = Publications(
            self.host, self.table, self.books, self.journal_faults.down, self._crash
        )
        identities = {a: r.identity for a, r in self.venue.routes.items()}
        rep = self.journal_faults.open(identities)
        gone = prune_aside(self.table.journal.path, s.retention.journal_aside_keep_days)
        if gone:
            self.log.info("old kept-aside journal copies deleted", files=gone)
        self.reads = BrokerReads(self.lanes, self.table, s, self.refdata, self)
        self.sessions = Sessions(self.lanes, self.reads, self, self.counts)
        self.every(min(s.openalgo.poll_s, s.openalgo.poll_no_ws_s), self.reads.maybe_poll)
        if rep.new_file:
            self.log.warning(
                "no state of this venue here: starting clean", venue=self.venue.id,
                banner=self.venue.banner(),
            )  # fmt: skip
        for account, why in rep.set_aside.items():
            self.count_error(
                "ALERT: an account's journal records belong to another venue: not restored",
                account=account,
                why=why,
            )
        self.recovery = Recovery(self.table, self.books, self.lanes, self.reads.poll, self)
        self.recovery.run(rep)
        for jo in self.table.orders.values():  # unknown before the restart: looked for still
            if jo.state == S.UNKNOWN:
                self.unknown_ids.setdefault(jo.order.order_id, jo.reason)
        self._unknown_census()
        self.table.journal.sync()
        self.every(JOURNAL_SYNC_S, self.table.journal.sync)
        self._last_order = ""  # the last order read off the pipe (``_rehearse``)
        self.rehearsal = Rehearsal(
            s.router.rehearse_ms / 1000, self._rehearse, self._rehearse_failed
        )
        if self.rehearsal.every_s:
            self.every(self.rehearsal.every_s, self.rehearsal.run)
        self.every(JOURNAL_RETRY_S, self.journal_faults.retry)
        self.every(JOURNAL_RETRY_S, self.journal_faults.roll)
        self.after(RECOVERY_HOLD_S, lambda: self._release(rep.fills))
        self.queries = Queries(
            self.table, self.books, self.lanes, self.reads, self.recovery, self._quiesce, self
        )
        self.host.serve("rpc.router", self.answer)
        self.every(self.settings.liveness.heartbeat_s, self._publish_positions)
        self.every(FUNDS_POLL_S, self.reads.publish_funds, first_in=0)
        self.every(FUNDS_POLL_S, self.reads.maybe_margins)
        self.every(1.0, self.sessions.probe)
        self.every(CONFIRM_AGAIN_S, self.recovery.confirm_again)  # an account unread at start
        self.every(1.0, self._settle_expired)

    def _local_lane(self, acct: Account, route: venue.Route) -> Lane:
        """A simulated venue in this process (``MT_BROKER=sim``, or a paper account),
        through the same OpenAlgo adapter: its REST calls go to the venue's request
        handling without a socket, its order updates arrive as the WebSocket's JSON, and it
        fills against the ticks this router receives (a paper account's are the live quotes
        of its OpenAlgo, published by the feed). Calls run inline: no network to wait for.
        Its books are kept in the venue's directory."""
        s = self.settings
        books = self.venue.dir / "books" / acct.name
        local = venue.local_broker(s, self.refdata, self.clock, books)
        adapter = venue.broker_adapter(
            venue.LOCAL_KEY,
            venue.LOCAL_URL,
            s.openalgo.timeout_s,
            lambda: self.clock.now_ns() / 1e9,
            local=local.request,
        )
        lane = Lane(acct.name, adapter, Lane.rates(acct), route=route)
        lane.updates = local.updates
        adapter.pushing = lambda: local.updates.pushing
        adapter.steps_of = self._steps_of
        adapter.absent_s = s.openalgo.absent_s
        self.market_taps.append((lane, local.on_tick))
        self.log.info("broker: " + route.describe(), account=acct.name)
        return lane

    def _openalgo_lane(self, acct: Account, route: venue.Route) -> Lane:
        """An OpenAlgo account: REST adapter, its rate limits, order changes as OpenAlgo
        pushes them and the order book polled behind them (every ``openalgo_poll_s``;
        every ``openalgo_poll_no_ws_s`` while the socket is down)."""
        s = self.settings
        adapter = venue.broker_adapter(
            acct.api_key,
            acct.rest_url,
            s.openalgo.timeout_s,
            lambda: self.clock.now_ns() / 1e9,
            transport=self.host.transport(acct.rest_url),
        )
        adapter.absent_s = s.openalgo.absent_s
        lane = Lane(acct.name, adapter, Lane.rates(acct), route=route)
        wake = self.host.wakeup(self.guarded(lambda: self.reads.on_ws_updates(lane)))
        updates = venue.order_update_feed(acct.ws_url, acct.api_key, wake, name=acct.name)
        lane.updates = updates
        adapter.pushing = lambda: updates.pushing
        adapter.steps_of = self._steps_of
        self.host.start_ws(updates)
        lane.pool = self.host.worker(f"lane-{acct.name}", self.guarded(self._collect))
        self.log.info(
            "broker: " + route.describe(),
            account=acct.name,
            orders_per_s=acct.orders_per_s,
            timeout_s=s.openalgo.timeout_s,
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
        if msg.order_id in self.table:
            # Risk sends again what a killed router never answered: expected, not an error.
            self.counts["duplicates_dropped"] += 1
            self.log.warning("duplicate order not sent", order_id=msg.order_id)
            return
        jo = self.table.add(msg)
        self._last_order = msg.order_id
        self.rehearsal.worked()
        target = self.table.get(msg.ref_order_id) if msg.op == "cancel" else None
        if target is not None and target.state == S.NEW:
            # Still queued here, never handed to its broker (cancels go ahead of entries,
            # so the broker would otherwise get the entry after its cancel): it ends here,
            # with the journal refusing writes too (its records wait for the disk; a crash
            # before then leaves it NEW, and a restart sends no NEW order). The simulator's
            # seed 157: risk's cancel of a queued entry at the kill switch was refused for
            # a full disk, and the entry went to the broker after the switch.
            self._cancel_unsent(jo, target)
            return
        if self.journal_faults.down():
            self.journal_faults.refuse(jo)
            return
        lane = self.lanes.get(msg.account)
        if lane is None:
            self.count_error("order for an account not configured", account=msg.account)
            self.reject(jo, f"no account {msg.account!r} at the router")
            return
        if lane.route is None or not lane.route.sends:
            self.counts["dry_run"] += 1
            self.log.info("dry run: order not sent", order_id=msg.order_id, symbol=msg.symbol)
            self.reject(jo, f"dry_run: {msg.op} not sent")
            return
        if lane.session.expired:
            self.sessions.refuse(lane, jo)
            return
        lane.throttle.push(msg.order_id, "order", msg.exit or msg.op == "cancel")
        self._crash("new")  # read, not yet journaled
        self._pump_due = True  # at the end of this read of the pipe: one flush for all

    def _rehearse(self) -> bool:
        """The last order's journal record framed again, nothing written, while no order
        has come for a while (``journal.rehearse``, ``MT_ROUTER_REHEARSE_MS``)."""
        jo = self.table.get(self._last_order)
        if jo is None:  # none yet, or gone with its day
            return False
        rehearse(jo)
        return True

    def _rehearse_failed(self) -> None:
        self.count_error("rehearsal failed", order_id=self._last_order, exc_info=True)

    def _cancel_unsent(self, jo: TrackedOrder, target: TrackedOrder) -> None:
        """``jo`` cancels ``target``, which never left: it ends here, and so does ``jo``."""
        self.table.set(target, S.CANCELLED, reason=f"{UNSENT}{jo.order.order_id}")
        self.publish_order(target)
        self.table.set(jo, S.COMPLETE)
        self.publish_order(jo)  # the cancel itself is done: its sender hears so
        self.counts["cancelled_unsent"] += 1
        self.log.info("cancelled before sending", order_id=target.order.order_id)

    def _after_orders(self) -> None:
        """The pipe's batch is read: send now, before the loop turns to ticks and timers
        (an order waited behind a batch of ticks and a trip through the timer heap); then
        journal what did not go."""
        if self._pump_due:
            self._pump_due = False
            self._pump()
        if self.table.journal_unsent():
            self._crash("queued")

    def _schedule_pump(self, wait: float) -> None:
        at = hosttime.monotonic() + wait
        if at < self._pump_at:
            self._pump_at = at
            self.after(wait, self._pump)

    def _pump(self) -> None:
        """Send what the rate limits allow now to every idle lane (group commit: the
        batches' ``sent`` records and every queued ``new`` reach the disk in one flush
        before the first broker call; each lane then calls its broker on its own thread);
        come back when the next may go. A busy lane is pumped when its answers are in."""
        self._pump_at = math.inf
        started = hosttime.time_ns()
        now = hosttime.monotonic()
        batches: dict[str, list[tuple[TrackedOrder, str | None]]] = {}
        for lane in self.lanes.values():
            if lane.inflight is not None:
                continue
            if not lane.throttle:  # nothing queued: the last batch's sends are counted
                if lane.taken:
                    self._restamp(lane)
                continue
            batch: list[tuple[TrackedOrder, str | None]] = []
            took: dict[str, int] = {}
            while len(batch) < SEND_BATCH and (item := lane.throttle.pop_ready(now)) is not None:
                took[item.cls] = took.get(item.cls, 0) + 1
                jo = self.table.get(item.key)
                if jo is not None and jo.state == S.NEW:
                    target = (
                        self.table.get(jo.order.ref_order_id) if jo.order.op == "cancel" else None
                    )
                    if target is not None and target.state == S.NEW:
                        # its order was held back after an unanswered call (``Lane._run``)
                        # and waits behind it: both end here (cancels go first)
                        self._cancel_unsent(jo, target)
                        continue
                    if self.table.journal.fault:  # queued before the disk refused
                        self.journal_faults.refuse(jo)
                        continue
                    if lane.session.expired:  # queued before the session expired
                        self.sessions.refuse(lane, jo)
                        continue
                    batch.append((jo, self.table.target_of(jo)))
            lane.taken = took
            if batch:
                batches[lane.account] = batch
            else:
                self._restamp(lane)
        market_now = self.clock.now_ns()
        write = hosttime.time_ns()
        for batch in batches.values():
            for jo, _ in batch:
                self.table.set(jo, S.SENT, sync=False, attempt=jo.attempt + 1, sent_ns=market_now)
        written = hosttime.time_ns()
        self.table.journal.sync()
        if batches and self.journal_faults.down():  # their ``sent`` is not on the disk: none goes
            for batch in batches.values():
                for jo, _ in batch:
                    self.journal_faults.refuse(jo)
            batches = {}
        if batches:
            stamps = (started, write, written, hosttime.time_ns())
            pumped = (self.table.journal.last_flush_us, stamps)
            for batch in batches.values():
                for jo, _ in batch:
                    self._pumped[jo.order.order_id] = pumped
            self._crash("sent")
        for account, batch in batches.items():
            self.lanes[account].send(batch, self._call)
        self._collect()  # a lane without a thread (the in-process simulator) is done

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
                self._pumped.pop(jo.order.order_id, None)
                if call.error is not None:
                    err = repr(call.error)
                    self.count_error("send failed", order_id=jo.order.order_id, error=err)
                    if jo.state == S.SENT:
                        self.table.set(jo, S.UNKNOWN, reason=f"send failed: {err}")
                        self.alert_unknown(jo, f"send failed: {err}")
            self._restamp(lane)
            if lane.updates is not None:
                self.reads.take_updates(lane)
        now = hosttime.monotonic()
        waits = [
            lane.throttle.next_in(now) for lane in self.lanes.values() if lane.inflight is None
        ]
        wait = min((w for w in waits if w is not None), default=None)
        if wait is not None:
            self._schedule_pump(wait)

    def _quiesce(self, lane: Lane) -> bool:
        """The lane's batch answered and journaled, so that the broker's position book
        agrees with our fills and ``last_fill_no`` (a reader compares them); False while a
        call is still in flight. The loop never waits for it: a broker that answers late
        (or not, until our timeout) would stop the router's heartbeats, every other
        account's orders and every answer with it; the asker asks again."""
        if lane.inflight is not None:
            if not lane.inflight.done():
                return False
            self._collect()
        return True

    @staticmethod
    def _restamp(lane: Lane) -> None:
        for cls, n in lane.taken.items():
            lane.throttle.restamp(cls, n, hosttime.monotonic())
        lane.taken = {}

    @staticmethod
    def _call(lane: Lane, item: tuple[TrackedOrder, str | None]) -> Call:
        """The broker call for one order journaled as ``sent``, on its lane's thread; it
        touches nothing of the router's (the amend's target was resolved before)."""
        jo, target = item
        o = jo.order
        wall = hosttime.time_ns()
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

    def _answered(self, lane: Lane, jo: TrackedOrder, call: Call) -> None:
        """Journal and publish what the broker answered for one order."""
        o = jo.order
        if call.error is not None:
            return
        if call.held:  # never made: back in the queue, the attempt not counted
            jo.attempt -= 1
            self.counts["held_after_unanswered"] += 1
            # (a held cancel of a held order: the pump ends both, cancels going first)
            self.table.set(jo, S.NEW, reason="held: an earlier order of its batch went unanswered")
            lane.throttle.push(o.order_id, "order", o.exit or o.op == "cancel")
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
            pumped = self._pumped.get(o.order_id)
            if pumped is not None:
                self.work.add(jo.recv_ns, pumped[1], call.wall_ns, pumped[0])
        if result.outcome is Outcome.ACCEPTED:
            self.table.at_broker(jo, result.orderid)
            self._crash("open")
            self.counts["sent"] += 1
            self.reads.watch_margin(o)
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
            self.on_broker_events(lane.account, events)
        elif result.outcome is Outcome.UNKNOWN:
            why = f"unknown: {result.message}"
            self.table.set(jo, S.UNKNOWN, reason=why)
            self.alert_unknown(jo, why)
        elif expired_reply(result.http_status, result.message):
            self.session_expired(lane, result.message)
            self.sessions.refuse(lane, jo)
        elif result.outcome is Outcome.RETRY and jo.attempt < self.settings.router.max_attempts:
            self._retry_later(lane, jo, result.message, result.retry_after_s)
        else:
            self.counts["broker_rejected"] += 1
            self.log.warning("broker rejected order", order_id=o.order_id, reason=result.message)
            self.reject(jo, result.message)

    def _journal_back(self) -> int:
        """The journal is written again (``router/faults.py``): the fills held meanwhile
        go out, in order, then the orders waiting; how many fills."""
        released = self.bus_out.release_unflushed()
        if self._pump_at == math.inf:
            self._schedule_pump(0.0)
        return released

    def session_expired(self, lane: Lane, why: str) -> None:
        self.sessions.expired(lane, why)

    def _retry_later(self, lane: Lane, jo: TrackedOrder, why: str, retry_after_s: float) -> None:
        """It certainly did not reach the broker (a 429, a refused connection): back in the
        queue after a backoff, or the broker's ``retry_after`` when that is longer."""
        s = self.settings
        now = hosttime.monotonic()
        backoff = s.router.retry_backoff_s * 2 ** (jo.attempt - 1)
        pause = min(retry_after_s, s.router.retry_after_max_s)
        if pause:
            lane.throttle.pause("order", now, pause)
        self.table.set(jo, S.NEW, reason=f"attempt {jo.attempt} not sent: {why}")
        lane.throttle.push(jo.order.order_id, "order", jo.order.exit, due=now + max(backoff, pause))
        self.counts["retries"] += 1
        self.log.warning(
            "order not sent; retrying",
            order_id=jo.order.order_id,
            attempt=jo.attempt,
            in_s=round(max(backoff, pause), 3),
            reason=why,
        )

    def _amended(self, lane: Lane, jo: TrackedOrder, call: Call) -> None:
        """A modify or cancel of a working order was answered (``orders/events.py``: the
        same handling as the backtest's venue); an expired session is the router's."""
        msg = jo.order
        target = self.table.get(msg.ref_order_id)
        if call.result is None or target is None:
            self.reject(jo, f"{msg.op}: {msg.ref_order_id} is not working")
            return
        result = call.result
        if not result.ok and expired_reply(result.http_status, result.message):
            self.session_expired(lane, result.message)
            self.sessions.refuse(lane, jo)
            return
        self.log.info(
            f"{msg.op} {'done' if result.ok else 'refused'}",
            order_id=msg.ref_order_id,
            broker_id=target.broker_id,
            reason=result.message,
        )
        self.events.amended(lane.account, jo, target, result.ok, result.message, call.events)

    def on_broker_events(self, account: str, events: list[OrderEvent | TradeEvent]) -> None:
        self.events.apply(account, events)

    def reject(self, jo: TrackedOrder, reason: str) -> None:
        self.table.set(jo, S.REJECTED, reason=reason)
        self.publish_order(jo)

    def publish_order(self, jo: TrackedOrder) -> None:
        status = published(jo.state)
        self._update(
            jo.order,
            status,
            broker_id=jo.broker_id,
            filled=jo.filled,
            avg=jo.avg,
            reason=jo.reason,
            sent_ns=jo.wall_sent_ns,
        )

    def alert_unknown(self, jo: TrackedOrder, why: str) -> None:
        """An order that may or may not be at the broker: never sent again. Its strategy
        is halted (through risk, the one keeper of trading states) until the order is
        found at the broker or is certainly absent (``unknown_resolved``)."""
        o = jo.order
        self.counts["unknown"] += 1
        self.unknown_ids[o.order_id] = why
        self.count_error(
            "ALERT: order state unknown; strategy halted until it is found at the broker or "
            "certainly absent; never sent again",
            order_id=o.order_id,
            strategy=o.strategy,
            symbol=o.symbol,
            action=o.action,
            qty=o.quantity,
            reason=why,
        )
        self.publish_order(jo)
        self.halts.put(
            wire.Command(
                command="unknown",
                value="open",
                target=o.strategy,
                ref=o.order_id,
                reason=why,
                issued_by=self.name,
            )
        )

    def unknown_resolved(self, jo: TrackedOrder, fate: str) -> None:
        """An unknown order's fate is known (``fate``: found at the broker as ..., or
        certainly never placed): said, kept for ``status``, and its strategy's hold in
        risk released for it."""
        o = jo.order
        self.unknown_ids.pop(o.order_id, None)
        self.counts["unknown_resolved"] += 1
        self.unknown_fates.append((o.order_id, fate, self.clock.now().isoformat()[:19]))
        self.log.warning("unknown order resolved", order_id=o.order_id, strategy=o.strategy,
                         fate=fate)  # fmt: skip
        self.halts.put(
            wire.Command(
                command="unknown",
                value="resolved",
                target=o.strategy,
                ref=o.order_id,
                reason=fate,
                issued_by=self.name,
            )
        )

    def on_peer_restart(self, peer: Peer) -> None:
        if peer.name == "risk":
            # what the dead risk had read and not acted on went with it (the simulator's
            # seed 532: a resolution pushed 0.2 s before risk was killed, never applied)
            self._unknown_census()

    def _unknown_census(self) -> None:
        """At start (and when risk restarts), risk's holds for unknown orders made to match
        the router's: each order still unknown said again (risk ignores one it holds), then
        the whole set, so that risk releases a hold for any order not in it. What an
        earlier router said may not have reached risk: its halts wait in memory for a risk
        that is down, and die with it (the simulator's seed 2 at 240x: a resolution waiting
        for a restarting risk was lost with a killed router, and two strategies stayed
        HALTED for the day)."""
        for oid, why in self.unknown_ids.items():
            jo = self.table.get(oid)
            if jo is None:
                continue
            self.halts.put(
                wire.Command(command="unknown", value="open", target=jo.order.strategy,
                             ref=oid, reason=why, issued_by=self.name)
            )  # fmt: skip
        self.halts.put(
            wire.Command(
                command="unknown",
                value="census",
                target="*",
                ref=",".join(sorted(self.unknown_ids)),
                reason="the router's unknown orders now",
                issued_by=self.name,
            )
        )

    def _crash(self, point: str) -> None:
        """Fault injection (``MT_ROUTER_CRASH_AT``, the simulator's ``crash_at``): die like
        kill -9 at this step of an order's life."""
        if self.crash_at == point:
            self.table.journal.sync()  # what a real crash leaves: the page cache survives it
            self.host.crash(CRASH_EXIT)

    def _update(
        self,
        o: wire.Order,
        status: wire.OrderStatus,
        broker_id: str = "",
        filled: int = 0,
        avg: float = 0.0,
        reason: str = "",
        sent_ns: int = 0,
    ) -> None:
        self.bus_out.out(
            f"exec.order.{o.strategy}",
            order_update(o, status, broker_id, filled, avg, reason, sent_ns),
        )

    def fill(self, jo: TrackedOrder, t: TradeEvent) -> None:
        """One trade of ``jo``, booked once (recovery's reads of the broker's books come
        here as its events do)."""
        self.events.fill(jo, t)

    def _book_fill(self, jo: TrackedOrder, t: TradeEvent) -> None:
        o = jo.order
        fill = self.books.next_fill(o, t)
        self.bus_out.record(fill)
        self.counts["fills"] += 1
        self.log.info(
            "fill",
            order_id=o.order_id,
            symbol=o.symbol,
            action=o.action,
            qty=t.quantity,
            price=t.price,
            fill_no=fill.fill_no,
            account=o.account,
        )

    # ----------------------------------------------------------------- recovery

    def _release(self, journaled_fills: list[wire.Fill]) -> None:
        """Subscribers are back: publish the journal's fills (readers drop the numbers they
        have; a crash may have cut the last one's publication), then what recovery held
        back, in order (``router/publishing.py``). Only then is new work accepted."""
        held = self.bus_out.release(journaled_fills)
        self.pipe_in("pipe.orders", self._on_order, then=self._after_orders)
        self.log.info("accepting orders", republished_fills=len(journaled_fills), held=held)

    def publish(self, topic: str, msg: wire.Msg) -> None:
        self.host.publish(topic, msg)

    # ------------------------------------------------------------------ books

    def _watch_symbol(self, exchange: str, symbol: str) -> None:
        """A symbol first held: its ticks mark the position, and a derivative's
        underlying's give its final settlement price (``router/expiry.py``)."""
        self._subscribe_tick(exchange, symbol)
        self.expiry.held(exchange, symbol)

    def _subscribe_tick(self, exchange: str, symbol: str) -> None:
        if not self.market_taps:  # an in-process venue's router reads every tick already
            self.subscribe(wire.exact(wire.tick_topic(exchange, symbol)))

    def _settle_expired(self) -> None:
        """Positions in contracts whose expiry session has closed: settled, each as a
        fill journaled before anyone hears of it (``router/expiry.py``)."""
        fills = self.expiry.due(self.books.ledger, self.clock.now())
        for f in fills:
            if self.books.seen(f.account, f.fill_id):
                continue
            fill = msgspec.structs.replace(f, fill_no=self.table.next_fill_no())
            self.bus_out.record(fill)
            self.counts["settlements"] += 1
            self.log.warning(
                "settled at expiry",
                strategy=fill.strategy,
                symbol=fill.symbol,
                action=fill.action,
                qty=fill.quantity,
                price=fill.price,
                kind=fill.settlement,
                fill_no=fill.fill_no,
                account=fill.account,
            )
        if fills:
            self.table.journal.sync()
        for sym, why in sorted(self.expiry.missing.items()):
            if sym not in self._said_missing:
                self._said_missing.add(sym)
                self.count_error(f"ALERT: {why}", symbol=sym)

    def _publish_positions(self) -> None:
        for snap in self.books.snapshots():
            self.publish(f"exec.position.{snap.strategy}", snap)

    def answer(self, raw: bytes) -> bytes:
        """``rpc.router``: one query read and answered (``router/queries.py``)."""
        self.msgs_in += 1
        try:
            q = wire.decode_body(raw)
            if not isinstance(q, wire.BrokerQuery):
                raise wire.WireError(f"expected a BrokerQuery, got {type(q).__name__}")
        except wire.WireError as exc:
            self.count_error("bad query", reason=str(exc))
            return wire.encode_body(wire.BrokerReply(ok=False, error=str(exc)))
        try:
            return wire.encode_body(self.queries.answer(q))
        except Exception as exc:  # a bug answering: the asker hears it, the router goes on
            self.count_error("query failed", kind=q.kind, exc_info=True)
            return wire.encode_body(wire.BrokerReply(ok=False, error=f"query failed: {exc!r}"))

    def _steps_of(self, exchange: str, symbol: str) -> tuple[float, int]:
        """(tick, the unit a trade is a multiple of: a contract's lot, one share)."""
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError:
            return 0.0, 0  # unknown here: the derived price is kept as it is
        return inst.tick_size, (inst.lot_size if inst.kind != "EQ" else 1)

    # ------------------------------------------------------------------ market

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick):
            for lane, tap in self.market_taps:  # in-process venues: their fills come back
                tap(msg)  # as order updates, like any broker's
                if lane.inflight is None:  # take() of an empty queue is one lock
                    self.reads.take_updates(lane)
            self.books.mark(msg)
            self.expiry.on_tick(msg)

    def detail(self) -> dict[str, Any]:
        """The main account's figures at the top level, every account's under ``accounts``."""
        per = {a: self._lane_detail(lane) for a, lane in self.lanes.items()}
        return {
            "broker": self.settings.broker,
            "mode": self.settings.mode,
            # where orders go, for status and the dashboard (LIVE said plainly)
            "venue": {
                "id": self.venue.id,
                "live": self.venue.live,
                "banner": self.venue.banner(),
                "routes": {a: r.describe() for a, r in self.venue.routes.items()},
            },
            "working": self.table.working(),
            "rehearsals": self.rehearsal.count,  # the last order's record framed, unwritten
            "unknown_orders": list(self.unknown_ids),
            "accounts_away": dict(self.reads.away),  # account -> since: broker not answering
            "unknown_fates": [list(r) for r in self.unknown_fates],
            # accounts whose broker session has expired: their orders are refused
            "sessions_expired": {
                a: lane.session.detail() for a, lane in self.lanes.items() if lane.session.expired
            },
            **(
                {"journal_damage": self.recovery.journal_damage}
                if self.recovery.journal_damage
                else {}
            ),
            # positions the broker did not confirm at start: nothing acts on them
            "unconfirmed": sorted("/".join(k) for k in self.recovery.unconfirmed),
            **({"funds_failures": self.reads.funds_failures} if self.reads.funds_failures else {}),
            "journal_appends": self.table.journal.appends,
            # every fill up to this one was published before this heartbeat, on the same
            # socket: a reader whose last is lower missed some (``recovery.FillSequence``)
            "last_fill_no": self.bus_out.published_fill_no,
            # the disk refuses the journal: orders refused, fills held (docs/operating.md)
            **(
                {
                    "journal_fault": self.table.journal.fault,
                    "journal_fault_since": round(self.table.journal.fault_since, 3),
                    "journal_held_bytes": self.table.journal.held_bytes,
                    "fills_held": len(self.bus_out.unflushed),
                }
                if self.table.journal.fault
                else {}
            ),
            # the disk's share of the router's own latency figure (the write-ahead flush)
            "journal_flush_p50_us": round(statistics.median(self.table.journal.flush_us), 1)
            if self.table.journal.flush_us
            else 0.0,
            # per order, its own figure less the flush it waited for: the router's work
            "work_p50_us": round(statistics.median(self.work.work_us), 1)
            if self.work.work_us
            else 0.0,
            "work_split_p50_us": self.work.p50(),
            **per[MAIN],
            **({"accounts": per} if len(per) > 1 else {}),
            **self.counts,
        }

    @staticmethod
    def _lane_detail(lane: Lane) -> dict[str, Any]:
        out: dict[str, Any] = {
            "queued": len(lane.throttle),
            "in_flight": lane.inflight is not None,
            "session": lane.session.detail(),
        }
        if lane.updates is not None:
            out["order_ws_up"] = lane.updates.pushing
            out["order_ws_reconnects"] = lane.updates.reconnects
        out.update(lane.broker.counts)
        return out

    def teardown(self) -> None:
        for lane in self.lanes.values():
            lane.close()  # waits for a batch in flight
        try:
            self._collect()  # its answers reach the journal (else recovery finds them)
        except Exception:
            self.log.warning("answers at stop not journaled", exc_info=True)
        self.table.journal.close()
