"""The risk daemon: the only path from an intent to the router.

The decisions are ``RiskCore``'s (``risk/core.py``, shared with the backtest); this
module is its shell: the sockets (intents and commands in, orders out through a bounded,
acknowledged outbox, events on ``risk.event.<strategy>``), persistence (trading states,
the day's marks, events in DuckDB), the broker reads risk needs (funds, the position
book, through the router), and the restore after a restart. Approved orders wait in the
outbox while the router is unreachable and are withdrawn with a RiskEvent after
``MT_RISK_WAIT_S``. The kill switch arrives as a ``Command`` on its own pipe and is
persisted, so a restarted risk daemon keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, cast

from mytrading import hosttime, venue
from mytrading.domain.accounts import MAIN, Accounts
from mytrading.domain.clock import MarketClock
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.messaging.catchup import (
    RESTORE_RETRY_S,
    FillSequence,
    UnreadWait,
    fetch_fills,
    fetch_fills_since,
    fetch_snapshot,
)
from mytrading.messaging.interest import Declarer, entry
from mytrading.messaging.outbox import Outbox
from mytrading.process.base import Daemon, Peer
from mytrading.process.host import Host
from mytrading.process.ownwork import OwnWork
from mytrading.process.rehearsal import Rehearsal
from mytrading.risk.config import RiskConfig, load_risk_config
from mytrading.risk.core import MAX_PENDING, RiskCore, RiskPorts
from mytrading.risk.events import EventLog, EventStore
from mytrading.risk.monitor import Key
from mytrading.risk.orders import rejected_event
from mytrading.risk.rules import Rejection
from mytrading.risk.schedule import Schedule, Scheduler, schedules_of
from mytrading.risk.state import MarksStore, StateStore, TradingStates
from mytrading.settings import ConfigError, Settings

BOOK_FRESH_S = 1.5  # a position book older than this confirms nothing
FUNDS_WAIT_S = 1.5  # the longest an intent waits for its accounts' first funds figure
FILLS_TRIES = 5  # a snapshot without the day's fills: asked again this many times
FUNDS_POLL_S = 0.05  # how often waiting intents look again


def build_core(
    s: Settings,
    refdata: RefData,
    accounts: Accounts,
    ports: RiskPorts,
    market_now: Callable[[], datetime],
    run_id: str,
    states: TradingStates | None = None,
    wall_ns: Callable[[], int] | None = None,
    monotonic: Callable[[], float] | None = None,
    cfg: RiskConfig | None = None,
    speed: float = 1.0,
    schedules: dict[str, Schedule] | None = None,
    reschedule: Callable[[], Scheduler | None] | None = None,
    clock: MarketClock | None = None,
) -> RiskCore:
    """The core as the daemon runs it, on risk's configuration (the process's
    ``StackConfig.risk``, or ``load_risk_config``'s). ``clock``: the market clock
    ``market_now`` reads (an intent's market time then worked out from its wall time)."""
    cfg = cfg or load_risk_config(s, accounts)
    return RiskCore(
        refdata,
        cfg.limits,
        cfg.margins,
        cfg.charges,
        accounts,
        ports,
        market_now,
        wall_ns=wall_ns,
        monotonic=monotonic,
        run_id=run_id,
        states=states,
        by="risk",
        speed=speed,
        schedule=Scheduler(schedules, refdata) if schedules else None,
        reschedule=reschedule,
        market_at=clock.market_at if clock is not None else None,
    )


def router_refusing(detail: dict[str, Any]) -> tuple[str, str, float]:
    """From a router's beat: why it refuses the lead account's orders ("" when it takes
    them), the cause as a rule, and since when (wall seconds; 0.0 not said). Raises
    ``ValueError``, ``TypeError`` or ``AttributeError`` on a detail of another shape."""
    expired = (detail.get("sessions_expired") or {}).get(MAIN)
    if expired is not None:
        return "the broker session expired", "session_expired", float(expired.get("since") or 0.0)
    fault = detail.get("journal_fault")
    if fault:
        since = float(detail.get("journal_fault_since") or 0.0)
        return f"its journal refused writes ({fault})", "journal_fault", since
    return "", "", 0.0


class RiskDaemon(Daemon):
    name = "risk"
    required_peers = ("router",)
    # ticks: live marks; funds and margin: the broker's figures, polled by the router
    sub_prefixes = ("exec.order.", "exec.fill.", "exec.funds", "exec.margin", "md.tick.")

    def __init__(
        self,
        host: Host,
        settings: Settings,
        refdata: RefData,
        accounts: Accounts,
        risk: RiskConfig | None = None,
        schedules: dict[str, Schedule] | None = None,
        events: EventLog | None = None,
    ) -> None:
        """``risk``: its files as validated (read here when not given); ``schedules``: the
        strategies' days and hours; ``events``: where its events are kept (DuckDB when
        not given)."""
        super().__init__(host, settings, refdata, accounts)
        self.risk_config = risk
        self.schedules = schedules
        self._events = events

    def setup(self) -> None:
        s = self.settings
        accounts = self.accounts
        self.venue = venue.for_daemon(s, accounts)  # its states and marks are this venue's
        venue.carry_legacy_states(s.state_dir, self.venue.dir)
        self.state_store = StateStore(self.venue.dir / "risk_state.json")
        states, problem = self.state_store.load()
        if problem:
            self.count_error("risk state unreadable", problem=problem)
        self.orders = self.host.pipe_out("pipe.orders", "order")
        self.pipe_in("pipe.intents", self._on_intent, malformed=self._on_bad_intent)
        self.pipe_in("pipe.commands", self._on_command)
        self.own_work = OwnWork()
        self.outbox: Outbox[wire.Order] = Outbox(
            self.orders,
            lambda: self.peer_up("router"),
            s.risk.wait_s,
            lambda order, reason: self.core.withdraw(order, reason),
            lambda: "router unavailable",
            MAX_PENDING,
            key=lambda o: o.order_id,
            retry_in=self.after,
            stale=self._halted_while_waiting,
        )
        self.store_errors = 0
        self._asking_about: list[wire.Order] = []  # halted entries the router may not hold
        # per account: when its position book was last read, and what it said
        self._book_read: dict[str, tuple[float, list[wire.BrokerPosition] | None]] = {}
        # funds and position books asked of the router without waiting for its answer
        self.asker = self.host.asker("rpc.router", self._on_router_reply)
        self._held: list[wire.Intent] = []  # intents waiting for a first funds figure
        self._held_since = 0.0  # when the first of them was held
        self._funds_from = 0.0  # since when the router has been there to ask
        self.events: EventLog = self._events or EventStore(
            s.stores.risk_db,
            self._store_failed,
            self._store_held,
            s.retention.risk_events_keep_days,
        )
        # risk's own start (a restart, after the day's first): the day's shadow reads it
        self.keep(wire.RiskEvent(strategy="*", kind="start", rule=self.name, action="started",
                                 reason=f"{self.name} started (pid {self.host.pid})"))  # fmt: skip
        self._router_refusing = ""  # why the router refuses the lead account's orders now
        self.core = build_core(
            s,
            self.refdata,
            accounts,
            self,
            self.clock.now,
            run_id=format(self.started_ns // 1_000_000, "x"),
            states=states,
            cfg=self.risk_config,
            speed=self.clock.speed,
            schedules=self.schedules,
            reschedule=self._schedules_again,
            clock=self.clock,
        )
        if self.core.limits.greek_caps():  # numba's import now, not in a first judgement
            import mytrading.options.greeks  # noqa: F401
        self.book = self.core.book
        self.post = self.core.post
        self.beat_ns: dict[str, int] = {}  # each peer's last status, market time
        self.fill_seq = FillSequence(lambda after: fetch_fills_since(self.ask_router(), after))
        self.fills_fetched = 0  # fills an intent's sender had seen, asked of the router first
        self.marks = MarksStore(self.venue.dir / "risk_marks.json")
        self.restored = False  # the router's positions taken (a fresh stack's: none)
        self._said_unrestored = False
        self._fills_tries = 0  # snapshots whose fills did not come
        self.unread = UnreadWait(self.log.warning, self.count_error, "intents")
        self._marks_taken = False  # risk_marks.json read (``_restore``'s first ask)
        self._restore()
        self.declarer = Declarer(lambda m: self.publish(wire.interest_topic(self.name), m))
        self.every(1.0, self._post_trade)
        self.rehearsal = Rehearsal(s.risk.rehearse_ms / 1000, self._rehearse, self._rehearse_failed)
        if self.rehearsal.every_s:
            self.every(self.rehearsal.every_s, self.rehearsal.run)
        self.every(0.5, self._declare, first_in=0)
        self.log.info(
            "risk limits", **self.core.limits.as_dict(), states=self.book.states.as_dict()
        )

    # ------------------------------------------------------- the core's ports

    def send(self, order: wire.Order) -> bool:
        if not self.outbox.put(order):
            return False
        if not self.outbox:  # out at once, not waiting for the router
            self.own_work.sent(order.intent_id)
        return True

    def emit(self, ev: wire.RiskEvent) -> None:
        """Publish a risk event and keep it in DuckDB (by the store's writer thread)."""
        self.publish(f"risk.event.{ev.strategy}", ev)
        self.keep(ev)

    def keep(self, ev: wire.RiskEvent) -> None:
        """Keep an event in DuckDB only: a fact of the day for its record (the day's
        shadow reads them), which no daemon acts on."""
        self.keep_at(None, ev)

    def keep_at(self, market_ns: int | None, ev: wire.RiskEvent) -> None:
        """``keep`` at the market moment ``market_ns`` (now when None): a fact a peer
        said later than it happened."""
        at = self.clock.now() if market_ns is None else datetime.fromtimestamp(market_ns / 1e9, IST)
        self.events.add(ev, hosttime.time_ns(), at)

    def _router_taking(self, st: wire.Status) -> None:
        """Whether the router takes the lead account's orders, from its beat: a broker
        session expired, a journal the disk refuses. Each change is kept as an event
        (kind ``router``, the cause as its rule, ``refusing`` or ``taking``). A beat whose
        detail does not read is logged and counted, and the beat goes on to the rest."""
        try:
            why, rule, since = router_refusing(st.detail)
        except (ValueError, TypeError, AttributeError) as exc:
            self.count_error("router beat unreadable", reason=str(exc))
            return
        if why == self._router_refusing:
            return
        was, self._router_refusing = self._router_refusing, why
        # refusing from the moment the router says it began (wall time: a beat later
        # here), taking again from this beat
        at = self.clock.market_at(int(since * 1e9)) if since else None
        self.keep_at(at, wire.RiskEvent(
            strategy="*", kind="router", rule=rule or "taking",
            action="refusing" if why else "taking",
            reason=f"the router refuses orders: {why}" if why else f"the router takes orders "
            f"again (it refused them: {was})"))  # fmt: skip

    def save_states(self, states: TradingStates, reason: str) -> None:
        self.state_store.save(states, reason)

    def room(self) -> int:
        return MAX_PENDING - len(self.outbox)

    def error(self, what: str, **ctx: object) -> None:
        self.count_error(what, **ctx)

    def want_funds(self, account: str) -> None:
        """Ask the router for an account's funds now, rather than refuse the first orders
        for want of a figure; the answer reaches the core when it comes (the loop does
        not wait for it)."""
        if self.peer_up("router"):
            self.asker.ask(("funds", account), wire.BrokerQuery(kind="funds", account=account))

    def broker_net(self, key: Key, account: str) -> int | None:
        """The broker's net for one position of one account, from the latest position-book
        read (at most one a second, shared by every exit job and roll, asked without
        waiting); None until a read younger than ``BOOK_FRESH_S`` has come back, or while
        the router is down: the callers try again at their next step."""
        now = hosttime.monotonic()
        read_at, positions = self._book_read.get(account, (-1e9, None))
        if now - read_at >= 1.0 and self.peer_up("router"):
            q = wire.BrokerQuery(kind="positions", account=account)
            self.asker.ask(("positions", account), q)
        if positions is None or now - read_at > BOOK_FRESH_S:
            return None
        return sum(p.quantity for p in positions if (p.exchange, p.symbol, p.product) == key)

    def _on_router_reply(self, tag: Hashable, reply: wire.Msg | None) -> None:
        kind, account = cast(tuple[str, str], tag)
        if reply is None:
            self.log.warning("router did not answer risk's question in time; asking again",
                             question=kind, account=account)  # fmt: skip
        got = reply if isinstance(reply, wire.BrokerReply) and reply.ok else None
        if kind == "funds":
            if got is not None and got.funds is not None:
                self.core.on_funds(account, got.funds.available, hosttime.time_ns())
                self._release_held()
            return
        positions = got.positions if got is not None else None
        self._book_read[account] = (hosttime.monotonic(), positions)

    # ----------------------------------------------------------------- inputs

    def _on_intent(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.Intent):
            self.count_error(
                "not an intent on the intent pipe", got=type(msg).__name__, src=msg.src
            )
            return
        now = hosttime.time_ns()
        self.record_latency_ns(now - msg.ts)
        if self._held or not self.restored or self._needs_funds(msg):
            self._hold(msg)  # judged later, by a timer: not this read's own work
            return
        self.own_work.read(msg.intent_id, now)
        self._judge(msg)

    def _judge(self, msg: wire.Intent) -> None:
        self._book_as_far(msg)
        self.core.on_intent(msg)
        self.rehearsal.worked()

    def _rehearse(self) -> bool:
        """The last order judged again and encoded, nothing kept or sent, while no intent
        has come for a while (``RiskCore.rehearse``, ``MT_RISK_REHEARSE_MS``)."""
        order = self.core.rehearse()
        if order is None:
            return False
        wire.encode("order", order)  # the send's encoding warmed too, the frame dropped
        return True

    def _rehearse_failed(self) -> None:
        last = self.core.rehearsal
        self.count_error("rehearsal failed", intent_id=last and last.intent_id, exc_info=True)

    def _book_as_far(self, msg: wire.Intent) -> None:
        """Book the fills the sender had booked when it decided (``fills_seen``) before
        judging its intent. A bracket's stop leaves the engine the instant its entry's
        fill arrives; at risk the intent pipe is read before the bus, where that fill may
        wait behind a queue of ticks, and judged on the position before it the stop is an
        entry (refused where the strategy is halted or its limits are full: the position
        left unprotected). The bus is read first (the fill is usually there); a fill not
        on it yet is the router's to give. Without a base (no snapshot, no fill yet)
        only the bus can be read."""
        need = msg.fills_seen
        if not need or (self.fill_seq.last or 0) >= need:
            return
        while (self.fill_seq.last or 0) < need and self.host.read_sub_now():
            continue
        last = self.fill_seq.last
        if last is not None and last >= need:
            return
        if last is None:
            self.count_error(
                "intent judged before fills its sender had seen: no base to ask the router from",
                intent=msg.intent_id,
                fills_seen=need,
            )
            return
        fills = self.fill_seq.catch_up(need)
        for f in fills:
            self.core.on_fill(f)
        self.fills_fetched += len(fills)
        if (self.fill_seq.last or 0) >= need:
            self.log.info("fills taken from the router before judging an intent",
                          intent=msg.intent_id, fill_nos=[f.fill_no for f in fills])  # fmt: skip
            return
        self.count_error("intent judged before fills its sender had seen: the router did "
                         "not give them", intent=msg.intent_id, fills_seen=need,
                         booked=self.fill_seq.last)  # fmt: skip

    def _on_bad_intent(self, frame: bytes, exc: wire.WireError) -> None:
        """An intent risk cannot decode is refused to its sender by name (when its id and
        strategy can be read), so the strategy hears "rejected" instead of waiting."""
        who = wire.intent_identity(frame)
        if who is None:
            return
        strategy, intent_id = who
        self.emit(
            rejected_event(
                strategy, intent_id, Rejection("malformed", f"risk could not read it: {exc}")
            )
        )

    def _accounts_for(self, strategy: str) -> list[str]:
        """The accounts an intent of ``strategy`` may trade: its lead's and its followers'."""
        lead = self.accounts.lead(strategy)
        return [lead, *(f.account for f in self.accounts.followers(strategy))]

    def _needs_funds(self, msg: wire.Intent) -> bool:
        """No funds figure yet for an account the intent trades: the question goes out (once
        the router is seen: at a start it may not be yet) and the intent waits for the
        answer (at most ``FUNDS_WAIT_S``), rather than be refused for want of a figure."""
        if isinstance(msg, wire.CancelIntent):
            return False
        missing = [
            a for a in self._accounts_for(msg.strategy) if self.book.funds[a].available is None
        ]
        for account in missing:
            self.want_funds(account)
        return bool(missing)

    def _hold(self, msg: wire.Intent) -> None:
        """Intents wait, in order, behind the first one waiting for funds."""
        if not self._held:
            self._held_since = self._funds_from = hosttime.monotonic()
            self.after(FUNDS_POLL_S, self._release_held)
        self._held.append(msg)

    def _release_held(self) -> None:
        """Judge the waiting intents once their accounts' funds are known, or once the
        router has been there ``FUNDS_WAIT_S`` without giving a figure (then as before:
        without one). While the router is not there (a start: it may come up after risk)
        they wait as long as an approved order would wait for it (``MT_RISK_WAIT_S``)."""
        if not self._held:
            return
        now = hosttime.monotonic()
        if not self.restored:  # no positions yet: nothing is judged on an empty book
            if now - self._held_since < self.settings.risk.wait_s:
                self.after(FUNDS_POLL_S, self._release_held)
                return
            held, self._held = self._held, []
            for m in held:
                self.emit(rejected_event(m.strategy, m.intent_id, Rejection(
                    "no_positions", "risk has had no position snapshot from the router since "
                    f"its start ({self.settings.risk.wait_s:g} s): nothing is judged on an "
                    "empty book"), m.decided_ns, m.bar_ns))  # fmt: skip
            return
        router_up = self.peer_up("router")
        if not router_up:
            self._funds_from = now  # the wait for its figure starts once it is there
        missing = {
            a
            for m in self._held
            if not isinstance(m, wire.CancelIntent)
            for a in self._accounts_for(m.strategy)
            if self.book.funds[a].available is None
        }
        waiting = (
            now - self._funds_from < FUNDS_WAIT_S
            if router_up
            else now - self._held_since < self.settings.risk.wait_s
        )
        if missing and waiting:
            for account in missing:
                self.want_funds(account)  # asked again: the router may be up only now
            self.after(FUNDS_POLL_S, self._release_held)
            return
        held, self._held = self._held, []
        if missing:
            self.log.warning(
                "intents judged without a funds figure", accounts=sorted(missing), n=len(held)
            )
        for m in held:
            self._judge(m)

    def on_peer_status(self, st: wire.Status) -> None:
        if st.name not in self.beat_ns and st.uptime_s <= 2 * self.settings.liveness.heartbeat_s:
            self._peer_started(st)
        if st.name == "router":
            self._router_taking(st)
        self.beat_ns[st.name] = self.clock.now_ns()
        if not self.restored:
            return  # the snapshot, when it comes, says what was filled
        for f in self.fills_caught_up(self.fill_seq, st):
            self.core.on_fill(f)

    def _peer_started(self, st: wire.Status) -> None:
        """A peer's first beat, just after its start (not one long up that a restarted
        risk hears for the first time), kept as an event (kind ``start``, the peer as its
        rule): the day's shadow starts its strategies when live's engine started."""
        self.keep(
            wire.RiskEvent(
                strategy="*",
                kind="start",
                rule=st.name,
                action="started",
                value=round(st.uptime_s, 3),
                reason=f"{st.name} started (pid {st.pid})",
            )
        )

    def on_peer_restart(self, peer: Peer) -> None:
        """Orders a killed router never answered go again: one lost in its socket buffer
        was never journaled, so never sent; one it journaled is dropped as a duplicate.
        Every restart is kept as an event (kind ``restart``, the peer as its rule, the
        market seconds it was silent before as its value): the day's shadow puts the
        decisions live missed or made otherwise around an engine's restart to it."""
        now = self.clock.now_ns()
        silent = (now - self.beat_ns[peer.name]) / 1e9 if peer.name in self.beat_ns else 0.0
        self.emit(
            wire.RiskEvent(
                strategy="*", kind="restart", rule=peer.name, action="restarted",
                value=round(silent, 3),
                reason=f"{peer.name} restarted (pid {peer.status.pid if peer.status else '?'});"
                f" silent {silent:.0f} s before",
            )
        )  # fmt: skip
        if peer.name == "router":
            self._withdraw_stopped_entries()
            n = self.outbox.redeliver()
            if n:
                self.log.warning("orders sent again after a router restart", orders=n)

    def _withdraw_stopped_entries(self) -> None:
        """Entries approved before their book (or the stack) was halted and never
        answered by a router that died: sent again, they would reach the broker after
        the kill switch was confirmed (the simulator's seed 163: approved a moment after
        the router was killed, delivered to the restarted router after the switch). They
        are not sent again; the router is asked which orders it holds: one it never had
        is withdrawn and refused by name, one it holds is its own (its journal settles
        it). A router that does not answer is asked again a second later."""
        for o in self.outbox.unacked_messages():
            if self._halted_entry(o):
                self.outbox.ack(o.order_id)  # not sent again
                self._asking_about.append(o)
        if self._asking_about:
            self._ask_about_stopped()

    def _halted_while_waiting(self, o: wire.Order) -> str | None:
        """An entry that waited in the outbox for the router while its book was halted
        (the daily loss limit reached, a kill switch) is not sent when the router is back."""
        if self._halted_entry(o):
            return "halted before it reached the router (it was down)"
        return None

    def _halted_entry(self, o: wire.Order) -> bool:
        return o.op == "place" and not o.exit and self.book.states.of(o.strategy) == "halted"

    def _ask_about_stopped(self) -> None:
        if not self._asking_about:  # answered meanwhile (a second restart asked too)
            return
        if not self.peer_up("router"):  # down again: asking would only wait out a timeout
            self.after(RESTORE_RETRY_S, self._ask_about_stopped)
            return
        reply = self.ask_router()(wire.BrokerQuery(kind="orders"))
        if not isinstance(reply, wire.BrokerReply) or not reply.ok:
            self.after(RESTORE_RETRY_S, self._ask_about_stopped)
            return
        held = {w.order.order_id for w in reply.working}
        asked, self._asking_about = self._asking_about, []
        for o in asked:
            if o.order_id not in held:
                self.core.withdraw(o, "halted before it reached the router (it restarted)")

    def _on_command(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.Command):
            self.count_error("not a command on the command pipe", got=type(msg).__name__)
            return
        try:
            self.core.on_command(msg)
        except ValueError as exc:
            self.count_error("bad state command", reason=str(exc))
            return
        for o in self.outbox.take_queued(self._halted_entry):  # never sent: never will be
            self.core.withdraw(o, "halted before it reached the router (it was down)")
        self.heartbeat()  # let watchers confirm the new state at once

    def _restore(self) -> None:
        """After a restart: positions from the router (a fresh stack has none), so caps,
        REDUCING and post-trade limits see what is held; and the day's P&L and charges,
        replayed from the day's fills (the router's journal keeps them). A position carried
        from an earlier day starts at its average price. Today's trailing-stop peaks and
        fired one-shot triggers come back from ``risk_marks.json``. The core applies
        them (``RiskCore.restore``); this fetches them. Asked again while the router does
        not answer or has not read a position book: the marks are taken at the first ask
        only (a wait for a broker's login may last an hour: read and said once a second)."""
        if not self._marks_taken:
            self._marks_taken = True
            marks, problem = self.marks.load()
            if problem:
                self.count_error("risk marks unreadable: trailing stops restart",
                                 problem=problem)  # fmt: skip
            if marks and self.post.restore_marks(marks, self.clock.now().date()):
                self.log.info("day marks restored", books=sorted(marks.get("books", {})))
        snap = fetch_snapshot(self.ask_router())
        if snap is None:
            # Not "flat": a router that did not answer (not up yet, busy, the reply lost)
            # says nothing of what is held. Judged on an empty book, a restarted risk
            # lost every position (the simulator's seed 167: its exits sold what was
            # already sold, caps saw nothing held). Intents wait, fills are the
            # snapshot's, and the router is asked again.
            if not self._said_unrestored:
                self._said_unrestored = True
                self.log.warning("no position snapshot from the router yet: intents wait, "
                                 "asking again", every_s=RESTORE_RETRY_S)  # fmt: skip
            self.after(RESTORE_RETRY_S, self._restore_again)
            return
        if snap.unread:  # its positions unconfirmed for now, not for the day
            self.unread.wait(snap)
            self.after(RESTORE_RETRY_S, self._restore_again)
            return
        fills = fetch_fills(self.ask_router(), snap.last_fill_no)
        if fills is None and self._fills_tries < FILLS_TRIES:
            # Without the day's fills the day's realised P&L is gone (the daily loss limit
            # would count from zero) and positions restart at the router's average prices
            # (the simulator's seed 481: the fills' answer lost, a position restarted at
            # a rounded average). Intents wait; both are asked again.
            self._fills_tries += 1
            self.log.warning("no fills from the router yet: intents wait, asking again",
                             attempt=self._fills_tries, of=FILLS_TRIES)  # fmt: skip
            self.after(RESTORE_RETRY_S, self._restore_again)
            return
        if fills is None:
            self.count_error(f"no fills from the router in {FILLS_TRIES + 1} asks: today's "
                             "P&L restarts from average prices")  # fmt: skip
        self.restored = True
        self.unread.done()
        if self._said_unrestored:
            self.log.warning("positions taken from the router; intents judged again")
        self.fill_seq.start_at(snap.last_fill_no)
        if snap.unconfirmed:
            self.count_error(
                "positions the broker does not confirm: risk does not act on them",
                positions=["/".join(k) for k in sorted(snap.unconfirmed)],
            )
        self.core.restore(snap, fills)
        if snap.positions:
            self.log.info(
                "positions restored",
                positions=[f"{p.strategy}:{p.symbol}={p.quantity}" for p in snap.positions],
                last_fill_no=snap.last_fill_no,
            )

    def _restore_again(self) -> None:
        if self.restored:
            return
        if not self.peer_up("router"):  # not there: asking would only wait out a timeout
            self.after(RESTORE_RETRY_S, self._restore_again)
            return
        self._restore()
        self._release_held()

    # --------------------------------------------------------------- post-trade

    def _post_trade(self) -> None:
        """Once a second: the core's post-trade pass, then the day's marks saved."""
        self.core.step()
        try:
            self.marks.save(self.post.day_marks())
        except OSError as exc:
            self.count_error("risk marks not saved", reason=str(exc))

    def _declare(self) -> None:
        """Every instrument held or working, in any book (webhook strategies' too): the
        feed must quote them for the marks, the exits and the post-trade limits."""
        held = {(ex, sym) for (_, ex, sym), q in self.book.positions.items() if q}
        held |= {(ex, sym) for (_, ex, sym) in self.book.working.by_key}
        self.declarer.declare([entry(ex, sym) for ex, sym in held])

    def _store_held(self, reason: str) -> None:
        # From the writer thread, once per outage: the events wait in the outbox.
        self.log.warning("risk events wait in the outbox: the DuckDB file is held", reason=reason)

    def _store_failed(self, reason: str) -> None:
        # From the writer thread: a log line and a counter (an int += is safe enough
        # under the GIL for a statistic). The events themselves went out on the bus.
        self.store_errors += 1
        self.log.error("risk events not stored", reason=reason)

    # -------------------------------------------------------------- exec events

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Tick):
            self.core.on_tick(msg)
        elif isinstance(msg, wire.OrderUpdate):
            self.outbox.ack(msg.order_id)
            self.core.on_update(msg)
            if msg.status == "rejected":  # the day's record: one refused before the
                # router's journal took it (a full disk, an expired session) is kept nowhere else
                self.keep(wire.RiskEvent(strategy=msg.strategy, kind="order_rejected",
                                         rule="router", reason=msg.reason,
                                         intent_id=msg.intent_id, action="rejected"))  # fmt: skip
        elif isinstance(msg, wire.Funds):
            self.core.on_funds(msg.account, msg.available, msg.ts)
        elif isinstance(msg, wire.MarginQuote):
            self.core.on_margin_quote(msg)
        elif isinstance(msg, wire.Fill):  # a restarted router republishes its fills
            if not self.restored:
                return  # in the snapshot to come (its last fill number), or after it
            for f in self.fills_in_order(self.fill_seq, msg):
                self.core.on_fill(f)

    def _schedules_again(self) -> Scheduler | None:
        """The enabled strategies' schedules read again (the old ones kept on a bad file:
        the command layer checked it before it wrote)."""
        try:
            got = schedules_of(self.settings, self.refdata)
        except (ConfigError, ValueError) as exc:
            self.count_error("schedules not read again", error=str(exc))
            return self.core.schedule
        return Scheduler(got, self.refdata) if got else None

    def extra_sent(self) -> int:
        return self.orders.sent

    def detail(self) -> dict[str, Any]:
        core = self.core
        return {
            # an intent read to the first order approved for it handed to the router's pipe
            "own_work_p50_us": self.own_work.p50_us(),
            "kill_switch": self.book.states.kill_switch,
            "kill_mode": self.book.states.kill_mode,  # off | on | flatten
            "restored": self.restored,  # the router's positions taken since the start
            "entries_halted": core.entries_halted,  # working entries of halted books
            "positions_open": sum(len(self.post.open_keys(b)) for b in list(self.post.books)),
            "states": self.book.states.as_dict(),
            # today's plan of each scheduled strategy (risk/schedule.py)
            "schedule": core.schedule.today(self.clock.now()) if core.schedule else {},
            "limits": core.limits.as_dict(),
            "pnl": {s: self.post.pnl(s) for s in self.post.books},
            "use": core.usage(),
            "triggers": dict(core.counts.triggers),
            # the Supertrend exits' bars by timeframe (bars.py)
            "bars": {tf: b.stats.as_dict() for tf, b in self.post.builders.items()},
            "exits_open": len(core.exits.jobs),
            "rolls_open": len(core.rolls.rolls),
            "rolls": dict(core.rolls.outcomes),
            "events_stored": self.events.stored,
            "events_pending": self.events.pending,  # in the outbox: the DuckDB file is held
            "events_store_held": bool(self.events.held),
            # per account: the broker's last figure, and what is free of it now
            "margin_available": {a: f.available for a, f in self.book.funds.items()},
            "broker_margin": {
                f"{ex}:{sym}:{act}": per
                for (ex, sym, act), (per, _) in self.book.broker_margin.items()
            },
            "margin_free": {a: f.free(hosttime.time_ns()) for a, f in self.book.funds.items()},
            "events_not_stored": self.store_errors,
            "fills_recovered": self.fill_seq.recovered,  # taken from the router, not the bus
            "fills_fetched": self.fills_fetched,  # ... of those, for an intent ahead of the bus
            "approved": core.counts.approved,
            "rehearsals": self.rehearsal.count,  # the last order judged again, nothing sent
            "rejected": dict(core.counts.rejected),
            "pending_to_router": len(self.outbox),
            # follower books that differ from their lead x their size: have/target
            "followers_behind": core.mirror.differences(self.book),
            "followers_caught_up": core.mirror.caught_up,
        }

    def teardown(self) -> None:
        self.events.close()
