"""The risk daemon: the only path from an intent to the router.

Each intent from the engine is checked (``rules.check``); a rejection is published as a
``RiskEvent`` on ``risk.event.<strategy>``, an approval becomes an ``Order`` pushed to the
router. Approved orders wait in a bounded queue while the router is unreachable and are
withdrawn with a RiskEvent after ``MT_RISK_WAIT_S``. The kill switch arrives as a
``Command`` on its own pipe and is persisted, so a restarted risk daemon keeps it.

A strategy that other accounts follow gets its followers' orders here too, each in the
follower's own book and account (``risk/mirror.py``); risk's exits, limits and P&L treat
each follower book like a strategy of its own.
"""

from __future__ import annotations

import collections
import time
from datetime import date, datetime
from typing import Any

import msgspec

from mytrading import bus, venue, wire
from mytrading.accounts import load_accounts
from mytrading.bus import Puller, Pusher
from mytrading.daemon import Daemon, Peer
from mytrading.interest import Declarer, entry
from mytrading.outbox import Outbox
from mytrading.recovery import Snapshot, fetch_fills, fetch_snapshot
from mytrading.risk.charges import load_charges
from mytrading.risk.events import EventStore
from mytrading.risk.exits import ExitJob, ExitManager
from mytrading.risk.limits import Limits, load_limits
from mytrading.risk.margin import load_margins
from mytrading.risk.mirror import Mirror
from mytrading.risk.monitor import Key, PostTrade, Trigger
from mytrading.risk.orders import (
    approved_order,
    children,
    decide,
    plan,
    rejected_event,
    roll_children,
    trigger_event,
)
from mytrading.risk.roll import RollApproval, RollWatch
from mytrading.risk.rules import (
    Rejection,
    RiskBook,
    check,
    child_size,
    usage,
)
from mytrading.risk.state import MarksStore, StateStore
from mytrading.settings import ConfigError

MAX_PENDING = 1000
HALT_CANCEL_RETRY_S = 5.0  # a halted book's entry still working: cancelled again after this
HALT_CANCEL_TRIES = 5


class RiskDaemon(Daemon):
    name = "risk"
    required_peers = ("router",)
    # ticks: live marks; funds and margin: the broker's figures, polled by the router
    sub_prefixes = ("exec.order.", "exec.fill.", "exec.funds", "exec.margin", "md.tick.")

    def setup(self) -> None:
        s = self.settings
        overrides = {
            name.removeprefix("risk_"): getattr(s, name)
            for name in ("risk_max_order_lots", "risk_max_position_lots", "risk_max_orders_per_sec")
            if name in s.model_fields_set
        }
        overrides["any_hour"] = s.risk_any_hour
        self.limits = load_limits(s.config_dir / "risk.toml", overrides)
        self.book = RiskBook()
        self.accounts = accounts = load_accounts(s)
        self.venue = venue.for_daemon(s, accounts)  # its states and marks are this venue's
        venue.carry_legacy_states(s.state_dir, self.venue.dir)
        self.state_store = StateStore(self.venue.dir / "risk_state.json")
        self.book.states, problem = self.state_store.load()
        if problem:
            self.count_error("risk state unreadable", problem=problem)
        self.intents = Puller(self.ctx, self.endpoints["pipe.intents"])
        self.commands = Puller(self.ctx, self.endpoints["pipe.commands"])
        self.orders = Pusher(self.ctx, self.endpoints["pipe.orders"], self.name, "order")
        self.add_puller(self.intents, self._on_intent)
        self.add_puller(self.commands, self._on_command)
        self.outbox: Outbox[wire.Order] = Outbox(
            self.orders,
            lambda: self.peer_up("router"),
            s.risk_wait_s,
            self._withdraw,
            lambda: "router unavailable",
            MAX_PENDING,
            key=lambda o: o.order_id,
        )
        self.approved = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.triggers: collections.Counter[str] = collections.Counter()
        self.store_errors = 0
        self.day: date | None = None
        self.auto_reduced: set[str] = set()  # REDUCING by a daily limit: undone next day
        # per account: when its position book was last read, and what it said
        self._book_read: dict[str, tuple[float, list[wire.BrokerPosition] | None]] = {}
        self.events = EventStore(s.risk_db, self._store_failed, self._store_held)
        self.margins = load_margins(s.config_dir)
        self.mirror = Mirror(accounts, self.refdata, self.margins)
        unknown = accounts.grades() - set(self.margins.sizing if self.margins else ())
        if unknown:
            raise ConfigError(f"accounts.toml: follower grades not in margins.toml: {unknown}")
        self.post = PostTrade(self.refdata, self.limits, load_charges(s.config_dir))
        self.exits = ExitManager(
            self.refdata,
            self.post,
            self._send_exit,
            self._working_ids,
            self._broker_net,
            self._exit_event,
            format(self.started_ns // 1_000_000, "x"),
            lambda strategy, inst: child_size(inst, self.limits.of(strategy)),
            accounts.account_of,
        )
        self.rolls = RollWatch(
            self._broker_net,
            self._account_net,
            self._emit,
            lambda strategy, key: self.exits.start(strategy, key, "roll"),
        )
        self.skip_fills_to = 0
        self.halt_cancels: dict[str, tuple[float, int]] = {}  # entry id -> (last try, tries)
        self.cancel_seq = 0
        self.entries_halted = 0  # working entries of halted books, cancels asked
        self.marks = MarksStore(self.venue.dir / "risk_marks.json")
        self._restore()
        self.declarer = Declarer(lambda m: self.pub.publish(wire.interest_topic(self.name), m))
        self.every(0.02, self.outbox.flush)
        self.every(1.0, self._post_trade)
        self.every(0.5, self._declare, first_in=0)
        self.log.info("risk limits", **self.limits.as_dict(), states=self.book.states.as_dict())

    # ----------------------------------------------------------------- intents

    def _on_intent(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.OrderIntent):
            self.count_error(
                "not an intent on the intent pipe", got=type(msg).__name__, src=msg.src
            )
            return
        self.record_latency_ns(time.time_ns() - msg.ts)
        lead_before = self.book.net((msg.strategy, msg.exchange, msg.symbol))
        limits = self.limits.of(msg.strategy)
        lead = self.accounts.lead(msg.strategy)
        funds = self.book.funds[lead]
        if funds.available is None and msg.op != "cancel" and self.peer_up("router"):
            self._ask_funds(lead)  # only until the router's first report arrives
        wall = time.time_ns()
        now = self.clock.now()
        result = decide(msg, self.book, self.refdata, limits, now, wall, self.margins, lead)
        self.book.seen_intents.add(msg.intent_id)
        if isinstance(result, Rejection):
            self._reject(msg.strategy, msg.intent_id, result)
            return
        if result.margin:
            funds.reserved.append((wall, result.margin))
        if isinstance(result, RollApproval):
            self._roll(msg, result, lead, limits)
            return
        if result.quantity != msg.quantity:
            self.log.info(
                "sized from margin", strategy=msg.strategy, sizing=msg.sizing, qty=result.quantity
            )
            msg = msgspec.structs.replace(msg, quantity=result.quantity)
        base = approved_order(msg, result, self.book, self.name, lead)
        if msg.op != "cancel":
            self.book.approvals[msg.strategy].append(time.time_ns())
        followers = self.mirror.plan(base, lead_before, self.book, self.clock.now().date())
        self.approved += 1
        for one in (base, *followers):
            if one is not base and one.op == "place" and not self._follower_passes(one, now):
                continue
            for o in children(one, self.book, self.refdata, limits):
                if not self.outbox.put(o):
                    self._withdraw(o, "risk queue to router full")

    def _follower_passes(self, o: wire.Order, now: datetime) -> bool:
        """A follower book's new order passes the same rules as the lead's (position,
        notional, lots, windows, trading state, margin) against its own book, limits
        (its strategy's unless risk.toml gives the book its own) and account's funds.
        Refused, it is a risk event of the follower book; the lead's order stands, and
        the follower catches up at the lead's next order if the rules then allow."""
        if self.book.funds[o.account].available is None and self.peer_up("router"):
            self._ask_funds(o.account)
        intent = wire.OrderIntent(
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
        wall = time.time_ns()
        limits = self.limits.of(o.strategy)
        got = check(intent, self.book, self.refdata, limits, now, wall, self.margins, o.account)
        self.book.seen_intents.add(intent.intent_id)
        if isinstance(got, Rejection):
            self._reject(o.strategy, intent.intent_id, got)
            return False
        if got.margin:
            self.book.funds[o.account].reserved.append((wall, got.margin))
        self.book.approvals[o.strategy].append(wall)
        return True

    def _roll(self, msg: wire.OrderIntent, ok: RollApproval, lead: str, limits: Limits) -> None:
        """An approved roll: its two orders (the close first), followers' likewise, and
        the watch that reports its outcome. Neither leg is queued unless both can be."""
        day = self.clock.now().date()
        before = {
            s: self.book.net((msg.strategy, msg.exchange, s)) for s in (msg.symbol, msg.roll_to)
        }
        close, open_, out1, out2 = roll_children(
            msg, ok, self.book, self.refdata, limits, self.name, lead
        )
        followers = [
            *self.mirror.plan(close, before[msg.symbol], self.book, day),
            *self.mirror.plan(open_, before[msg.roll_to], self.book, day),
        ]
        for f in followers:  # split by the lead's limits, as ``_on_intent`` does
            out2 += children(f, self.book, self.refdata, limits)
        if len(self.outbox) + len(out1) + len(out2) > MAX_PENDING:
            for o in (*out1, *out2):
                self.book.forget(o.order_id)
            full = Rejection("router_unavailable", "risk queue to router full")
            self._reject(msg.strategy, msg.intent_id, full)
            return
        self.approved += 1  # only once both legs can go
        self.book.approvals[msg.strategy].append(time.time_ns())
        self.rolls.start(msg, close, open_, (len(out1), len(out2)))
        self.log.warning(
            "roll approved",
            strategy=msg.strategy,
            old=msg.symbol,
            new=msg.roll_to,
            qty=ok.quantity,
            orders=[o.order_id for o in (*out1, *out2)],
        )
        for o in (*out1, *out2):
            self.outbox.put(o)

    def _withdraw(self, order: wire.Order, reason: str) -> None:
        if order.op == "place":
            self.book.forget(order.order_id)
            self.rolls.ended(order.order_id)
        self._reject(order.strategy, order.intent_id, Rejection("router_unavailable", reason))

    def _reject(self, strategy: str, intent_id: str, r: Rejection) -> None:
        self.rejected[r.rule] += 1
        self.log.warning(
            "intent rejected", strategy=strategy, intent=intent_id, rule=r.rule, reason=r.reason
        )
        self._emit(rejected_event(strategy, intent_id, r))

    # ---------------------------------------------------------------- commands

    def on_peer_restart(self, peer: Peer) -> None:
        """Orders a killed router never answered go again: one lost in its socket buffer
        was never journaled, so never sent; one it journaled is dropped as a duplicate."""
        if peer.name == "router":
            n = self.outbox.redeliver()
            if n:
                self.log.warning("orders sent again after a router restart", orders=n)

    def _on_command(self, topic: str, msg: wire.Msg) -> None:
        if not isinstance(msg, wire.Command):
            self.count_error("not a command on the command pipe", got=type(msg).__name__)
            return
        if msg.command == "kill_switch":
            if msg.value not in ("on", "off", "flatten"):
                self.count_error("bad kill switch value", value=msg.value)
                return
            target, state = "", ("active" if msg.value == "off" else "halted")
        else:
            target, state = msg.target, msg.value
        try:
            self.book.states.set(target, state)  # type: ignore[arg-type]
        except ValueError as exc:
            self.count_error("bad state command", reason=str(exc))
            return
        if msg.command == "kill_switch":
            self.book.states.flatten = msg.value == "flatten"
        self.state_store.save(self.book.states, msg.reason)
        who = target if target not in ("", "*") else "*"
        action = self.book.states.kill_mode if msg.command == "kill_switch" else state
        self.log.warning(
            "trading state", target=who, state=action, reason=msg.reason, by=msg.issued_by
        )
        self._emit(
            wire.RiskEvent(
                strategy=who,
                kind="kill_switch" if msg.command == "kill_switch" else "state",
                rule="trading_state",
                reason=msg.reason or f"{who} {action}",
                action=action if msg.command == "kill_switch" else state,
            ),
        )
        self._enforce_halt()  # entries cancelled (and positions closed) now, not in a second
        self.heartbeat()  # let watchers confirm the new state at once

    def _enforce_halt(self) -> None:
        """HALTED books keep no working entry: each is cancelled at its broker (again after
        ``HALT_CANCEL_RETRY_S`` while the broker has not confirmed it). With the kill
        switch at ``flatten``, every position the broker confirms is closed by an exit
        job, including one an entry filled after the switch."""
        now = time.monotonic()
        states = self.book.states
        halted = 0
        for oid in list(self.book.entries):
            got = self.book.working.get(oid)
            if got is None:
                self.book.entries.discard(oid)
                continue
            if states.of(got[0][0]) != "halted":
                continue
            halted += 1
            sent, tries = self.halt_cancels.get(oid, (-1e9, 0))
            if now - sent < HALT_CANCEL_RETRY_S:
                continue
            if tries >= HALT_CANCEL_TRIES:
                if tries == HALT_CANCEL_TRIES:
                    self.count_error(
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

    def _cancel(self, oid: str, key: tuple[str, str, str], signed: int) -> None:
        """Risk's own cancel of one working order (its id is risk's, like its exits')."""
        self.cancel_seq += 1
        intent = f"risk-{self.exits.run_id}-c{self.cancel_seq}"
        strategy, exchange, symbol = key
        self.log.warning("halted: cancelling a working entry", order_id=oid, strategy=strategy)
        self._send_exit(
            wire.Order(
                order_id=f"{strategy}.{intent}",
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
                approved_by=self.name,
                op="cancel",
                ref_order_id=oid,
                exit=True,
            )
        )

    def _restore(self) -> None:
        """After a restart: positions from the router (a fresh stack has none), so caps,
        REDUCING and post-trade limits see what is held; and the day's P&L and charges,
        replayed from the day's fills (the router's journal keeps them). A position carried
        from an earlier day starts at its average price. Today's trailing-stop peaks and
        fired one-shot triggers come back from ``risk_marks.json``."""
        marks, problem = self.marks.load()
        if problem:
            self.count_error("risk marks unreadable: trailing stops restart", problem=problem)
        if marks and self.post.restore_marks(marks, self.clock.now().date()):
            self.log.info("day marks restored", books=sorted(marks.get("books", {})))
        snap = fetch_snapshot(self.ctx, self.endpoints["rpc.router"])
        if snap is None:
            self.log.warning("no position snapshot from the router: risk starts flat")
            return
        self.skip_fills_to = snap.last_fill_no
        for w in snap.working:  # what may still fill counts against the caps
            o = w.order
            left = o.quantity - w.filled_qty
            self.book.on_approved(
                o.order_id,
                (o.strategy, o.exchange, o.symbol),
                left if o.action == "BUY" else -left,
                entry=not o.exit,
            )
        if snap.unconfirmed:
            self.count_error(
                "positions the broker does not confirm: risk does not act on them",
                positions=["/".join(k) for k in sorted(snap.unconfirmed)],
            )
        day_net = self._replay_fills(snap)
        for p in snap.positions:
            key = (p.strategy, p.exchange, p.symbol)
            self.book.positions[key] = self.book.positions.get(key, 0) + p.quantity
            full = (p.exchange, p.symbol, p.product)
            if day_net.get((p.strategy, *full), 0) != p.quantity:  # carried into the day
                self.post.restore(p.strategy, full, p.quantity, p.avg_price)
        if snap.positions:
            self.log.info(
                "positions restored",
                positions=[f"{p.strategy}:{p.symbol}={p.quantity}" for p in snap.positions],
                last_fill_no=snap.last_fill_no,
            )

    def _replay_fills(self, snap: Snapshot) -> dict[tuple[str, str, str, str], int]:
        """Today's fills up to the snapshot's into post-trade (P&L, charges), those of
        positions the broker did not confirm left out; returns the net they make per
        (strategy, exchange, symbol, product)."""
        got = fetch_fills(self.ctx, self.endpoints["rpc.router"], snap.last_fill_no)
        fills = None if got is None else [f for f in got if snap.confirmed(f)]
        net: dict[tuple[str, str, str, str], int] = {}
        if fills is None:
            self.log.warning("no fills from the router: P&L restarts from average prices")
            return net
        day = self.clock.now().date()
        for f in fills:
            self.post.on_fill(f, day)
            k = (f.strategy, f.exchange, f.symbol, f.product)
            net[k] = net.get(k, 0) + (f.quantity if f.action == "BUY" else -f.quantity)
        return net

    # --------------------------------------------------------------- post-trade

    def _post_trade(self) -> None:
        """Once a second: P&L on live marks against the limits; exits for breaches."""
        now = self.clock.now()
        if self.day is not None and now.date() != self.day:
            self._new_day()
        self.day = now.date()
        for t in self.post.evaluate(now):
            self._act(t)
        self._enforce_halt()
        self.exits.step()
        self.rolls.step()
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

    def _new_day(self) -> None:
        """Daily limits start again: a strategy that risk set REDUCING for one of them is
        ACTIVE again (states an operator set, and a HALTED stack, stay as they are)."""
        for name in sorted(self.auto_reduced):
            if self.book.states.strategies.get(name) == "reducing":
                self.book.states.set(name, "active")
                self._emit(
                    wire.RiskEvent(
                        strategy=name,
                        kind="state",
                        rule="trading_state",
                        reason="new trading day: daily limits reset",
                        action="active",
                    )
                )
        self.auto_reduced.clear()
        self.state_store.save(self.book.states, "new trading day")

    def _act(self, t: Trigger) -> None:
        self.triggers[t.kind] += 1
        p = plan(t, self.post)
        jobs, action = p.jobs, p.action
        if p.state is not None:
            target, state = p.state
            self.book.states.set(target, state)  # type: ignore[arg-type]
            if target != "*":
                self.auto_reduced.add(target)  # no re-entry today
            self.state_store.save(self.book.states, t.reason)
        self.log.warning(
            "risk trigger",
            strategy=t.strategy,
            rule=t.kind,
            threshold=t.threshold,
            value=t.value,
            action=action,
            positions=[f"{s}:{k[1]}" for s, k in jobs],
        )
        self._emit(trigger_event(t, action))
        for strategy, key in jobs:
            self.exits.start(strategy, key, t.kind)

    def _send_exit(self, order: wire.Order) -> bool:
        order = msgspec.structs.replace(order, account=self.accounts.account_of(order.strategy))
        if order.op == "place":
            signed = order.quantity if order.action == "BUY" else -order.quantity
            key = (order.strategy, order.exchange, order.symbol)
            self.book.on_approved(order.order_id, key, signed)
        ok = self.outbox.put(order)
        if not ok:
            self.book.forget(order.order_id)
            self.count_error("exit order not queued", order_id=order.order_id)
        return ok

    def _account_net(self, key: Key, account: str) -> int:
        """Our net of one position over every book that trades on ``account``."""
        return sum(
            self.post.qty(s, key)
            for s in list(self.post.books)
            if self.accounts.account_of(s) == account
        )

    def _working_ids(self, strategy: str, key: Key) -> list[str]:
        return list(self.book.working.of((strategy, key[0], key[1])))

    def _ask_funds(self, account: str) -> None:
        """Ask the router for an account's funds now (a blocking request, ≤ 1.5 s) rather
        than refuse the first orders for want of a figure."""
        q = wire.BrokerQuery(kind="funds", account=account)
        reply = bus.request(self.ctx, self.endpoints["rpc.router"], q, 1500)
        if isinstance(reply, wire.BrokerReply) and reply.ok and reply.funds is not None:
            self.book.funds[account].report(reply.funds.available, time.time_ns())

    def _broker_net(self, key: Key, account: str) -> int | None:
        """The broker's net for one position of one account, from one position-book read
        per second (shared by every exit job); None while the router is down or does not
        answer, so a dead router costs no blocking wait."""
        now = time.monotonic()
        if now - self._book_read.get(account, (-1e9, None))[0] >= 1.0:
            book = None
            if self.peer_up("router"):
                q = wire.BrokerQuery(kind="positions", account=account)
                reply = bus.request(self.ctx, self.endpoints["rpc.router"], q, 1000)
                if isinstance(reply, wire.BrokerReply) and reply.ok:
                    book = reply.positions
            self._book_read[account] = (now, book)
        positions = self._book_read[account][1]
        if positions is None:
            return None
        return sum(p.quantity for p in positions if (p.exchange, p.symbol, p.product) == key)

    def _exit_event(self, job: ExitJob, kind: str, reason: str) -> None:
        level = self.log.info if kind != "exit_retry" else self.log.warning
        level(kind, strategy=job.strategy, symbol=job.key[1], rule=job.kind, reason=reason)
        self._emit(
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

    def _emit(self, ev: wire.RiskEvent) -> None:
        """Publish a risk event and keep it in DuckDB (by the store's writer thread)."""
        self.pub.publish(f"risk.event.{ev.strategy}", ev)
        self.events.add(ev, time.time_ns(), self.clock.now())

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
            self.book.ltp[(msg.exchange, msg.symbol)] = msg.ltp
            self.post.on_tick(msg)
        elif isinstance(msg, wire.OrderUpdate):
            self.outbox.ack(msg.order_id)
            self.book.on_update(msg)
            self.rolls.on_update(msg)
        elif isinstance(msg, wire.Funds):
            self.book.funds[msg.account].report(msg.available, msg.ts)
        elif isinstance(msg, wire.MarginQuote):
            self.book.broker_margin[(msg.exchange, msg.symbol, msg.action)] = (
                msg.per_lot,
                msg.ts,
            )
        elif isinstance(msg, wire.Fill) and msg.fill_no > self.skip_fills_to:
            self.skip_fills_to = msg.fill_no  # a restarted router republishes its fills
            self.book.on_fill(msg)
            self.post.on_fill(msg, self.clock.now().date())
            self.rolls.on_fill(msg)

    def extra_sent(self) -> int:
        return self.orders.sent

    def detail(self) -> dict[str, Any]:
        return {
            "kill_switch": self.book.states.kill_switch,
            "kill_mode": self.book.states.kill_mode,  # off | on | flatten
            "entries_halted": self.entries_halted,  # working entries of halted books
            "positions_open": sum(len(self.post.open_keys(b)) for b in list(self.post.books)),
            "states": self.book.states.as_dict(),
            "limits": self.limits.as_dict(),
            "pnl": {s: self.post.pnl(s) for s in self.post.books},
            "use": {
                s: usage(self.book, self.refdata, s, time.time_ns())
                for s in sorted({k[0] for k in self.book.positions} | set(self.post.books))
            },
            "triggers": dict(self.triggers),
            "exits_open": len(self.exits.jobs),
            "rolls_open": len(self.rolls.rolls),
            "rolls": dict(self.rolls.outcomes),
            "events_stored": self.events.stored,
            "events_pending": self.events.pending,  # in the outbox: the DuckDB file is held
            "events_store_held": bool(self.events.held),
            # per account: the broker's last figure, and what is free of it now
            "margin_available": {a: f.available for a, f in self.book.funds.items()},
            "broker_margin": {
                f"{ex}:{sym}:{act}": per
                for (ex, sym, act), (per, _) in self.book.broker_margin.items()
            },
            "margin_free": {a: f.free(time.time_ns()) for a, f in self.book.funds.items()},
            "events_not_stored": self.store_errors,
            "approved": self.approved,
            "rejected": dict(self.rejected),
            "pending_to_router": len(self.outbox),
        }

    def teardown(self) -> None:
        self.events.close()
        self.orders.close()
        self.intents.close()
        self.commands.close()
