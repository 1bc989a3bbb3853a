"""Risk's core, without sockets: one ``RiskCore`` that the risk daemon and the backtest
both drive, so that an intent, a fill or a tick means the same thing in either.

It owns the books (``RiskBook``: positions, working orders, funds), the post-trade checks
(``PostTrade``), risk's own exits (``ExitManager``), rolls in flight (``RollWatch``), the
follower accounts (``Mirror``) and the trading states. What it cannot do itself it asks
its shell through ``RiskPorts``: queue an order for the router, publish an event, save
the trading states, read the broker's position book, fetch an account's funds. The
daemon's ports are the outbox, the bus and DuckDB; the backtest's are its simulated
broker and results.

Inputs: ``on_intent``, ``on_command``, ``on_update``, ``on_fill``, ``on_tick``,
``on_bar``, ``on_funds``, ``on_margin_quote``, ``restore`` (after a restart) and
``step`` (the post-trade pass: live once a second, in a backtest after every bar).
The wall clock (rate limits, the freshness of the broker's figures) and the market clock
(sessions, windows, the trading day) are given to it, so a backtest runs it on market
time.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

import msgspec
import structlog

from mytrading import hosttime
from mytrading.domain.accounts import Accounts
from mytrading.domain.ids import OrderId
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.charges import ChargeTable
from mytrading.risk.exits import ExitJob, ExitManager
from mytrading.risk.limits import LimitBook
from mytrading.risk.margin import MarginTable
from mytrading.risk.mirror import Mirror
from mytrading.risk.monitor import Key, PostTrade, Trigger
from mytrading.risk.orders import (
    approved_order,
    children,
    decide,
    part_rejected_event,
    plan,
    rejected_event,
    roll_children,
    trigger_event,
)
from mytrading.risk.roll import RollApproval, RollWatch
from mytrading.risk.rules import Approval, Rejection, check, child_size, usage
from mytrading.risk.schedule import BY as SCHEDULE
from mytrading.risk.schedule import Scheduler
from mytrading.risk.state import Hold, TradingStates

if TYPE_CHECKING:  # the shell fetches it over the bus; the core only reads it
    from mytrading.messaging.catchup import Snapshot

log = structlog.get_logger("risk")

MAX_PENDING = 1000  # orders the shell may hold for the router (a roll needs room for both)
HALT_CANCEL_RETRY_S = 5.0  # a halted book's entry still working: cancelled again after this
HALT_CANCEL_TRIES = 5
# the intent id of ``RiskCore.rehearse``'s judging (never sent: no id seen is needed)
REHEARSAL_ID = "rehearsal"


class RiskPorts(Protocol):
    """What the core asks of its shell."""

    def send(self, order: wire.Order) -> bool:
        """Queue ``order`` for the router; False when it cannot be queued."""

    def emit(self, event: wire.RiskEvent) -> None:
        """Publish (and keep) a risk event."""

    def save_states(self, states: TradingStates, reason: str) -> None:
        """The trading states changed: keep them across a restart."""

    def broker_net(self, key: Key, account: str) -> int | None:
        """The broker's net quantity of one position of one account (None: unknown)."""

    def want_funds(self, account: str) -> None:
        """No funds figure yet for ``account``: fetch one (``on_funds``) if possible."""

    def room(self) -> int:
        """How many more orders the queue to the router takes now."""

    def error(self, what: str, **ctx: object) -> None:
        """Something an operator must see (logged and counted by the shell)."""


class RefusalLog:
    """Risk's log of refusals, aggregated: the first of each (rule, strategy) in a minute
    is a line with its reason; the rest in that minute are counted and said in one line
    when the minute is over ("refusals repeated": rule, strategy, count). A strategy that
    knocks on a closed door every second costs a line a minute, not sixty."""

    WINDOW_S = 60.0

    def __init__(self) -> None:
        self.since: dict[tuple[str, str], float] = {}  # (rule, strategy) -> window start
        self.more: collections.Counter[tuple[str, str]] = collections.Counter()

    @property
    def pending(self) -> bool:
        return bool(self.since)

    def first(self, rule: str, strategy: str, now: float) -> bool:
        """Count one refusal; True when it is the first of its window (log it)."""
        key = (rule, strategy)
        start = self.since.get(key)
        if start is not None and now - start < self.WINDOW_S:
            self.more[key] += 1
            return False
        self._said(key)
        self.since[key] = now
        return True

    def flush(self, now: float) -> None:
        """Say the counts of the windows that are over."""
        for key in [k for k, t in self.since.items() if now - t >= self.WINDOW_S]:
            self._said(key)
            del self.since[key]

    def _said(self, key: tuple[str, str]) -> None:
        n = self.more.pop(key, 0)
        if n:
            log.warning("refusals repeated", rule=key[0], strategy=key[1], count=n,
                        per_s=self.WINDOW_S)  # fmt: skip


@dataclass
class Counts:
    approved: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    triggers: collections.Counter[str] = field(default_factory=collections.Counter)


class RiskCore:
    def __init__(
        self,
        refdata: RefData,
        limits: LimitBook,
        margins: MarginTable | None,
        charges: ChargeTable,
        accounts: Accounts,
        ports: RiskPorts,
        market_now: Callable[[], datetime],
        wall_ns: Callable[[], int] | None = None,
        monotonic: Callable[[], float] | None = None,
        run_id: str = "",
        states: TradingStates | None = None,
        by: str = "risk",
        speed: float = 1.0,
        market_ns: Callable[[], int] | None = None,
        schedule: Scheduler | None = None,
        market_at: Callable[[int], int] | None = None,
        reschedule: Callable[[], Scheduler | None] | None = None,
    ) -> None:
        self.refdata = refdata
        self.schedule = schedule  # strategies' days and hours (``risk/schedule.py``)
        self.reschedule = reschedule  # the schedules read again (a strategy enabled)
        # ``market_now`` as epoch nanoseconds, where the clock keeps them (a backtest's)
        self.market_ns = market_ns
        # the market time (ns) at a ``wall_ns`` reading (the daemon's clock): given, an
        # intent reads the host's clock once for its wall and market times and makes one
        # datetime, instead of three readings, two datetimes and one turned back into
        # nanoseconds for the rules (on a path an order every 100 ms finds cold: 20-40 us
        # of a cold judging in ``bench/risk_judging.py``, ~5 us in the daemon)
        self.market_at = market_at
        self.speed = speed  # the market clock's: market seconds per wall second
        self.limits = limits
        self.margins = margins
        self.accounts = accounts
        self.ports = ports
        self.market_now = market_now
        # the host's clocks unless given (a backtest gives its market clock)
        self.wall_ns = wall_ns or (lambda: hosttime.time_ns())
        self.monotonic = monotonic or (lambda: hosttime.monotonic())
        self.by = by  # who approved: the orders' ``approved_by``
        self.book = RiskBook()
        if states is not None:
            self.book.states = states
        self.post = PostTrade(refdata, limits, charges)
        self.mirror = Mirror(accounts, refdata, margins)
        self.exits = ExitManager(
            refdata,
            self.post,
            self._send_exit,
            self._working_of,
            ports.broker_net,
            self._exit_event,
            run_id,
            lambda strategy, inst: child_size(inst, self.limits.of(strategy)),
            accounts.account_of,
            clock=monotonic,
        )
        self.rolls = RollWatch(
            ports.broker_net,
            self._account_net,
            ports.emit,
            lambda strategy, key: self.exits.start(strategy, key, "roll"),
        )
        self.counts = Counts()
        self.day: date | None = None
        self.auto_reduced: set[str] = set()  # REDUCING by a daily limit: undone next day
        self.halt_cancels: dict[str, tuple[float, int]] = {}  # entry id -> (last try, tries)
        self.cancel_seq = 0
        self.entries_halted = 0  # working entries of halted books, cancels asked
        self.unknown_today: dict[str, int] = {}  # strategy -> unknown orders that halted it
        self.refusals = RefusalLog()
        self.rehearsal: wire.PlaceIntent | None = None  # the last new order's intent

    # ----------------------------------------------------------------- intents

    def on_intent(self, msg: wire.Intent) -> None:
        """Judge one intent; approved, its orders (and its followers') go to the shell."""
        lead_before = self.book.net((msg.strategy, msg.exchange, msg.symbol))
        limits = self.limits.of(msg.strategy)
        lead = self.accounts.lead(msg.strategy)
        funds = self.book.funds[lead]
        if funds.available is None and not isinstance(msg, wire.CancelIntent):
            self.ports.want_funds(lead)  # only until the broker's first figure arrives
        wall, now, mns = self._times()
        result = decide(
            msg, self.book, self.refdata, limits, now, wall, self.margins, lead, self.speed, mns
        )
        self.book.seen_intents.add(msg.intent_id)
        if isinstance(msg, wire.PlaceIntent):
            self.rehearsal = msg
        if isinstance(result, Rejection):
            self._reject(msg.strategy, msg.intent_id, result, msg.decided_ns, msg.bar_ns)
            return
        if result.margin:
            funds.reserve(wall, result.margin)
        if isinstance(msg, wire.RollIntent):
            assert isinstance(result, RollApproval)  # what ``decide`` answers a roll
            self._roll(msg, result, lead)
            return
        if result.refused_open is not None:
            self._part_rejected(msg, result, result.refused_open)
            msg = msgspec.structs.replace(msg, quantity=result.quantity)
        elif result.quantity != msg.quantity:
            sizing = msg.sizing if isinstance(msg, wire.PlaceIntent) else ""
            log.info("sized from margin", strategy=msg.strategy, sizing=sizing, qty=result.quantity)
            msg = msgspec.structs.replace(msg, quantity=result.quantity)
        base = approved_order(msg, result, self.book, self.by, lead)
        if not isinstance(msg, wire.CancelIntent):
            self.book.approvals[msg.strategy].append(wall)
        followers = self.mirror.plan(base, lead_before, self.book, now.date())
        self.counts.approved += 1
        for one in (base, *followers):
            if one is not base and one.op == "place" and not self._follower_passes(one, now):
                continue
            for o in children(one, self.book, self.refdata, limits):
                if not self.ports.send(o):
                    self.withdraw(o, "risk queue to router full")

    def _times(self) -> tuple[int, datetime, int]:
        """The host's wall clock (ns), the market's time and its ns (-1: not kept)."""
        wall = self.wall_ns()
        if self.market_at is None:
            now = self.market_now()
            mns = self.market_ns() if self.market_ns is not None else -1
        else:
            mns = self.market_at(wall)
            now = datetime.fromtimestamp(mns / 1e9, IST)  # as ``MarketClock.now`` makes it
        return wall, now, mns

    def rehearse(self) -> wire.Order | None:
        """Judge the last new order again, as a new intent, and give back the order it
        would make, changing nothing: no id seen, no margin reserved, no order counted as
        working or sent, no event. An order every 100 ms finds risk's judging cold (its
        code and data gone from the CPU's caches: 90-146 us here against 8.5 us back to
        back, ``bench/risk_judging.py``); the daemon runs this while no intent comes, so
        the next real one finds them warm. None before any order, or refused."""
        last = self.rehearsal
        if last is None:
            return None
        wall, now, mns = self._times()
        msg = msgspec.structs.replace(last, intent_id=REHEARSAL_ID, decided_ns=max(mns, 0))
        lead = self.accounts.lead(msg.strategy)
        limits = self.limits.of(msg.strategy)
        result = decide(
            msg, self.book, self.refdata, limits, now, wall, self.margins, lead, self.speed, mns
        )
        if isinstance(result, (Rejection, RollApproval)):
            return None
        return approved_order(msg, result, self.book, self.by, lead)

    def _follower_passes(self, o: wire.Order, now: datetime) -> bool:
        """A follower book's new order passes the same rules as the lead's (position,
        notional, lots, windows, trading state, margin) against its own book, limits
        (its strategy's unless risk.toml gives the book its own) and account's funds.
        Refused, it is a risk event of the follower book; the lead's order stands, and
        the follower catches up at the lead's next order if the rules then allow."""
        if self.book.funds[o.account].available is None:
            self.ports.want_funds(o.account)
        intent = wire.PlaceIntent(
            intent_id=o.intent_id + "@" + o.account,
            strategy=o.strategy,
            exchange=o.exchange,
            symbol=o.symbol,
            action=o.action,
            quantity=o.quantity,
            pricetype=o.pricetype,
            product=o.product,
            price=o.price,
            trigger_price=o.trigger_price,
        )
        wall = self.wall_ns()
        limits = self.limits.of(o.strategy)
        got = check(intent, self.book, self.refdata, limits, now, wall, self.margins, o.account)
        self.book.seen_intents.add(intent.intent_id)
        if isinstance(got, Rejection):
            self._reject(o.strategy, intent.intent_id, got, intent.decided_ns, o.bar_ns)
            return False
        if got.margin:
            self.book.funds[o.account].reserve(wall, got.margin)
        self.book.approvals[o.strategy].append(wall)
        return True

    def _roll(self, msg: wire.RollIntent, ok: RollApproval, lead: str) -> None:
        """An approved roll: its two orders (the close first), followers' likewise, and
        the watch that reports its outcome. Neither leg is queued unless both can be."""
        lim = self.limits.of(msg.strategy)
        day = self.market_now().date()
        before = {
            s: self.book.net((msg.strategy, msg.exchange, s)) for s in (msg.symbol, msg.roll_to)
        }
        close, open_, out1, out2 = roll_children(
            msg, ok, self.book, self.refdata, lim, self.by, lead
        )
        followers = [
            *self.mirror.plan(close, before[msg.symbol], self.book, day),
            *self.mirror.plan(open_, before[msg.roll_to], self.book, day),
        ]
        for f in followers:  # split by the lead's limits, as ``on_intent`` does
            out2 += children(f, self.book, self.refdata, lim)
        if len(out1) + len(out2) > self.ports.room():
            for o in (*out1, *out2):
                self.book.forget(o.order_id)
            full = Rejection("router_unavailable", "risk queue to router full")
            self._reject(msg.strategy, msg.intent_id, full, msg.decided_ns, msg.bar_ns)
            return
        self.counts.approved += 1  # only once both legs can go
        self.book.approvals[msg.strategy].append(self.wall_ns())
        self.rolls.start(msg, close, open_, (len(out1), len(out2)))
        log.warning(
            "roll approved",
            strategy=msg.strategy,
            old=msg.symbol,
            new=msg.roll_to,
            qty=ok.quantity,
            orders=[o.order_id for o in (*out1, *out2)],
        )
        for o in (*out1, *out2):
            self.ports.send(o)

    def withdraw(self, order: wire.Order, reason: str) -> None:
        """An approved order that will never reach the router: forgotten, and refused."""
        if order.op == "place":
            self.book.forget(order.order_id)
            self.rolls.ended(order.order_id)
        self._reject(order.strategy, order.intent_id, Rejection("router_unavailable", reason),
                     order.decided_ns, order.bar_ns)  # fmt: skip

    def _reject(
        self, strategy: str, intent_id: str, r: Rejection, decided_ns: int = 0, bar_ns: int = 0
    ) -> None:
        ev = rejected_event(strategy, intent_id, r, decided_ns, bar_ns)
        self._refused(r, ev, "intent rejected")

    def _part_rejected(self, msg: wire.Intent, ok: Approval, r: Rejection) -> None:
        ev = part_rejected_event(msg, ok, r)
        self._refused(r, ev, "reversal: only its closing part goes")

    def _refused(self, r: Rejection, ev: wire.RiskEvent, what: str) -> None:
        """A refusal (whole or of a reversal's opening part): counted, published, and
        logged once per rule and strategy a minute (the rest are summed in one line)."""
        self.counts.rejected[r.rule] += 1
        if self.refusals.first(r.rule, ev.strategy, self.monotonic()):
            log.warning(what, strategy=ev.strategy, intent=ev.intent_id, rule=r.rule,
                        reason=ev.reason)  # fmt: skip
        self.ports.emit(ev)

    # ---------------------------------------------------------------- commands

    def on_command(self, msg: wire.Command) -> None:
        """The kill switch (on, off, flatten), one book's trading state, or one of a
        strategy's orders unknown at the broker (and its resolution); a bad value raises
        ValueError and changes nothing."""
        if msg.command == "unknown":
            self._unknown(msg)
            return
        if msg.command == "strategy":
            self._strategy_changed(msg)
            return
        if msg.command == "kill_switch":
            if msg.value not in ("on", "off", "flatten"):
                raise ValueError(f"bad kill switch value {msg.value!r}")
            target, state = "", ("active" if msg.value == "off" else "halted")
        elif msg.command == "stop":
            if msg.target in ("", "*"):
                raise ValueError("stop names one strategy (the kill switch flattens the stack)")
            target, state = msg.target, "halted"
        else:
            target, state = msg.target, msg.value
        states = self.book.states
        by = msg.issued_by or "operator"
        states.set(target, state, msg.reason or f"{state} by command", by)  # type: ignore[arg-type]  # set() refuses a bad one
        if msg.command == "kill_switch":
            states.flatten = msg.value == "flatten"
        else:
            if msg.command == "stop":
                states.stopping.add(target)  # closed by exits until flat (enforce_halt)
            if target not in ("", "*") and states.holds.pop(target, None) is not None:
                log.warning("an operator's state ends the hold for unknown orders",
                            strategy=target, state=state)  # fmt: skip
        self.ports.save_states(states, msg.reason)
        who = target if target not in ("", "*") else "*"
        action = (
            states.kill_mode
            if msg.command == "kill_switch"
            else "stop"
            if msg.command == "stop"
            else state
        )
        log.warning("trading state", target=who, state=action, reason=msg.reason, by=msg.issued_by)
        self.ports.emit(
            wire.RiskEvent(
                strategy=who,
                kind="kill_switch" if msg.command == "kill_switch" else "state",
                rule="trading_state",
                reason=msg.reason or f"{who} {action}",
                action=action,
            ),
        )
        self.enforce_halt()  # entries cancelled (and positions closed) now, not in a second

    def _strategy_changed(self, msg: wire.Command) -> None:
        """A strategy enabled, disabled or re-parameterised in config/strategies.toml by
        the command layer: said to the engine, which takes it up (risk is the one pipe
        every command enters by, so each is on its record); its schedule taken again."""
        if msg.value not in ("enable", "disable", "params") or not msg.target:
            raise ValueError(f"bad strategy command {msg.value!r} {msg.target!r}")
        log.warning("strategy changed", strategy=msg.target, change=msg.value,
                    reason=msg.reason, by=msg.issued_by)  # fmt: skip
        self.ports.emit(
            wire.RiskEvent(
                strategy=msg.target, kind="control", rule="strategy",
                reason=msg.reason or f"{msg.value} by {msg.issued_by}", action=msg.value,
                detail=msg.ref,  # params: what changed (the command layer's JSON)
            )
        )  # fmt: skip
        if self.reschedule is not None:
            old, self.schedule = self.schedule, self.reschedule()
            if old is not None and self.schedule is not None:
                self.schedule.phases = dict(old.phases)  # a change only acts at a change

    def _unknown(self, msg: wire.Command) -> None:
        """The router could not tell whether one of a strategy's orders reached the broker
        (``open``), or now can (``resolved``). The first halts the strategy, held: it
        returns to its state by itself when its last unknown order is resolved, unless it
        had more than ``max_unknown_halts`` today (then a person resumes it)."""
        name, oid, states = msg.target, msg.ref, self.book.states
        if msg.value == "census":
            self._unknown_census(msg)
            return
        if not name or not oid or msg.value not in ("open", "resolved"):
            raise ValueError(f"bad unknown-order command {msg.value!r} {name!r} {oid!r}")
        hold = states.holds.get(name)
        if msg.value == "open":
            if hold is not None:
                if oid not in hold.orders:
                    hold.orders.append(oid)
                    self.ports.save_states(states, f"{oid} unknown")
                return
            n = self.unknown_today[name] = self.unknown_today.get(name, 0) + 1
            most = self.limits.of(name).max_unknown_halts
            person = n > most
            why = f"order {oid} unknown at the broker ({msg.reason}): " + (
                f"the {n}th today, more than {most}: halted until a person resumes it"
                if person
                else "halted until it is found or certainly absent, then resumes by itself"
            )
            states.holds[name] = Hold(
                states.own(name), [oid], self.market_now().isoformat(), person,
                states.why.get(name),
            )  # fmt: skip
            states.set(name, "halted", why, msg.issued_by or "router")
            self._state_event(name, "halted", why, oid)
            self.enforce_halt()
            return
        if hold is None or oid not in hold.orders:
            return  # halted by hand since, or a repeat
        hold.orders.remove(oid)
        if hold.orders:
            self.ports.save_states(states, f"{oid} resolved")
            return
        del states.holds[name]
        if hold.for_person or states.own(name) != "halted":
            self.ports.save_states(states, f"{oid} resolved")
            if hold.for_person:
                log.warning("unknown orders resolved; the strategy stays HALTED for a person",
                            strategy=name, order_id=oid)  # fmt: skip
            return
        why = f"order {oid} {msg.reason}: resumed by itself"
        states.set(name, hold.before, why, msg.issued_by or "router")
        if hold.before != "active" and hold.before_why is not None:
            states.why[name] = hold.before_why  # it is back to what it was, for that reason
        self._state_event(name, hold.before, why, oid)

    def _unknown_census(self, msg: wire.Command) -> None:
        """The router's unknown orders as it starts (``ref``: every one of them): a hold
        for any other order is released as resolved. Its resolution was said by a router
        that died before risk heard it (risk was down too)."""
        still = set(filter(None, msg.ref.split(",")))
        for name, hold in list(self.book.states.holds.items()):
            for oid in [o for o in hold.orders if o not in still]:
                log.warning("an unknown order's hold released: the restarted router no "
                            "longer has it unknown", strategy=name, order_id=oid)  # fmt: skip
                self._unknown(
                    wire.Command(
                        command="unknown", value="resolved", target=name, ref=oid,
                        reason="no longer unknown at the router's start",
                        issued_by=msg.issued_by,
                    )
                )  # fmt: skip

    def _state_event(self, name: str, state: str, why: str, oid: str) -> None:
        """A state an unknown order set (halted) or its resolution lifted, kept as an event
        naming the order (the day's shadow reads its lost replies from them)."""
        self.ports.save_states(self.book.states, why)
        log.warning("trading state", target=name, state=state, reason=why, by="router")
        self.ports.emit(
            wire.RiskEvent(
                strategy=name,
                kind="state",
                rule="unknown_order",
                reason=why,
                action=state,
                order_ids=[oid],
            )
        )

    def enforce_halt(self) -> None:
        """HALTED books keep no working entry: each is cancelled at its broker (again after
        ``HALT_CANCEL_RETRY_S`` while the broker has not confirmed it). With the kill
        switch at ``flatten``, every position the broker confirms is closed by an exit
        job, including one an entry filled after the switch."""
        now = self.monotonic()
        states = self.book.states
        halted = 0
        # an order unknown at the broker is the router's to find, not to cancel (it has
        # no broker id to cancel by; its hold ends when it is found or known absent)
        held = {oid for h in states.holds.values() for oid in h.orders} if states.holds else ()
        for oid in list(self.book.entries):
            got = self.book.working.get(oid)
            if got is None:
                self.book.entries.discard(oid)
                continue
            if states.of(got[0][0]) != "halted" or oid in held:
                continue
            halted += 1
            sent, tries = self.halt_cancels.get(oid, (-1e18, 0))
            if now - sent < HALT_CANCEL_RETRY_S:
                continue
            if tries >= HALT_CANCEL_TRIES:
                if tries == HALT_CANCEL_TRIES:
                    self.ports.error(
                        "ALERT: a halted book's entry is still working after repeated cancels",
                        order_id=oid,
                    )
                    self.halt_cancels[oid] = (now, tries + 1)
                continue
            self.halt_cancels[oid] = (now, tries + 1)
            self._cancel(oid, got[0], got[1])
        self.entries_halted = halted
        for oid in [o for o in self.halt_cancels if o not in self.book.entries]:
            del self.halt_cancels[oid]
        if states.flatten:
            for strategy in list(self.post.books):
                for key in self.post.open_keys(strategy):
                    self.exits.start(strategy, key, "flatten")
        for strategy in sorted(states.stopping):
            keys = self.post.open_keys(strategy) if strategy in self.post.books else []
            for key in keys:
                self.exits.start(strategy, key, "stop")
            if not keys and not any(s == strategy for s, _ in self.exits.jobs):
                states.stopping.discard(strategy)  # flat, and the broker agreed: stopped
                self.ports.save_states(states, f"{strategy} stopped: flat")
                log.warning("strategy stopped: flat, and halted", strategy=strategy)

    def _converge_followers(self, now: datetime) -> None:
        """Followers that differ from their lead are brought back (``Mirror.converge``),
        each order judged as any follower order is."""
        for o in self.mirror.converge(self.book, self.wall_ns(), self._risk_intent, self.by):
            if not o.exit and not self._follower_passes(o, now):
                continue
            for c in children(o, self.book, self.refdata, self.limits.of(o.strategy)):
                if not self.ports.send(c):
                    self.withdraw(c, "risk queue to router full")

    def _risk_intent(self) -> str:
        self.cancel_seq += 1
        return f"risk-{self.exits.run_id}-m{self.cancel_seq}"

    def _cancel(self, oid: str, key: tuple[str, str, str], signed: int) -> None:
        """Risk's own cancel of one working order (its id is risk's, like its exits')."""
        self.cancel_seq += 1
        intent = f"risk-{self.exits.run_id}-c{self.cancel_seq}"
        strategy, exchange, symbol = key
        log.warning("halted: cancelling a working entry", order_id=oid, strategy=strategy)
        self._send_exit(
            wire.Order(
                order_id=str(OrderId(strategy, intent)),
                intent_id=intent,
                strategy=strategy,
                exchange=exchange,
                symbol=symbol,
                action="BUY" if signed > 0 else "SELL",
                quantity=abs(signed),
                pricetype="MARKET",
                product="MIS",  # a cancel acts on the order it names: its product stands
                price=0.0,
                trigger_price=0.0,
                approved_by=self.by,
                op="cancel",
                ref_order_id=oid,
                exit=True,
            )
        )

    # ----------------------------------------------------------------- restore

    def restore(self, snap: Snapshot, fills: list[wire.Fill] | None) -> None:
        """After a restart, what the router knows (its shell fetched it): the orders still
        working count against the caps; today's fills up to the snapshot (those of
        positions the broker confirmed) rebuild the day's P&L and charges; the positions
        are the snapshot's, and one carried from an earlier day starts at its average
        price. ``fills`` None (the router did not give them): P&L restarts from average
        prices."""
        for w in snap.working:
            o = w.order
            left = o.quantity - w.filled_qty
            self.book.on_approved(
                o.order_id,
                (o.strategy, o.exchange, o.symbol),
                left if o.action == "BUY" else -left,
                entry=not o.exit,
            )
        day = self.market_now().date()
        day_net: dict[tuple[str, str, str, str], int] = {}
        for f in fills or []:
            if not snap.confirmed(f):
                continue
            self.post.on_fill(f, day)
            k = (f.strategy, f.exchange, f.symbol, f.product)
            day_net[k] = day_net.get(k, 0) + (f.quantity if f.action == "BUY" else -f.quantity)
        for p in snap.positions:
            key = (p.strategy, p.exchange, p.symbol)
            self.book.positions[key] = self.book.positions.get(key, 0) + p.quantity
            full = (p.exchange, p.symbol, p.product)
            if day_net.get((p.strategy, *full), 0) != p.quantity:  # carried into the day
                self.post.restore(p.strategy, full, p.quantity, p.avg_price)

    # ----------------------------------------------------------------- inputs

    def on_update(self, u: wire.OrderUpdate) -> None:
        self.book.on_update(u)
        self.rolls.on_update(u)

    def on_fill(self, f: wire.Fill) -> float:
        """A fill into the books and P&L; returns its charges (rupees)."""
        self.book.on_fill(f)
        self.rolls.on_fill(f)
        return self.post.on_fill(f, self.market_now().date()).total

    def on_tick(self, tick: wire.Tick) -> None:
        self.book.ltp[(tick.exchange, tick.symbol)] = tick.ltp
        if self.post.builders:  # the Supertrend exits' bars: arrival time for the lag
            now = self.market_ns() if self.market_ns else int(self.market_now().timestamp() * 1e9)
            self.post.on_tick(tick, now)
        else:
            self.post.on_tick(tick)

    def mark(self, key: tuple[str, str], price: float) -> None:
        """A price without a tick (a backtest's bar close) for (exchange, symbol)."""
        self.book.ltp[key] = price
        self.post.mark_key(key, price)

    def on_bar(self, bar: wire.Bar) -> None:
        """A closed bar of a timeframe a Supertrend exit reads."""
        self.post.on_bar(bar)

    def on_funds(self, account: str, available: float, ts_ns: int) -> None:
        self.book.funds[account].report(available, ts_ns)

    def on_margin_quote(self, q: wire.MarginQuote) -> None:
        self.book.broker_margin[(q.exchange, q.symbol, q.action)] = (q.per_lot, q.ts)

    # --------------------------------------------------------------- post-trade

    def step(self, quiet_ok: bool = False) -> None:
        """The post-trade pass: a new day resets the daily limits; P&L on the marks against
        the limits, and exits for breaches; halted books' entries cancelled; exits and
        rolls moved on. ``quiet_ok``: skip the checks when nothing could fire now (the
        backtest, which steps after every bar; its wall clock is the market's, which the
        test for quiet reads)."""
        if self.refusals.since:  # repeated refusals of a minute that is over: said
            self.refusals.flush(self.monotonic())
        if quiet_ok:
            if self.rolls.pending:
                self.rolls.step()
            post = self.post
            if not (self.exits.jobs or post.dirty or post.flips) and (
                not post.held or post.quiet(self.wall_ns() // 1_000_000_000 + 19_800)
            ):  # (quiet's own first tests, made here: a backtest asks after every bar)
                book = self.book
                if not (book.entries and book.states.any_halted):
                    return  # 19,800: IST's offset; quiet() reads IST's wall time
        now = self.market_now()
        if self.day is not None and now.date() != self.day:
            self._new_day()
        self.day = now.date()
        if self.schedule is not None:
            self._follow_schedule(now)
        for t in self.post.evaluate(now):
            self._act(t)
        self.enforce_halt()
        if self.accounts.follows:
            self._converge_followers(now)
        self.exits.step()
        if not quiet_ok:
            self.rolls.step()

    def _follow_schedule(self, now: datetime) -> None:
        """At each change of a scheduled strategy's phase: halted outside its hours,
        armed (its own halt lifted, no other) at its start (``risk/schedule.py``)."""
        assert self.schedule is not None
        states = self.book.states
        for name, phase, day in self.schedule.changes(now):
            why = self.schedule.reason(name, phase, day)
            if phase == "during":
                mine = states.why.get(name)
                if states.own(name) != "halted" or mine is None or mine.by != SCHEDULE:
                    continue  # active already, or halted by someone else: theirs to lift
                state = "active"
            elif states.own(name) == "halted":
                continue  # halted already (an operator, a limit): left as it is
            else:
                state = "halted"
            states.set(name, state, why, SCHEDULE)  # type: ignore[arg-type]  # one of two
            self.ports.save_states(states, why)
            log.warning("trading state", target=name, state=state, reason=why, by=SCHEDULE)
            self.ports.emit(
                wire.RiskEvent(
                    strategy=name, kind="state", rule="schedule", reason=why, action=state
                )
            )

    def _new_day(self) -> None:
        """Daily limits start again: a strategy that risk set REDUCING for one of them is
        ACTIVE again (states an operator set, and a HALTED stack, stay as they are)."""
        self.unknown_today.clear()
        for name in sorted(self.auto_reduced):
            if self.book.states.strategies.get(name) == "reducing":
                self.book.states.set(name, "active")
                self.ports.emit(
                    wire.RiskEvent(
                        strategy=name,
                        kind="state",
                        rule="trading_state",
                        reason="new trading day: daily limits reset",
                        action="active",
                    )
                )
        self.auto_reduced.clear()
        self.ports.save_states(self.book.states, "new trading day")

    def _act(self, t: Trigger) -> None:
        self.counts.triggers[t.kind] += 1
        p = plan(t, self.post)
        if p.state is not None:
            target, state = p.state
            self.book.states.set(target, state, t.reason, "risk")  # type: ignore[arg-type]  # plan()'s: a State
            if target != "*":
                self.auto_reduced.add(target)  # no re-entry today
            self.ports.save_states(self.book.states, t.reason)
        log.warning(
            "risk trigger",
            strategy=t.strategy,
            rule=t.kind,
            threshold=t.threshold,
            value=t.value,
            action=p.action,
            positions=[f"{s}:{k[1]}" for s, k in p.jobs],
        )
        self.ports.emit(trigger_event(t, p.action))
        if p.state is not None:  # the state it set, as its own event (the engine's gate)
            target, state = p.state
            self.ports.emit(
                wire.RiskEvent(
                    strategy=target, kind="state", rule=t.kind, reason=t.reason, action=state
                )
            )
        for strategy, key in p.jobs:
            self.exits.start(strategy, key, t.kind)

    def _send_exit(self, order: wire.Order) -> bool:
        order = msgspec.structs.replace(order, account=self.accounts.account_of(order.strategy))
        if order.op == "place":
            signed = order.quantity if order.action == "BUY" else -order.quantity
            key = (order.strategy, order.exchange, order.symbol)
            self.book.on_approved(order.order_id, key, signed)
        elif order.op == "cancel":
            self.book.on_cancel(order.order_id, order.ref_order_id)
        ok = self.ports.send(order)
        if not ok:
            self.book.forget(order.order_id)
            self.ports.error("exit order not queued", order_id=order.order_id)
        return ok

    def _account_net(self, key: Key, account: str) -> int:
        """Our net of one position over every book that trades on ``account``."""
        return sum(
            self.post.qty(s, key)
            for s in list(self.post.books)
            if self.accounts.account_of(s) == account
        )

    def _working_of(self, strategy: str, key: Key) -> dict[str, int]:
        return dict(self.book.working.of((strategy, key[0], key[1])))

    def _exit_event(self, job: ExitJob, kind: str, reason: str) -> None:
        level = log.info if kind != "exit_retry" else log.warning
        level(kind, strategy=job.strategy, symbol=job.key[1], rule=job.kind, reason=reason)
        self.ports.emit(
            wire.RiskEvent(
                strategy=job.strategy,
                kind=kind,
                rule=job.kind,
                reason=f"{job.key[1]}: {reason}",
                value=float(self.post.qty(job.strategy, job.key)),
                action="close",
                order_ids=list(job.orders),
            )
        )

    # ------------------------------------------------------------------ status

    def usage(self) -> dict[str, dict[str, float]]:
        books = {k[0] for k in self.book.positions} | set(self.post.books)
        return {s: usage(self.book, self.refdata, s, self.wall_ns()) for s in sorted(books)}
