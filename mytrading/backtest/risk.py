"""Risk in a backtest: the live risk daemon's rules and decisions, driven by the backtest's
clock instead of the bus.

Each intent goes through ``rules.check`` with market time as both the market clock and
the "wall" clock (so rate limits count orders per second of market time), then becomes
orders through ``risk/orders.py`` as live. Post-trade, ``PostTrade.evaluate`` runs after
every bar step (live: every second), and its triggers close positions through the same
``ExitManager``, confirmed against the simulated broker's position book. The available
margin is the capital plus realized P&L less charges and the margin the open positions
hold (``margins.toml``), which is what a broker's ``funds`` would report.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from mytrading import wire
from mytrading.accounts import MAIN
from mytrading.refdata import RefData
from mytrading.risk.charges import ChargeTable
from mytrading.risk.exits import ExitJob, ExitManager
from mytrading.risk.limits import load_limits
from mytrading.risk.margin import load_margins
from mytrading.risk.monitor import Key, PostTrade
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
from mytrading.risk.rules import Rejection, RiskBook, child_size
from mytrading.sim.matching import SimBroker

NS = 1_000_000_000
IST_OFFSET_S = 19_800  # +05:30, all year


class BacktestRisk:
    def __init__(
        self,
        refdata: RefData,
        config_dir: Path,
        charges: ChargeTable,
        capital: float,
        broker: SimBroker,
        now_ns: Callable[[], int],
        now: Callable[[], datetime],
        send: Callable[[wire.Order], None],
        event: Callable[[wire.RiskEvent], None],
    ) -> None:
        self.refdata = refdata
        self.limits = load_limits(config_dir / "risk.toml", {})
        self.margins = load_margins(config_dir)
        self.book = RiskBook()
        self.post = PostTrade(refdata, self.limits, charges)
        self.capital = capital
        self.broker = broker
        self._now_ns = now_ns
        self._now = now
        self._send = send
        self._event = event
        self.approved = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.triggers: collections.Counter[str] = collections.Counter()
        self.auto_reduced: set[str] = set()
        self.day: date | None = None
        self.exits = ExitManager(
            refdata,
            self.post,
            self._send_exit,
            lambda strategy, key: list(self.book.working.of((strategy, key[0], key[1]))),
            self._broker_net,
            self._exit_event,
            "bt",
            lambda strategy, inst: child_size(inst, self.limits.of(strategy)),
            clock=lambda: self._now_ns() / NS,
        )
        self.rolls = RollWatch(
            self._broker_net,
            lambda key, account: sum(self.post.qty(s, key) for s in list(self.post.books)),
            event,
            lambda strategy, key: self.exits.start(strategy, key, "roll"),
        )
        # timeframes the post-trade Supertrend exits read (fed through ``on_bar``)
        self.bar_tfs = {lim.supertrend_tf for lim in self.post.st_limits}
        self._funds_key: tuple[int, date] | None = None
        self._funds = 0.0
        self.charges = 0.0

    # ----------------------------------------------------------------- intents

    def on_intent(self, msg: wire.OrderIntent) -> None:
        limits = self.limits.of(msg.strategy)
        wall = self._now_ns()
        funds = self.book.funds[MAIN]
        funds.report(self._available(), wall)
        result = decide(msg, self.book, self.refdata, limits, self._now(), wall, self.margins)
        self.book.seen_intents.add(msg.intent_id)
        if isinstance(result, Rejection):
            self.rejected[result.rule] += 1
            self._event(rejected_event(msg.strategy, msg.intent_id, result))
            return
        if result.margin:
            funds.reserved.append((wall, result.margin))
        if isinstance(result, RollApproval):
            close, open_, out1, out2 = roll_children(
                msg, result, self.book, self.refdata, limits, "risk"
            )
            self.book.approvals[msg.strategy].append(wall)
            self.approved += 1
            self.rolls.start(msg, close, open_, (len(out1), len(out2)))
            for o in (*out1, *out2):
                self._send(o)
            return
        base = approved_order(msg, result, self.book, "risk")
        if msg.op != "cancel":
            self.book.approvals[msg.strategy].append(wall)
        self.approved += 1
        for o in children(base, self.book, self.refdata, limits):
            self._send(o)

    def _available(self) -> float:
        """Capital + realized - charges - margin the open positions hold; it changes only
        with a fill or a new day (expiry-day margins), so it is worked out once for each."""
        day = self._now().date()
        key = (self.broker.trades, day)
        if key == self._funds_key:
            return self._funds
        self._funds_key = key
        self._funds = self._work_out_funds(day)
        return self._funds

    def _work_out_funds(self, day: date) -> float:
        cash = self.capital
        held = 0.0
        for (ex, sym, prod), p in self.broker.ledger.positions.items():  # type: ignore[misc]
            cash += p.realized
            if p.qty:
                inst = self.refdata.instrument(ex, sym)
                action = "BUY" if p.qty > 0 else "SELL"
                held += self.margins.need(
                    inst, action, abs(p.qty), p.avg, abs(p.qty), False, day, product=prod
                ).amount
        charges = self.charges  # every fill's, since the start (risk's books reset daily)
        return cash - charges - held

    # ------------------------------------------------------------------ inputs

    def on_update(self, u: wire.OrderUpdate) -> None:
        self.book.on_update(u)
        self.rolls.on_update(u)

    def on_fill(self, f: wire.Fill) -> None:
        self.book.on_fill(f)
        self.rolls.on_fill(f)
        day = self._now().date()
        self.charges += self.post.on_fill(f, day).total

    def mark(self, key: tuple[str, str], price: float) -> None:
        self.book.ltp[key] = price
        self.post.mark(key[0], key[1], price)

    def on_bar(self, bar: wire.Bar) -> None:
        """A closed bar of a timeframe a Supertrend exit reads."""
        self.post.on_bar(bar)

    def on_tick(self, tick: wire.Tick) -> None:
        self.book.ltp[(tick.exchange, tick.symbol)] = tick.ltp
        self.post.on_tick(tick)

    # --------------------------------------------------------------- post-trade

    def step(self) -> None:
        if self.rolls.pending:
            self.rolls.step()
        t = self._now_ns()
        if not self.exits.jobs and self.post.quiet((t // NS + IST_OFFSET_S) % 86_400):
            return  # nothing could fire: the checks below would find nothing
        now = self._now()
        if self.day is not None and now.date() != self.day:
            self._new_day()
        self.day = now.date()
        for t in self.post.evaluate(now):
            self.triggers[t.kind] += 1
            p = plan(t, self.post)
            if p.state is not None:
                self.book.states.set(p.state[0], p.state[1])  # type: ignore[arg-type]
                if p.state[0] != "*":
                    self.auto_reduced.add(p.state[0])
            self._event(trigger_event(t, p.action))
            for strategy, key in p.jobs:
                self.exits.start(strategy, key, t.kind)
        if self.exits.jobs:
            self.exits.step()

    def _new_day(self) -> None:
        for name in sorted(self.auto_reduced):
            if self.book.states.strategies.get(name) == "reducing":
                self.book.states.set(name, "active")
        self.auto_reduced.clear()

    def _send_exit(self, order: wire.Order) -> bool:
        if order.op == "place":
            signed = order.quantity if order.action == "BUY" else -order.quantity
            self.book.on_approved(
                order.order_id, (order.strategy, order.exchange, order.symbol), signed
            )
        self._send(order)
        return True

    def _broker_net(self, key: Key, account: str) -> int | None:
        p = self.broker.ledger.positions.get(key)
        return p.qty if p else 0

    def _exit_event(self, job: ExitJob, kind: str, reason: str) -> None:
        self._event(
            wire.RiskEvent(
                strategy=job.strategy, kind="exit", rule=job.kind, reason=reason, action=kind
            )
        )
