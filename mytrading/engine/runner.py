"""Runs strategies: builds their bars, dispatches events, times hooks, isolates failures.

No sockets here: the engine daemon feeds it ticks, order updates and fills from the bus
and gives it a function that sends intents, so tests can drive it directly.

* **Bars** are built from ticks per (instrument, timeframe) with ``BarBuilder`` (aligned
  to the session open), closed by the feed's own time or, for an instrument gone quiet,
  by the market clock in ``poll`` after its lag and the grace; each handed out once.
* **Warm-up**: after ``on_start``, each bar subscription that asked for it gets its
  past bars from ``history`` through ``on_bar`` with ``warming_up`` set (no orders).
  The live bar that was already forming when the engine started is partial; when it
  closes it is replaced by the broker's complete bar when history has it. With a
  ``fetcher`` (the engine's, ``openalgo/paced.py``) the calls run off the loop, paced as
  OpenAlgo paces them: a strategy's live bars wait while its history is on the way, and
  ``stats`` says it is still warming.
* **Failures**: an exception in a hook is logged with its traceback and counted; after
  ``max_errors`` failures in a row the strategy is quarantined: its hooks stop, its
  working orders are cancelled, and every other strategy keeps trading.
* **Stuck hooks**: with a ``deadline`` (the engine daemon's; ``engine/watchdog.py``) a
  hook that runs past ``MT_HOOK_TIMEOUT_S`` is interrupted and its strategy quarantined
  at once; the others keep trading.
* **Latency**: every hook call is timed per strategy and event kind (ring of 512).
"""

from __future__ import annotations

import collections
import gc
import itertools
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError

from mytrading import hosttime
from mytrading.domain.bands import PriceBand
from mytrading.domain.bars import BarBuilder
from mytrading.domain.errors import problems
from mytrading.domain.ids import OrderId
from mytrading.domain.refdata import RefData, RefDataError
from mytrading.engine.context import StrategyContext
from mytrading.engine.gate import Gate
from mytrading.engine.parts import PendingRoll, SetMargins
from mytrading.engine.rolldays import RollDays
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.engine.warmup import WarmUps
from mytrading.engine.watchdog import HookDeadline, HookTimeout
from mytrading.messaging import wire
from mytrading.messaging.catchup import Day
from mytrading.openalgo.history import HistoryFn
from mytrading.openalgo.paced import Fetcher
from mytrading.options.exposure import book_greeks
from mytrading.settings import ConfigError

log = structlog.get_logger("engine")
LATENCY_SAMPLES = 512
BACKFILL_HOLD_S = 60.0  # wall seconds 1-minute bars wait at most for the feed's backfill


@dataclass
class Timer:
    strategy: str
    name: str
    every_ns: int
    next_ns: int


def _latency_deque() -> collections.deque[int]:
    return collections.deque(maxlen=LATENCY_SAMPLES)


def _samples() -> dict[str, collections.deque[int]]:
    """A hook's latency samples by hook name (a named function, not nested lambdas:
    mypyc compiles this module)."""
    return collections.defaultdict(_latency_deque)


@dataclass
class Health:
    errors: int = 0
    in_a_row: int = 0
    quarantined: str = ""  # the reason, once quarantined
    entries_held: int = 0  # entries not sent while risk would refuse them (engine/gate.py)
    mem_grew: int = 0  # bytes of RSS its hooks added while the memory guard measured
    last_error: str = ""  # the latest hook failure, for whoever reports it
    first_traceback: str = ""  # the first hook failure's traceback (a research trial's)
    latency: dict[str, collections.deque[int]] = field(default_factory=lambda: _samples())


# who a closed bar reaches: subscriber names, (name, context, health) of each, and the
# contexts of the instrument's other holders (marked with its close)
BarPlan = tuple[list[str], list[tuple[str, StrategyContext, Health]], list[StrategyContext]]


_NOT_BOOKED = object()  # what _book returns when the bookkeeping raised


class StrategyRunner:
    def __init__(
        self,
        refdata: RefData,
        now_ns: Callable[[], int],
        now: Callable[[], datetime],
        send: Callable[[wire.Intent], None],
        need_ticks: Callable[[str, str], None],
        run_id: str,
        history: HistoryFn | None = None,
        max_errors: int = 5,
        mode: str = "paper",
        time_hooks: bool = True,
        need_depth: Callable[[str, str], None] | None = None,
        fetcher: Fetcher | None = None,
        margins: SetMargins | None = None,
        deadline: HookDeadline | None = None,
        bands: Callable[[str], PriceBand] | None = None,
    ) -> None:
        """``bands``: the price band risk judges each strategy's prices by (its limits),
        for the protective stops the engine keeps inside it (None: the default band)."""
        self.refdata = refdata
        self._bands = bands
        self.deadline = deadline  # None: hooks are not timed out (backtests, tests)
        # set by the memory guard while it attributes growth: RSS around each hook call
        self.mem_probe: Callable[[], int] | None = None
        self._own_attrs: dict[str, frozenset[str]] = {}  # a strategy's attributes at birth
        self._margins = margins  # risk's table, for a strategy that sizes a set itself
        self.mode = mode  # live, paper, dry_run or backtest: what ``BaseStrategy.mode`` says
        self.time_hooks = time_hooks  # hook latency rings (the status topic's figures)
        self._now_ns = now_ns
        self._now = now
        self._send = send
        self._need_ticks = need_ticks
        self._need_depth = need_depth  # None: no depth here (a backtest has none)
        self.depth_subs: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        self.run_id = run_id
        self._intent_ids = itertools.count(1)
        self.max_errors = max_errors
        self.strategies: dict[str, BaseStrategy[Any]] = {}  # the authors' hooks
        self.contexts: dict[str, StrategyContext] = {}  # their engine-side state
        self.health: dict[str, Health] = {}
        self.tick_subs: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
        self.bar_subs: dict[tuple[str, str], dict[str, list[str]]] = collections.defaultdict(
            lambda: collections.defaultdict(list)
        )
        self.builders: dict[str, BarBuilder] = {}
        # warm-ups and first live bars (``engine/warmup.py``); its three collections are
        # also the runner's, read on every bar: all empty, a bar takes the lean path
        self.warm = WarmUps(refdata, history, fetcher, now_ns, now, mode, self)
        self.warmups = self.warm.jobs
        self.partial = self.warm.partial
        self.joined = self.warm.joined
        # across a feed outage: 1-minute bars wait while the feed backfills, and each
        # instrument's are handed once and in order (start of the last one handed)
        self.backfilling = False
        self._backfill_since = 0.0
        self.held_1m: dict[tuple[str, str], list[wire.Bar]] = {}
        self.last_1m: dict[tuple[str, str], int] = {}
        self.timers: list[Timer] = []
        self.last: dict[tuple[str, str], float] = {}
        self.holders: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        # on_closed_bar's who-is-told, per (instrument, timeframe); cleared whenever
        # bar_subs or holders change
        self._plans: dict[tuple[tuple[str, str], str], BarPlan] = {}
        # trading states as risk holds them: entries held while risk would refuse them
        self.gate = Gate()
        self._deferred: list[wire.OrderUpdate] = []  # the gate's refusals, after the hook
        self.watched: set[tuple[str, str]] = set()
        self.started = False
        self.restored_fill_no = 0  # the snapshot's last fill: the strategies' fills follow it
        self.rolls = RollDays(self)  # the roll days (``engine/rolldays.py``)
        self.rolling = self.rolls.rolling  # strategies with ``roll_days``

    # history and its fetcher are the warm-ups' (``engine/warmup.py``)
    @property
    def history(self) -> HistoryFn | None:
        return self.warm.history

    @property
    def fetcher(self) -> Fetcher | None:
        return self.warm.fetcher

    @fetcher.setter
    def fetcher(self, fetcher: Fetcher | None) -> None:
        self.warm.fetcher = fetcher  # None: history is asked for in the loop

    # ---------------------------------------------------------------- set-up

    def add(self, cls: type[BaseStrategy[Any]], params: dict[str, Any]) -> BaseStrategy[Any]:
        try:
            p: StrategyParams = cls.Params(**params)
        except ValidationError as exc:
            raise ConfigError(f"strategy {cls.name}: {problems(exc, 'params')}") from None
        strat = cls(p, self.refdata, self)
        self.strategies[cls.name] = strat
        self._own_attrs[cls.name] = frozenset(vars(strat))
        self.contexts[cls.name] = strat.context
        self.health[cls.name] = Health()
        if p.roll_days:
            self.rolls.add(cls.name)
        return strat

    def start(self, warm: bool = True) -> None:
        """``on_start`` for every strategy, then warm-up from history (``warm=False``: not
        yet; ``warmups`` then holds what each subscription asks, as research reads it)."""
        for name, strat in self.strategies.items():
            self._call(name, "start", strat.on_start)
        self.started = True
        if warm:
            self.warm.run()

    def stop(self) -> None:
        for name, strat in self.strategies.items():
            if not self.health[name].quarantined:
                self._call(name, "stop", strat.on_stop)

    def start_one(self, cls: type[BaseStrategy[Any]], params: dict[str, Any]) -> None:
        """A strategy enabled (or re-parameterised) on a running engine: made, started and
        warmed up from history as at the engine's start (``ConfigError`` on bad
        parameters, nothing added). It starts flat: the command layer enables only a
        strategy that holds nothing at the broker."""
        strat = self.add(cls, params)
        self._call(cls.name, "start", strat.on_start)  # its subscriptions ask their warm-ups

    def holds(self, name: str) -> list[str]:
        """What a strategy still has: open positions and working orders, as its books
        say (a strategy is removed only when this is empty)."""
        ctx = self.contexts[name]
        held = [f"{ex}:{sym} {q:+d}" for (ex, sym), q in sorted(ctx.ledger.net().items()) if q]
        return held + [f"order {i} working" for i in sorted(ctx.open_orders)]

    def remove(self, name: str) -> None:
        """A strategy disabled (or about to be re-made with new parameters) on a running
        engine: ``on_stop``, then every subscription, timer, warm-up and book of it
        dropped; instruments nobody else wants are no longer declared to the feed. The
        caller makes sure it holds nothing (``holds``)."""
        if not self.health[name].quarantined:
            self._call(name, "stop", self.strategies[name].on_stop)
        for subs in (self.tick_subs, self.depth_subs):
            for names in subs.values():
                if name in names:
                    names.remove(name)
        for tfs in self.bar_subs.values():
            for names in tfs.values():
                if name in names:
                    names.remove(name)
        for who in self.holders.values():
            who.discard(name)
        self.timers = [t for t in self.timers if t.strategy != name]
        for job in [k for k in self.warm.jobs if k[0] == name]:
            del self.warm.jobs[job]
        for job in [k for k in self.warm.joined if k[0] == name]:
            del self.warm.joined[job]
        self.rolls.remove(name)
        del self.strategies[name], self.contexts[name], self.health[name]
        self._own_attrs.pop(name, None)
        self._plans.clear()
        for key in list(self.watched):
            self._unwatch_if_unused(key)

    # -------------------------------------------------------- EngineLink side

    def submit(self, strategy: str, intent: wire.Intent, protective: bool = False) -> bool:
        h = self.health[strategy]
        if h.quarantined and not isinstance(intent, wire.CancelIntent) and not protective:
            log.warning("order from a quarantined strategy refused", strategy=strategy)
            return False
        if self.gate.closed and not protective and isinstance(intent, wire.PlaceIntent):
            why = self.gate.holds(strategy, self._now_ns())
            if why and not self._reduces(strategy, intent):
                self._hold_entry(strategy, intent, why)
                return False
        self._send(intent)
        return True

    def _reduces(self, strategy: str, i: wire.PlaceIntent) -> bool:
        """The order only shrinks the strategy's position (an exit: risk judges it)."""
        pos = self.contexts[strategy].position(i.exchange, i.symbol)
        signed = i.quantity if i.action == "BUY" else -i.quantity
        return (pos > 0 > signed or pos < 0 < signed) and abs(signed) <= abs(pos)

    def _hold_entry(self, strategy: str, i: wire.PlaceIntent, why: str) -> None:
        """An entry risk would refuse: not sent. The first of an episode reaches the
        strategy as a rejection naming why (after the hook that made it returns) and is
        logged; the rest are dropped quietly until the state changes."""
        self.health[strategy].entries_held += 1
        if self.gate.count_held(strategy) > 1:
            return
        ctx = self.contexts[strategy]
        ctx.log.warning("entries held, not sent: " + why, symbol=i.symbol, action=i.action)
        self._deferred.append(
            wire.OrderUpdate(
                order_id="",
                intent_id=i.intent_id or self.next_intent_id(),
                strategy=strategy,
                exchange=i.exchange,
                symbol=i.symbol,
                action=i.action,
                quantity=i.quantity,
                status="rejected",
                reason=f"held by the engine, not sent: {why}",
            )
        )

    def _flush_deferred(self) -> None:
        while self._deferred:
            self.on_order_update(self._deferred.pop(0))

    def on_trading_state(self, target: str, state: str, why: str) -> None:
        """A state as risk holds it (an event or its heartbeat): entries are held or
        resume. A resumption is said once."""
        before = self.gate.state_of(target)[0] if target not in ("", "*") else self.gate.stack
        if self.gate.on_state(target, state, why) and state == "active" and before != "active":
            log.info("entries resume", target=target or "*")

    def sync_states(self, stack: str, strategies: dict[str, str], why: dict[str, str]) -> None:
        """Risk's heartbeat: its trading states, the truth the events may have missed."""
        for target in self.gate.sync(stack, strategies, why):
            state, _ = self.gate.state_of(target) if target != "*" else (self.gate.stack, "")
            log.info("trading state from risk", target=target, state=state)

    def want_ticks(self, strategy: str, exchange: str, symbol: str) -> None:
        if strategy not in self.tick_subs[(exchange, symbol)]:
            self.tick_subs[(exchange, symbol)].append(strategy)
        self._watch(exchange, symbol)

    def want_depth(self, strategy: str, exchange: str, symbol: str) -> None:
        subs = self.depth_subs[(exchange, symbol)]
        if strategy not in subs:
            subs.append(strategy)
            if len(subs) == 1 and self._need_depth is not None:
                self._need_depth(exchange, symbol)
        self._watch(exchange, symbol)

    def want_bars(self, strategy: str, exchange: str, symbol: str, tf: str, warmup: int) -> None:
        if tf not in self.builders:
            self.builders[tf] = BarBuilder(self.refdata.calendar, tf)
        subs = self.bar_subs[(exchange, symbol)][tf]
        if strategy not in subs:
            subs.append(strategy)
            self._plans.clear()
        if not (self.started and self.mode == "backtest"):  # a backtest's bars are whole
            self.partial.add((exchange, symbol, tf))
        if self.warm.want(strategy, exchange, symbol, tf, warmup) and self.started:
            self.warm.run()
        self._watch(exchange, symbol)

    def set_timer(self, strategy: str, name: str, every_s: float) -> None:
        every = int(every_s * 1e9)
        self.timers.append(Timer(strategy, name, every, self._now_ns() + every))

    def next_intent_id(self) -> str:
        return f"{self.run_id}-{next(self._intent_ids)}"

    def margins(self) -> SetMargins | None:
        return self._margins

    def now_ns(self) -> int:
        return self._now_ns()

    def now(self) -> datetime:
        return self._now()

    def trading_state(self, strategy: str) -> tuple[str, str]:
        return self.gate.state_of(strategy)

    def ltp(self, exchange: str, symbol: str) -> float:
        return self.last.get((exchange, symbol), 0.0)

    def band(self, strategy: str, exchange: str, symbol: str) -> tuple[float, float] | None:
        """(last price, half the band around it) risk judges ``strategy``'s prices by now;
        None before a first price."""
        last = self.last.get((exchange, symbol), 0.0)
        if last <= 0:
            return None
        band = self._bands(strategy) if self._bands is not None else PriceBand()
        return last, band.half(self.refdata.instrument(exchange, symbol), last)

    def _watch_underlying(self, exchange: str, symbol: str) -> None:
        """An option held: its underlying's price too (its Greeks read it)."""
        try:
            inst = self.refdata.instrument(exchange, symbol)
        except RefDataError:
            return
        if inst.kind in ("CE", "PE"):
            u = self.refdata.underlying(inst.underlying)
            if u.kind == "INDEX":
                self._watch(u.spot_exchange, u.name)

    def _watch(self, exchange: str, symbol: str) -> None:
        if (exchange, symbol) not in self.watched:
            self.watched.add((exchange, symbol))
            self._need_ticks(exchange, symbol)

    # --------------------------------------------------------------- events

    def on_tick(self, tick: wire.Tick) -> None:
        key = (tick.exchange, tick.symbol)
        self.last[key] = tick.ltp
        for name in self.holders.get(key, ()):
            self.contexts[name].mark(tick.exchange, tick.symbol, tick.ltp)
        subs = self.bar_subs.get(key)
        now = self._now_ns() if subs else 0
        for tf, names in subs.items() if subs else ():
            bar = self.builders[tf].on_tick(tick, now)
            if bar is not None:
                self._deliver_bar(bar, names, tick.ts)
        for name in self.tick_subs.get(key, ()):
            ctx = self.contexts[name]
            ctx.origin_ns = tick.ts
            self._call(name, "tick", self.strategies[name].on_tick, tick)
            ctx.origin_ns = 0

    def on_backfill(self, bar: wire.Bar) -> None:
        """A 1-minute bar the feed filled from history after an outage (its ticks never
        came here either). While the feed is still backfilling it waits with the live
        1-minute bars (``set_backfilling``); after, it is handed unless that minute or a
        later one was (a backfill slower than the market: the hole is logged). Longer
        timeframes are built from ticks alone: the bar spanning an outage is made of the
        ticks around it."""
        key = (bar.exchange, bar.symbol)
        names = self.bar_subs.get(key, {}).get(bar.tf)
        if not names:
            return
        if self.backfilling:
            self.held_1m.setdefault(key, []).append(bar)
            return
        if bar.start_ns <= self.last_1m.get(key, -1):
            log.warning("backfilled minute not handed: it or a later one was already",
                        symbol=bar.symbol, start_ns=bar.start_ns)  # fmt: skip
            return
        self._deliver_bar(bar, names, 0)

    def set_backfilling(self, on: bool) -> None:
        """The feed says it is (or is no longer) filling an outage's minutes from history.
        Meanwhile every 1-minute bar waits; when it is done, each instrument's waiting
        bars and the backfilled ones are handed in order, history's copy of a minute
        before the live one (that saw part of it). Held at most ``BACKFILL_HOLD_S``."""
        if on == self.backfilling:
            return
        self.backfilling = on
        if on:
            self._backfill_since = hosttime.monotonic()
            return
        held, self.held_1m = self.held_1m, {}
        for key, bars in held.items():
            by_start: dict[int, wire.Bar] = {}
            for b in bars:
                if b.start_ns not in by_start or b.closed_by == "history":
                    by_start[b.start_ns] = b
            names = self.bar_subs.get(key, {}).get("1m", [])
            for start in sorted(by_start):
                self._deliver_bar(by_start[start], names, 0)

    def on_depth(self, depth: wire.Depth) -> None:
        for name in self.depth_subs.get((depth.exchange, depth.symbol), ()):
            self._call(name, "depth", self.strategies[name].on_depth, depth)

    def on_closed_bar(self, bar: wire.Bar) -> None:
        """A bar that closed elsewhere (a backtest reads bars, not ticks): marks, then the
        strategies subscribed to its timeframe. Bars reach strategies only once closed.

        Called for every bar of a backtest: who is told is worked out once per instrument
        and timeframe (``_bar_plan``), again only after a subscription or a holder
        changed (``_plans``, cleared then)."""
        key = (bar.exchange, bar.symbol)
        close = bar.close
        self.last[key] = close
        plan = self._plans.get((key, bar.tf))
        if plan is None:
            plan = self._bar_plan(key, bar.tf)
        names, subscribers, markers = plan
        for ctx in markers:  # holders that do not take this bar: marked with its close
            ctx.mark(bar.exchange, bar.symbol, close)
        if not names:
            return
        if self.partial or self.warmups or self.time_hooks or self.joined:
            self._deliver_bar(bar, names, bar.start_ns)
        else:
            self._deliver_bar_lean(bar, subscribers, bar.start_ns)

    def bar_contexts(self, key: tuple[str, str], tf: str) -> list[StrategyContext]:
        """The contexts a closed bar of ``key`` at ``tf`` is delivered to, when it is
        delivered straight (no warm-up waiting, no first live bar, no hook timing)."""
        if self.partial or self.warmups or self.time_hooks or self.joined:
            return []
        plan = self._plans.get((key, tf)) or self._bar_plan(key, tf)
        return [ctx for _, ctx, h in plan[1] if not h.quarantined]

    def _bar_plan(self, key: tuple[str, str], tf: str) -> BarPlan:
        """Who a closed bar of ``key`` at ``tf`` reaches: its subscribers (name, context,
        health) and the contexts of the other holders of ``key`` (marked only)."""
        subs = self.bar_subs.get(key)
        names = list(subs.get(tf, ())) if subs else []
        subscribers = [(n, self.contexts[n], self.health[n]) for n in names]
        markers = [self.contexts[n] for n in self.holders.get(key, ()) if n not in names]
        plan = self._plans[(key, tf)] = (names, subscribers, markers)
        return plan

    def poll(self) -> None:
        """Close bars the clock has passed and fire due timers."""
        if self._deferred:
            self._flush_deferred()
        if self.warmups:
            self.warm.run()
        if self.backfilling and hosttime.monotonic() - self._backfill_since > BACKFILL_HOLD_S:
            log.warning("the feed's backfill took too long: live bars go on without it")
            self.set_backfilling(False)
        now = self._now_ns()
        for tf, builder in self.builders.items():
            for bar in builder.close_due(now):
                names = self.bar_subs.get((bar.exchange, bar.symbol), {}).get(tf, [])
                self._deliver_bar(bar, names, 0)
        self.rolls.tick(now)
        for t in self.timers:
            if now >= t.next_ns:
                t.next_ns = now + t.every_ns
                strat = self.strategies[t.strategy]
                self._call(t.strategy, "timer", strat.on_timer, t.name, self._now())

    # ---------------------------------------------------------------- rolls

    def roll_ended(self, strategy: str, roll: PendingRoll) -> None:
        """Both legs of a roll final (``EngineLink``): the roll days's to follow."""
        self.rolls.ended(strategy, roll)

    def move_subscriptions(self, name: str, old: tuple[str, str], new: tuple[str, str]) -> None:
        """A strategy's ticks, depth and bars on ``old`` follow ``new`` (a roll)."""
        ticks = self.tick_subs.get(old)
        if ticks and name in ticks:
            ticks.remove(name)
            self.want_ticks(name, *new)
        depth = self.depth_subs.get(old)
        if depth and name in depth:
            depth.remove(name)
            self.want_depth(name, *new)
        for tf, names in list(self.bar_subs.get(old, {}).items()):
            if name in names:
                names.remove(name)
                self._plans.clear()
                self.warmups.pop((name, *old, tf), None)
                self.want_bars(name, *new, tf, self.contexts[name].moved_bars(old, new, tf))
        self._unwatch_if_unused(old)

    def _unwatch_if_unused(self, key: tuple[str, str]) -> None:
        """Nobody subscribes to or holds ``key`` any more: the engine stops declaring it,
        so the feed stops quoting it (an expiring month after its roll)."""
        if self.tick_subs.get(key) or self.depth_subs.get(key):
            return
        if any(self.bar_subs.get(key, {}).values()):
            return
        if any(self.contexts[n].position(*key) for n in self.holders.get(key, ())):
            return
        self.watched.discard(key)

    def take_up(self, intent: wire.Intent) -> None:
        """A new order the engine had settled as unanswered was approved after all."""
        ctx = self.contexts.get(intent.strategy)
        if ctx is not None and isinstance(intent, wire.PlaceIntent):
            ctx.book.take_up(intent)

    def on_order_update(self, u: wire.OrderUpdate) -> None:
        ctx = self.contexts.get(u.strategy)
        if u.status != "rejected" and u.order_id and self.gate.backoff:
            self.gate.on_accepted(u.strategy)  # risk let an order through: no backoff
        if ctx is not None:
            seen = self._book(u.strategy, "order_update", ctx.book.book_update, u)
            if seen is not _NOT_BOOKED:
                self._call(u.strategy, "order_update", ctx.book.update_hooks, seen)

    def restore(
        self,
        positions: list[wire.PositionSnapshot],
        last_fill_no: int,
        working: Sequence[wire.WorkingOrder] = (),
        day: Day | None = None,
    ) -> list[str]:
        """Seed strategies' books from the router's; fills up to ``last_fill_no`` are in
        them already and will be skipped; orders still working become the strategies'
        open orders again. With the ``day``'s orders and fills, each strategy then does
        what the engine that died may have left undone for fills it never saw (bracket
        exits, OCO siblings). Returns what was restored and done."""
        self.restored_fill_no = last_fill_no
        for w in working:
            ctx = self.contexts.get(w.order.strategy)
            if ctx is not None:
                ctx.book.restore_working(w)
        merged: dict[tuple[str, str, str], tuple[int, float, float]] = {}
        for p in positions:
            if p.strategy not in self.strategies:
                continue
            key = (p.strategy, p.exchange, p.symbol)  # strategies see one net per symbol
            q, cost, realized = merged.get(key, (0, 0.0, 0.0))
            merged[key] = (
                q + p.quantity,
                cost + p.quantity * p.avg_price,
                realized + p.realized_pnl,
            )
        out = []
        for p in positions:
            if p.strategy in self.strategies and p.quantity:
                self.contexts[p.strategy].products[(p.exchange, p.symbol)] = p.product
        for (name, ex, sym), (qty, cost, realized) in merged.items():
            ledger = self.contexts[name].ledger
            ledger.set_qty((ex, sym), qty, cost / qty if qty else 0.0)
            ledger.positions[(ex, sym)].realized = realized
            self.holders[(ex, sym)].add(name)
            self._plans.clear()
            self._watch(ex, sym)
            out.append(f"{name}:{sym}={qty}")
        for name, ctx in self.contexts.items() if day is not None else ():
            assert day is not None  # the loop runs only with one
            mine = [w for w in day.orders if w.order.strategy == name]
            fills = [f for f in day.fills if f.strategy == name]
            try:
                did = ctx.settle_missed(mine, fills)
            except Exception:  # its exits must not stop the engine: a human must look
                log.critical(
                    "ALERT: could not finish bracket duties after a restart",
                    strategy=name,
                    exc_info=True,
                )
                continue
            for what in did:
                log.warning("after the restart: " + what, strategy=name)
            out += [f"{name}: {what}" for what in did]
        return out

    def on_fill(self, f: wire.Fill) -> None:
        ctx = self.contexts.get(f.strategy)
        if f.fill_no <= self.restored_fill_no:
            return  # in the restored snapshot (a republication, or a hole's fill taken
            # late, is the daemon's to sort: ``FillSequence`` gives each fill once)
        if ctx is None:
            return
        held = self.holders[(f.exchange, f.symbol)]
        if f.strategy not in held:
            held.add(f.strategy)
            self._plans.clear()
        self._watch(f.exchange, f.symbol)
        self._watch_underlying(f.exchange, f.symbol)
        # booked (the position), then the engine's duties it brings (a bracket's exits, an
        # OCO sibling's size), then the author's hooks: each step on a fill already booked
        book = ctx.book
        if self._book(f.strategy, "fill", book.book_fill, f) is _NOT_BOOKED:
            return
        ctx.fill_of = _intent_of(f.order_id)  # what the duties and hooks send answers it
        try:
            if self._book(f.strategy, "fill", book.fill_duties, f) is not _NOT_BOOKED:
                self._call(f.strategy, "fill", book.fill_hooks, f)
        finally:
            ctx.fill_of = ""

    def on_risk_event(self, ev: wire.RiskEvent) -> None:
        """Risk's word on one of a strategy's intents: refused (``rejected``), or only its
        closing part approved (``part_rejected``: a reversal whose opening part broke a
        rule; the order is that much smaller, and the strategy's log says why); or a
        trading state set (``state``, ``kill_switch``), which the gate keeps."""
        if ev.kind == "state":
            self.on_trading_state(ev.strategy, ev.action, ev.reason)
        elif ev.kind == "kill_switch":
            self.on_trading_state("*", "active" if ev.action == "off" else "halted", ev.reason)
        elif ev.kind == "rejected":
            self.gate.on_reject(ev.strategy, ev.rule, ev.reason, self._now_ns())
            self.on_risk_reject(ev)
        elif ev.kind == "part_rejected":
            ctx = self.contexts.get(ev.strategy)
            oo = ctx.open_orders.get(ev.intent_id) if ctx else None
            if ctx is None or oo is None:
                return
            oo.quantity = int(ev.value)
            ctx.log.warning("order reduced by risk", intent=ev.intent_id, reason=ev.reason)

    def on_risk_reject(self, ev: wire.RiskEvent) -> None:
        """Risk refused an intent: the strategy sees it as a rejected order update."""
        ctx = self.contexts.get(ev.strategy)
        if ctx is None:
            return
        oo = ctx.open_orders.get(ev.intent_id)
        amend = ctx.amends.get(ev.intent_id)
        if oo is None and amend is None and ev.intent_id not in ctx.rolls:
            return
        target = oo or (ctx.open_orders.get(amend[0]) if amend else None)  # a roll: neither
        self.on_order_update(
            wire.OrderUpdate(
                order_id="",
                intent_id=ev.intent_id,
                strategy=ev.strategy,
                exchange=target.exchange if target else "",
                symbol=target.symbol if target else "",
                action=target.action if target else "BUY",
                quantity=target.quantity if target else 0,
                status="rejected",
                reason=f"risk {ev.rule}: {ev.reason}",
            )
        )

    # ---------------------------------------------------------------- bars

    def _deliver_bar(self, bar: wire.Bar, names: list[str], origin_ns: int) -> None:
        if not (self.partial or self.warmups or self.time_hooks or self.joined):
            self.last.setdefault((bar.exchange, bar.symbol), bar.close)
            contexts, health = self.contexts, self.health
            self._deliver_bar_lean(bar, [(n, contexts[n], health[n]) for n in names], origin_ns)
            return
        if bar.tf == "1m" and not self._minute_in_order(bar):
            return
        if self.partial:
            bar = self.warm.first_live(bar, names)
        self.last.setdefault((bar.exchange, bar.symbol), bar.close)
        warm, warmups = self.warm, self.warmups
        for name in names:
            if warmups and warm.hold(name, bar):
                continue
            if self.joined and warm.handed_already(name, bar):
                continue
            ctx = self.contexts[name]
            ctx.origin_ns, ctx.bar_ns = origin_ns, bar.start_ns
            self._call(name, "bar", ctx.on_bar, bar)
            ctx.origin_ns = ctx.bar_ns = 0

    def _minute_in_order(self, bar: wire.Bar) -> bool:
        """A 1-minute bar goes on now: not while the feed backfills (it waits), and not
        a minute at or before the last one handed (across an outage: once, in order)."""
        key = (bar.exchange, bar.symbol)
        if self.backfilling:
            self.held_1m.setdefault(key, []).append(bar)
            return False
        if bar.start_ns <= self.last_1m.get(key, -1):
            return False
        self.last_1m[key] = bar.start_ns
        return True

    def _deliver_bar_lean(
        self,
        bar: wire.Bar,
        subscribers: list[tuple[str, StrategyContext, Health]],
        origin_ns: int,
    ) -> None:
        """``_deliver_bar`` and ``_call`` in one, for the case a backtest is in on every
        bar: no first live bar, no warm-up pending, no hook timing (a million bars pay
        for each call level); ``subscribers`` as ``_bar_plan`` finds them."""
        for name, ctx, h in subscribers:
            if h.quarantined:
                continue
            ctx.origin_ns, ctx.bar_ns = origin_ns, bar.start_ns
            try:
                ctx.on_bar(bar)
            except Exception as exc:
                self._hook_failed(h, name, "bar", exc)
            else:
                h.in_a_row = 0
            ctx.origin_ns = ctx.bar_ns = 0
        if self._deferred:
            self._flush_deferred()

    # ------------------------------------- the ports of the warm-ups and the roll days

    def call(self, name: str, kind: str, fn: Callable[..., Any], *args: Any) -> None:
        self._call(name, kind, fn, *args)

    def context(self, name: str) -> StrategyContext:
        return self.contexts[name]

    def params(self, name: str) -> Any:
        return self.strategies[name].params

    def strategy(self, name: str) -> BaseStrategy[Any]:
        return self.strategies[name]

    def quarantined(self, name: str) -> bool:
        return bool(self.health[name].quarantined)

    def subscribed(self, name: str) -> set[tuple[str, str]]:
        """The instruments ``name`` takes bars or ticks of."""
        held = {k for k, subs in self.bar_subs.items() for v in subs.values() if name in v}
        return held | {k for k, v in self.tick_subs.items() if name in v}

    def watch(self, exchange: str, symbol: str) -> None:
        self._watch(exchange, symbol)

    def builder(self, tf: str) -> BarBuilder:
        return self.builders[tf]

    def failed(self, name: str) -> None:
        self.health[name].errors += 1

    # ------------------------------------------------------------- dispatch

    def _book(self, name: str, kind: str, fn: Callable[[Any], Any], msg: Any) -> Any:
        """The engine's own bookkeeping of an update or fill (open orders, positions, a
        bracket's exits, an OCO sibling), done for a quarantined strategy too, and outside
        the hook deadline: an alarm meant for a slow hook can never land half-way through
        it. A failure is the strategy's (its bracket's exit, say): counted as a hook's,
        and its hooks do not see that message (returns ``_NOT_BOOKED``)."""
        try:
            return fn(msg)
        except Exception as exc:
            self._hook_failed(self.health[name], name, kind, exc)
            return _NOT_BOOKED

    def _call(self, name: str, kind: str, fn: Callable[..., Any], *args: Any) -> None:
        h = self.health[name]
        if h.quarantined:
            return  # hooks stay off; updates and fills are booked before (``_book``)
        t0 = hosttime.perf_counter_ns() if self.time_hooks else 0
        d = self.deadline
        probe = self.mem_probe
        m0 = probe() if probe is not None else 0
        try:
            if d is None:
                fn(*args)
            else:
                d.arm(name, kind)
                try:
                    fn(*args)
                finally:
                    d.disarm()
        except HookTimeout as exc:
            self._stuck(h, name, kind, exc)
        except Exception as exc:
            self._hook_failed(h, name, kind, exc)
        else:
            h.in_a_row = 0
        if t0:
            h.latency[kind].append(hosttime.perf_counter_ns() - t0)
        if probe is not None:
            h.mem_grew += probe() - m0
        if self._deferred and kind != "order_update":
            self._flush_deferred()

    def release(self, name: str) -> int:
        """Drop what a quarantined strategy allocated: every attribute its own code added
        after it was made (its books are the context's and stay). Objects freed."""
        strat = self.strategies[name]
        for k in set(vars(strat)) - self._own_attrs.get(name, frozenset()):
            delattr(strat, k)
        return gc.collect()

    def _hook_failed(self, h: Health, name: str, kind: str, exc: Exception) -> None:
        h.errors += 1
        h.in_a_row += 1
        h.last_error = f"{kind}: {type(exc).__name__}: {exc}"
        if not h.first_traceback:
            h.first_traceback = traceback.format_exc()
        log.error("strategy hook failed", strategy=name, hook=kind, exc_info=True)
        if h.in_a_row >= self.max_errors:
            self._quarantine(name, f"{h.in_a_row} hook failures in a row, last: {exc!r}")

    def _stuck(self, h: Health, name: str, kind: str, exc: HookTimeout) -> None:
        h.errors += 1
        h.last_error = f"{kind}: stuck: {exc}"
        log.error(
            "ALERT: strategy hook stuck: interrupted, strategy quarantined; the others trade "
            "on and risk keeps managing its positions",
            strategy=name,
            hook=kind,
            reason=str(exc),
            exc_info=True,
        )
        self._quarantine(name, f"its {kind} hook was stuck: {exc}")

    def quarantine(self, name: str, reason: str) -> None:
        """Quarantine a strategy from outside its hooks (one that does not load)."""
        self._quarantine(name, reason)

    def _quarantine(self, name: str, reason: str) -> None:
        h = self.health[name]
        h.quarantined = reason
        ctx = self.contexts[name]
        log.critical(
            "strategy quarantined: hooks off, entries cancelled, protective stops and "
            "positions left for a human",
            strategy=name,
            reason=reason,
            positions={f"{ex}:{s}": q for (ex, s), q in ctx.ledger.net().items() if q},
        )
        try:
            ctx.cancel_all(keep_protective=True)
        except Exception:
            log.error("cancelling a quarantined strategy's orders failed", exc_info=True)

    # --------------------------------------------------------------- status

    def greeks(self, name: str) -> dict[str, dict[str, float]]:
        """A strategy's Greeks per underlying (``options/exposure.py``), for its status."""
        net = self.contexts[name].ledger.net()
        held = [(ex, sym, q) for (ex, sym), q in net.items() if q]
        if not held:
            return {}
        got = book_greeks(self.refdata, held, self.ltp, self._now())
        return {u: g.as_dict() for u, g in sorted(got.items())}

    def stats(self) -> dict[str, Any]:
        out = {}
        for name, ctx in self.contexts.items():
            h = self.health[name]
            lat = {}
            for kind, samples in h.latency.items():
                s = sorted(samples)
                if s:
                    lat[kind] = {
                        "n": len(s),
                        "p50_us": round(s[len(s) // 2] / 1000, 1),
                        "p99_us": round(s[min(len(s) - 1, int(len(s) * 0.99))] / 1000, 1),
                    }
            out[name] = {
                # its parameters as it runs with them (the command layer's confirmation
                # of a change)
                "params": self.strategies[name].params.model_dump(mode="json"),
                "positions": {f"{k[0]}:{k[1]}": q for k, q in ctx.ledger.net().items() if q},
                "greeks": self.greeks(name),
                "pnl": round(self.strategies[name].pnl(), 2),
                "open_orders": len(ctx.open_orders),
                "fills": ctx.fills,
                "hook_errors": h.errors,
                "quarantined": h.quarantined,
                "trading": self.gate.state_of(name)[0],
                "entries_held": h.entries_held,
                "last_error": h.last_error,
                "warming": self.warm.warming(name),
                "hook_latency": lat,
            }
        return out


def _intent_of(order_id: str) -> str:
    """The intent of one of our order ids ("" for an id not ours: an adopted order's)."""
    try:
        return OrderId.parse(order_id).intent
    except ValueError:
        return ""
