"""The strategy engine: runs every enabled strategy (``runner.py``) and carries its
intents to risk.

Intents wait in a bounded queue while risk is unreachable and are refused (the strategy
gets a ``rejected`` update naming the reason) once they have waited ``MT_RISK_WAIT_S``:
nothing goes around risk. An intent is only sent once the engine has *received*
heartbeats from risk and the router, which proves that their order updates and fills
will reach it (no slow-joiner loss, and no ``sleep``).

An intent sent but never answered (risk's approval shows as the router's order update,
its refusal as a risk event) is settled as rejected after ``MT_INTENT_ANSWER_S``, naming
why: a strategy never waits on a silent "new" for ever. An answer that still comes after
that (a risk stalled for longer) takes the order up again in the strategy's books.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mytrading import hosttime
from mytrading.domain.accounts import Accounts
from mytrading.domain.bars import BarBuilder
from mytrading.domain.ids import roll_of
from mytrading.domain.refdata import RefData
from mytrading.engine import warmlog
from mytrading.engine.loader import StrategyLoadError, load, placeholder
from mytrading.engine.parts import LimitsOf, SetMargins
from mytrading.engine.runner import StrategyRunner
from mytrading.engine.watchdog import (
    HookDeadline,
    MemoryGuard,
    mark_stuck,
    rss_bytes,
    stuck_at_last_exit,
    stuck_today,
)
from mytrading.messaging import wire
from mytrading.messaging.catchup import (
    RESTORE_RETRY_S,
    SNAPSHOT_TRIES,
    FillSequence,
    Snapshot,
    UnreadWait,
    fetch_day,
    fetch_fills_since,
    fetch_snapshot,
)
from mytrading.messaging.interest import Declarer, entry
from mytrading.messaging.outbox import Outbox
from mytrading.openalgo.history import http_history
from mytrading.openalgo.paced import Fetcher
from mytrading.process.base import Daemon, Peer
from mytrading.process.host import Host
from mytrading.process.ownwork import OwnWork
from mytrading.settings import ConfigError, Settings

MAX_PENDING = 1000


class EngineDaemon(Daemon):
    name = "engine"
    required_peers = ("feed", "risk", "router")
    sub_prefixes = ("exec.", "risk.event.")

    def __init__(
        self,
        host: Host,
        settings: Settings,
        refdata: RefData,
        accounts: Accounts,
        margins: SetMargins | None = None,
        limits: LimitsOf | None = None,
        deadlines: bool = True,
    ) -> None:
        """``margins``: risk's margin table (a strategy that sizes a set itself);
        ``limits``: risk's limits by strategy (the price band a protective stop is kept
        inside); ``deadlines``: time the hooks out (SIGALRM and a watchdog process: not in
        the simulation, which runs every daemon in one thread)."""
        super().__init__(host, settings, refdata, accounts)
        self.margins = margins
        self.limits = limits
        self.deadlines = deadlines

    def setup(self) -> None:
        s = self.settings
        self.intents = self.host.pipe_out("pipe.intents", "intent")
        self.own_work = OwnWork()
        self.outbox: Outbox[wire.Intent] = Outbox(
            self.intents,
            self._peers_ready,
            s.risk.wait_s,
            self._refuse,
            self._why_not_ready,
            MAX_PENDING,
            key=lambda i: i.intent_id,
            retry_in=self.after,
        )
        self.refused = 0
        self.fill_seq = FillSequence(lambda after: fetch_fills_since(self.ask_router(), after))
        self._recheck_working = False  # working orders restored: their ends to be checked
        # orders the router's books showed ended while a strategy held them open, at the
        # latest periodic read (``_check_open_orders``): closed if the next read agrees
        self._seen_ended: set[str] = set()
        self.ends_taken = 0  # final updates taken from the router's books, not the bus
        self.unanswered = 0  # intents settled as rejected for want of an answer
        self.late_answers = 0  # ... answered after all, and taken up again
        self.gave_up: dict[str, wire.Intent] = {}  # by intent id, the newest kept
        history = None
        self.fetcher: Fetcher | None = None
        if s.broker == "openalgo":
            # OpenAlgo answers history ~3 calls a second: asked off the loop, one at a time
            history = http_history(
                s.rest_url(),
                s.api_key(),
                s.openalgo.timeout_s,
                self._builder_for,
                transport=self.host.transport(s.rest_url()),
            )
            self.fetcher = self.host.fetcher("engine-history")
        self.runner = StrategyRunner(
            self.refdata,
            self.clock.now_ns,
            self.clock.now,
            self._submit,
            self._need_ticks,
            run_id=format(self.started_ns // 1_000_000, "x"),  # unique per incarnation
            history=history,
            max_errors=s.engine.strategy_max_errors,
            mode=s.mode,
            need_depth=self._need_depth,
            fetcher=self.fetcher,
            margins=self.margins,
            deadline=self._deadline(),
            bands=(lambda name: limits.of(name).band()) if (limits := self.limits) else None,
        )
        self.declarer = Declarer(lambda m: self.publish(wire.interest_topic(self.name), m))
        loaded = load(s.strategies_dir, s.enabled_strategies())
        for path, why in loaded.unreadable.items():
            self.log.warning("a file in strategies/ was not read (no enabled strategy in it)",
                             file=path, reason=why)  # fmt: skip
        for cls in loaded.classes:
            try:
                self.runner.add(cls, s.params_for(cls.name))
            except ConfigError as exc:
                loaded.broken[cls.name] = str(exc)
        for name in loaded.broken:
            # Its positions and working orders are still the engine's to keep: a stand-in
            # holds them, quarantined from the start (protective exits kept, entries off).
            self.runner.add(placeholder(name), {})
        self.begun = False  # restored and started: until then nothing reaches a strategy
        self.unread = UnreadWait(self.log.warning, self.count_error, "strategies")
        self._held: list[wire.RiskEvent] = []  # the command layer's, taken up once begun
        self._broken = loaded.broken
        self._begin()

    def _begin(self) -> None:
        """Restore the strategies' positions from the router, then start them: no hook
        runs before (``_restore``). Asked again every ``RESTORE_RETRY_S`` while the router
        does not answer (``SNAPSHOT_TRIES`` times, then they start flat, said as an ALERT)
        or has not read an account's position book (for as long as it takes: started
        without those positions, the strategies would be blind to them for the day, the
        simulator's seed 991): ``UnreadWait.settled``. Meanwhile ticks, bars and fills are
        not taken: the snapshot taken at the end holds every fill before it."""
        snap = fetch_snapshot(self.ask_router())
        if not self.unread.settled(snap):
            self.after(RESTORE_RETRY_S, self._begin)
            return
        self._restore(snap)
        for name, why in self._broken.items():
            self.count_error("ALERT: enabled strategy does not load: quarantined",
                             strategy=name, traceback=why)  # fmt: skip
            self.runner.quarantine(name, f"does not load: {why}")
        for name, why in stuck_today(self._engine_dir, self._day).items():
            if name in self.runner.strategies and not self.runner.health[name].quarantined:
                self.log.warning("strategy stuck earlier today: kept quarantined",
                                 strategy=name, reason=why)  # fmt: skip
                self.runner.quarantine(name, why)
        self.runner.start()
        self.begun = True
        self.log.info("strategies loaded", strategies=list(self.runner.strategies),
                      quarantined=sorted(self._broken))  # fmt: skip
        s = self.settings
        self.every(0.5, self._settle_unanswered)
        self.every(0.05, self.runner.poll)
        self.memory = MemoryGuard(s.engine.max_rss_mb)
        if self.memory.limit:
            self.every(1.0, self._check_memory)
        self.every(0.25, self._declare, first_in=0)
        self.every(0.5, self._sync_states)
        self.every(1.0, self._keep_warmups)
        if s.engine.order_check_s:
            self.every(s.engine.order_check_s, self._check_open_orders)
        for event in self._held:
            self._take_up_switch(event.strategy, event.action, event.reason)
        self._held = []

    def _deadline(self) -> HookDeadline | None:
        """The hooks' deadlines (when ``deadlines``); first, whether the last engine was
        ended by the hard one (a strategy's hook it could not interrupt): that strategy is
        kept quarantined today (``engine/watchdog.py``)."""
        s = self.settings
        self._engine_dir = s.state_dir / "engine"
        self._day = self.clock.now().date().isoformat()
        self._engine_dir.mkdir(parents=True, exist_ok=True)
        found = stuck_at_last_exit(self._engine_dir)
        if found is not None:
            name, hook, trace = found
            why = (
                f"its {hook} hook could not be interrupted for {s.engine.hook_kill_s:g}s: the "
                "engine was ended and started again"
            )
            mark_stuck(self._engine_dir, self._day, name, why)
            self.count_error("ALERT: the engine was ended by a strategy's stuck hook; that "
                             "strategy stays quarantined today", strategy=name, hook=hook,
                             traceback=trace)  # fmt: skip
        if not self.deadlines:
            return None
        return HookDeadline(self._engine_dir, s.engine.hook_timeout_s, s.engine.hook_kill_s)

    def _check_memory(self) -> None:
        """Above the engine's memory limit: measure which strategy's hooks grow it for a
        couple of seconds, then stop that one (``MemoryGuard``)."""
        g, r = self.memory, self.runner
        if not g.since:
            if g.over():
                g.since = hosttime.monotonic()
                for h in r.health.values():
                    h.mem_grew = 0
                r.mem_probe = rss_bytes
            return
        if hosttime.monotonic() - g.since < g.ATTRIBUTE_S:
            return
        r.mem_probe = None
        g.since = 0.0
        grown = {n: h.mem_grew for n, h in r.health.items() if not h.quarantined}
        name = max(grown, key=lambda n: grown[n], default="")
        if not name or grown[name] <= 0:
            if not g.said_unattributed:
                g.said_unattributed = True
                self.count_error("ALERT: the engine is over its memory limit and no "
                                 "strategy's hooks grew it", rss_mb=rss_bytes() // 2**20,
                                 limit_mb=g.limit // 2**20)  # fmt: skip
            return
        before = rss_bytes()
        r.quarantine(name, f"memory: its hooks grew the engine by {grown[name] / 2**20:.0f} MB "
                     f"in {g.ATTRIBUTE_S:g}s over its limit of {g.limit // 2**20} MB")  # fmt: skip
        r.release(name)
        self.count_error("ALERT: a strategy allocating without bound was stopped by the "
                         "engine's memory limit; the others trade on", strategy=name,
                         grew_mb=round(grown[name] / 2**20), rss_mb_before=before // 2**20,
                         rss_mb_after=rss_bytes() // 2**20)  # fmt: skip

    def _restore(self, snap: Snapshot | None) -> None:
        """After a restart: strategies' positions from the router before any hook runs."""
        if snap is None:
            self.count_error(
                "ALERT: no position snapshot from the router after "
                f"{SNAPSHOT_TRIES} tries: strategies start flat; the reconciler reports what "
                "they hold"
            )
            return
        day = fetch_day(self.ask_router(), snap.last_fill_no)
        if day is None:
            self.count_error(
                "ALERT: no orders or fills from the router: bracket exits of "
                "fills made while the engine was down are not checked"
            )
        self.fill_seq.start_at(snap.last_fill_no)
        self._recheck_working = bool(snap.working)
        restored = self.runner.restore(snap.positions, snap.last_fill_no, snap.working, day)
        if restored or snap.working:
            self.log.info(
                "positions restored",
                positions=restored,
                working=[w.order.order_id for w in snap.working],
                last_fill_no=snap.last_fill_no,
            )

    def _builder_for(self, tf: str) -> BarBuilder:
        return self.runner.builders.get(tf) or BarBuilder(self.refdata.calendar, tf)

    def _need_ticks(self, exchange: str, symbol: str) -> None:
        self.subscribe(wire.exact(wire.tick_topic(exchange, symbol)))
        # the feed's 1-minute bars: those it fills from history after an outage
        # (closed_by "history") join the strategies' own (runner.on_backfill)
        self.subscribe(wire.exact(wire.bar_topic("1m", exchange, symbol)))

    def _need_depth(self, exchange: str, symbol: str) -> None:
        self.subscribe(wire.exact(wire.depth_topic(exchange, symbol)))

    def _declare(self) -> None:
        """What the strategies watch, for the feed to subscribe (depth where asked)."""
        depth = self.runner.depth_subs
        self.declarer.declare(
            [entry(ex, sym, 3 if depth.get((ex, sym)) else 2) for ex, sym in self.runner.watched]
        )

    def _keep_warmups(self) -> None:
        """The warm-ups handed since the last second, to the day's record
        (``engine/warmlog.py``); a write the disk refused is said, counted and tried again."""
        handed = self.runner.warm.handed
        n = len(handed)
        error = warmlog.keep(self._engine_dir, self.clock.now().date().isoformat(), handed)
        if error:
            self.count_error("warm-up record not written: kept to try again", error=error,
                             records=n)  # fmt: skip

    def _sync_states(self) -> None:
        """Risk's trading states from its latest heartbeat: what its events said, and what
        an engine started later (or a lost event) would not know."""
        peer = self.peers.get("risk")
        st = peer.status if peer is not None and self.peer_up("risk") else None
        states = st.detail.get("states") if st is not None else None
        if not isinstance(states, dict):
            return
        why = {k: str(w.get("reason", "")) for k, w in (states.get("why") or {}).items()}
        self.runner.sync_states(
            str(states.get("stack", "active")), dict(states.get("strategies") or {}), why
        )

    # ------------------------------------------------------------------ intents

    def _submit(self, intent: wire.Intent) -> None:
        seen = self.fill_seq.last
        if seen:  # risk judges it on no fewer fills than the strategy decided on
            intent = msgspec.structs.replace(intent, fills_seen=seen)
        if not self.outbox.put(intent):
            self._refuse(intent, "engine intent queue full")
        elif intent.origin_ns and not self.outbox:  # out at once, not waiting for risk
            self.own_work.sent(intent.origin_ns)

    def _peers_ready(self) -> bool:
        return self.peer_up("risk") and self.peer_up("router")

    def _why_not_ready(self) -> str:
        return "risk daemon unavailable" if not self.peer_up("risk") else "router unavailable"

    def _settle_unanswered(self) -> None:
        if not self.peer_up("risk"):
            return  # redelivered when it is back (on_peer_restart); refused by the queue
        wait = self.settings.engine.intent_answer_s
        for intent in self.outbox.overdue(wait):
            self.unanswered += 1
            self.gave_up[intent.intent_id] = intent
            while len(self.gave_up) > MAX_PENDING:
                del self.gave_up[next(iter(self.gave_up))]
            self.count_error("intent unanswered by risk: settled as rejected",
                             strategy=intent.strategy, intent=intent.intent_id)  # fmt: skip
            self._refuse(
                intent,
                f"no answer from risk within {wait:g}s (lost, unreadable, or risk stalled)",
            )

    def _late_answer(self, intent_id: str, status: str) -> None:
        """An answer for an intent settled as unanswered: if it was approved after all,
        its order is working again in the strategy's books before the update arrives."""
        intent = self.gave_up.pop(intent_id, None)
        if intent is None or status == "rejected":
            return
        self.late_answers += 1
        self.log.warning("an intent settled as unanswered was answered late: taken up",
                         strategy=intent.strategy, intent=intent_id, status=status)  # fmt: skip
        self.runner.take_up(intent)

    def _refuse(self, intent: wire.Intent, reason: str) -> None:
        self.refused += 1
        self.log.warning(
            "intent refused", strategy=intent.strategy, intent=intent.intent_id, reason=reason
        )
        self.runner.on_order_update(
            wire.OrderUpdate(
                order_id="",
                intent_id=intent.intent_id,
                strategy=intent.strategy,
                exchange=intent.exchange,
                symbol=intent.symbol,
                action=intent.action,
                quantity=intent.quantity,
                status="rejected",
                reason=reason,
            )
        )

    # ----------------------------------------------------------------- dispatch

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if not self.begun:  # not restored yet (``_begin``): a command waits, the rest goes
            if isinstance(msg, wire.RiskEvent) and msg.kind == "control":
                self._held.append(msg)
            return
        if isinstance(msg, wire.Tick):
            now = hosttime.time_ns()
            self.record_latency_ns(now - msg.ts)
            self.own_work.read(msg.ts, now)  # an intent it causes carries ``origin_ns``
            self.runner.on_tick(msg)
        elif isinstance(msg, wire.Depth):
            self.runner.on_depth(msg)
        elif isinstance(msg, wire.Bar):
            if msg.closed_by == "history":
                self.runner.on_backfill(msg)
        elif isinstance(msg, wire.OrderUpdate):
            self.outbox.ack(msg.intent_id)
            roll = roll_of(msg.intent_id)
            if roll:  # a leg of an approved roll answers for the roll's intent
                self.outbox.ack(roll)
            if self.gave_up:
                self._late_answer(msg.intent_id, msg.status)
            self.runner.on_order_update(msg)
        elif isinstance(msg, wire.Fill):
            for f in self.fills_in_order(self.fill_seq, msg):
                self.runner.on_fill(f)
        elif isinstance(msg, wire.RiskEvent):
            if msg.kind == "control":  # the command layer's: enable, disable, parameters
                self._take_up_switch(msg.strategy, msg.action, msg.reason)
                return
            if msg.intent_id:
                self.outbox.ack(msg.intent_id)
            self.runner.on_risk_event(msg)

    def _take_up_switch(self, name: str, action: str, reason: str) -> None:
        """``config/strategies.toml`` changed for ``name`` by the command layer (which
        checked it as ``config check`` does and wrote it): the strategy started, stopped,
        or made again with its new parameters, the others untouched. One that still
        holds a position or a working order is left as it runs (the command layer
        refuses that; this guards a race), said as an error."""
        s = self.settings
        try:
            want = name in s.enabled_strategies()
            params = s.params_for(name) if want else {}
        except ConfigError as exc:
            self.count_error("strategy change not taken: config/strategies.toml", strategy=name,
                             error=str(exc))  # fmt: skip
            return
        running = name in self.runner.strategies
        if running:
            held = self.runner.holds(name)
            if held:
                self.count_error("strategy change not taken: it holds positions or orders",
                                 strategy=name, action=action, holds=held)  # fmt: skip
                return
        if want:
            try:
                loaded = load(s.strategies_dir, [name])
            except StrategyLoadError as exc:
                self.count_error("strategy change not taken", strategy=name, error=str(exc))
                return
            if not loaded.classes:
                self.count_error("strategy change not taken: it does not load", strategy=name,
                                 why=loaded.broken.get(name, "no class"))  # fmt: skip
                return
            try:
                loaded.classes[0].Params(**params)  # before the running one is stopped
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                self.count_error("strategy change not taken", strategy=name, error=str(exc))
                return
        if running:
            self.runner.remove(name)
        if want:
            self.runner.start_one(loaded.classes[0], params)  # checked above: it loads
        self.log.warning("strategy " + ("restarted with new parameters" if running and want
                         else "enabled" if want else "disabled"), strategy=name,
                         params=params, reason=reason)  # fmt: skip

    def on_peer_status(self, st: wire.Status) -> None:
        if not self.begun:
            return
        if st.name == "feed":  # an outage's minutes on their way: 1-minute bars wait
            self.runner.set_backfilling(bool(st.detail.get("backfilling")))
        for f in self.fills_caught_up(self.fill_seq, st):
            self.runner.on_fill(f)
        if st.name == "router" and self._recheck_working:
            self._ended_while_joining()

    def _ended_while_joining(self) -> None:
        """After a restore, the first heartbeat from the router proves this SUB is
        attached: an order the router now shows final that a strategy still holds open
        ended while the subscription was being made (its update went to nobody), and its
        final update is taken from the router's books now (fills come by their numbers,
        ``FillSequence``). Asked again at the next heartbeat if the router does not answer."""
        ended = self._ended_at_router()
        if ended is None:
            return
        self._recheck_working = False
        self._take_ends(ended)

    def _check_open_orders(self) -> None:
        """While a strategy holds orders open: an order's final update lost on the bus
        (a SUB queue full under load) would leave it open in the strategy's view until a
        cancel or a restart. The router's books are read; an order they show ended that a
        strategy still holds open at two reads in a row (``order_check_s`` apart: an
        update in flight on the bus has long arrived) is closed from them."""
        if not any(ctx.open_orders for ctx in self.runner.contexts.values()):
            self._seen_ended = set()
            return
        if not self.peer_up("router"):
            return  # asked at the next turn (a request to a dead router would block)
        ended = self._ended_at_router()
        if ended is None:
            return
        ids = {w.order.order_id for w in ended}
        self._take_ends([w for w in ended if w.order.order_id in self._seen_ended])
        self._seen_ended = ids

    def _ended_at_router(self) -> list[wire.WorkingOrder] | None:
        """The orders the router's books show final that a strategy still holds open
        (a child whose end was heard left out); None when the router did not answer."""
        reply = self.host.request("rpc.router", wire.BrokerQuery(kind="orders"))
        if not isinstance(reply, wire.BrokerReply) or not reply.ok:
            return None
        out = []
        for w in reply.working:
            o = w.order
            ctx = self.runner.contexts.get(o.strategy)  # a follower's book: not a strategy
            oo = ctx.open_orders.get(o.intent_id) if ctx is not None else None
            if oo is None or w.status not in wire.TERMINAL_STATUSES:
                continue
            if o.parts > 1 and oo.children.get(o.order_id, ("",))[0] in wire.TERMINAL_STATUSES:
                continue  # this child's end was heard
            out.append(w)
        return out

    def _take_ends(self, ended: list[wire.WorkingOrder]) -> None:
        """Each order's final update as the router's books have it, to its strategy."""
        for w in ended:
            o = w.order
            self.runner.on_order_update(
                wire.OrderUpdate(
                    order_id=o.order_id, intent_id=o.intent_id, strategy=o.strategy,
                    exchange=o.exchange, symbol=o.symbol, action=o.action,
                    quantity=o.quantity, status=w.status,
                    broker_order_id=w.broker_order_id, filled_qty=w.filled_qty,
                    avg_price=w.avg_price, sent_ns=w.sent_ns, part=o.part,
                    parts=o.parts, account=o.account,
                )
            )  # fmt: skip
        if ended:
            self.ends_taken += len(ended)
            self.log.warning("order updates missed on the bus were taken from the router",
                             orders=[w.order.order_id for w in ended])  # fmt: skip

    def on_peer_restart(self, peer: Peer) -> None:
        """Intents a killed risk daemon never answered go again; it refuses none of them
        as duplicates (its memory of intent ids died with it), and the router drops an
        order it already journaled, so none reaches the broker twice."""
        if peer.name == "risk":
            n = self.outbox.redeliver()
            if n:
                self.log.warning("intents sent again after a risk restart", intents=n)

    # ------------------------------------------------------------------- status

    def extra_sent(self) -> int:
        return self.intents.sent

    def detail(self) -> dict[str, Any]:
        return {
            "restored": self.begun,  # False: waiting for the router (``_begin``)
            "strategies": self.runner.stats(),
            "pending_intents": len(self.outbox),
            "restored_fill_no": self.runner.restored_fill_no,
            "fills_recovered": self.fill_seq.recovered,
            "order_ends_recovered": self.ends_taken,
            "refused": self.refused,
            "unanswered": self.unanswered,
            "late_answers": self.late_answers,
            # the strategies' bars by timeframe: how they closed, ticks left out as late
            "bars": {tf: b.stats.as_dict() for tf, b in self.runner.builders.items()},
            # first live bars handed partial: the broker's whole copy did not come within
            # FIRST_BAR_WAIT_S (engine/warmup.py; a start with many instruments)
            "first_bars_partial": self.runner.warm.partial_kept,
            # a tick read to the first intent it caused handed to risk's pipe, p50
            "own_work_p50_us": self.own_work.p50_us(),
        }

    def teardown(self) -> None:
        self.runner.stop()
        if self.runner.deadline is not None:
            self.runner.deadline.close()
        if self.fetcher is not None:
            self.fetcher.close()
