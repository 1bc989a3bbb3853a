"""Planted bugs: each a small change to the product's code that one invariant must catch
within the seeds CI runs (``tests/simulation/test_mutations.py`` keeps the list, and
which seed first caught each).

A simulator that never fails proves nothing; one that fails when the code is wrong in the
ways that cost money is the point. Each mutation here is a bug of a kind that has
happened in trading systems (this one's included: ``bar_volume_from_first_tick`` is the
bug the simulator was asked to catch, ``fill_price_from_rounded_average`` one it found):
an order resent after a timeout, a fill dropped, an entry approved while halted, a late
tick reopening a bar. ``planted(name)`` applies one for the duration of a block (in this
process and in the workers it forks) and takes it away after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mutation:
    name: str
    breaks: str  # the invariant that must catch it
    what: str
    apply: Callable[[], Callable[[], None]]  # plants it; returns what takes it away


def _patch(owner: Any, attr: str, new: Any) -> Callable[[], None]:
    old = owner.__dict__[attr] if attr in getattr(owner, "__dict__", {}) else getattr(owner, attr)
    setattr(owner, attr, new)
    return lambda: setattr(owner, attr, old)


def _router_doubles_quantity() -> Callable[[], None]:
    """The router sends twice the quantity risk approved (a lot-size mix-up)."""
    import msgspec

    from mytrading.router.daemon import RouterDaemon

    call = RouterDaemon.__dict__["_call"].__func__

    def bad(lane: Any, item: Any) -> Any:
        jo, target = item
        if jo.order.op == "place":
            jo.order = msgspec.structs.replace(jo.order, quantity=jo.order.quantity * 2)
        return call(lane, (jo, target))

    return _patch(RouterDaemon, "_call", staticmethod(bad))


def _router_resends_on_timeout() -> Callable[[], None]:
    """A reply that never came (a timeout, a proxy's 502) is read as a request that
    never arrived, and sent again: the broker may hold it twice."""
    import dataclasses

    from mytrading.openalgo import orders
    from mytrading.openalgo.replies import classify

    def bad(reply: Any) -> Any:
        fail = classify(reply)
        if fail is not None and fail.ambiguous:
            return dataclasses.replace(fail, transient=True, ambiguous=False)
        return fail

    return _patch(orders, "classify", bad)


def _journal_after_broker_call() -> Callable[[], None]:
    """The router writes an order's ``sent`` after the broker call, not before: a router
    killed in the call restarts without knowing the order went. (The router then finds
    such orders unknown and holds their strategies for a person, who has nothing to find
    wrong: the ``person`` invariant catches it; had it sent them again, ``once`` would.)"""
    from mytrading.orders.state import OrderState
    from mytrading.router.table import OrderTable

    set_ = OrderTable.set

    def bad(self: Any, jo: Any, state: Any, *a: Any, **kw: Any) -> Any:
        if state == OrderState.SENT:  # kept in memory only: the disk learns it later
            jo.state = state
            jo.attempt = kw.get("attempt", jo.attempt)
            return None
        return set_(self, jo, state, *a, **kw)

    return _patch(OrderTable, "set", bad)


def _engine_drops_hole_fills() -> Callable[[], None]:
    """The engine takes only the fill that showed a hole, not the hole's (asked of the
    router): its positions fall short of the router's."""
    from mytrading.engine.daemon import EngineDaemon
    from mytrading.process.base import Daemon

    fills_in_order = Daemon.fills_in_order

    def bad(self: Any, seq: Any, f: Any) -> Any:
        got = fills_in_order(self, seq, f)
        return got[-1:]

    return _patch(EngineDaemon, "fills_in_order", bad)


def _router_forgets_fills_made_while_down() -> Callable[[], None]:
    """A router restarted takes up an order it left in flight as if the broker had filled
    nothing since (or all of it): the fills made while it was down are never booked, its
    positions part from the broker's."""
    from mytrading.openalgo import orders

    recover = orders.OpenAlgoAdapter.recover

    def bad(self: Any, order: Any, broker_id: str, filled: int, avg: float, since_s: float) -> Any:
        got = recover(self, order, broker_id, filled, avg, since_s)
        t = self.tracked.get(got or "")
        if t is not None:
            t.filled, t.status = order.quantity, "complete"
        return got

    return _patch(orders.OpenAlgoAdapter, "recover", bad)


def _risk_approves_while_halted() -> Callable[[], None]:
    """Risk's halted and kill-switch rules pass everything: entries of a halted book go."""
    from mytrading.risk import rules

    kept = tuple(r for r in rules.PRE_TRADE if r is not rules.trading_state)
    return _patch(rules, "PRE_TRADE", kept)


def _risk_ignores_kill_switch() -> Callable[[], None]:
    """The kill switch is not heard: a strategy halted on its own still stops, but with
    the whole stack halted every strategy's entries go."""
    from mytrading.risk import rules

    state = rules.trading_state

    def bad(a: Any) -> Any:
        return None if a.book.states.kill_switch else state(a)

    kept = tuple(bad if r is state else r for r in rules.PRE_TRADE)
    return _patch(rules, "PRE_TRADE", kept)


def _fill_price_from_rounded_average() -> Callable[[], None]:
    """A fill's price taken from the broker's averages, rounded to the paisa as they are,
    never from its trades: an order filled in trades at two prices is booked a little
    off their value (the bug the simulator found on seeds 1 and 30)."""
    from mytrading.openalgo import orders

    def bad(self: Any, t: Any, oid: str, filled: int, px: float, book: Any) -> float:
        return round(px, 2)

    return _patch(orders.OpenAlgoAdapter, "_part_price", bad)


def _late_tick_reopens_bar() -> Callable[[], None]:
    """A tick stamped in a minute already handed out opens that minute again (the bar in
    progress handed at once, to make room), and the feed's last guard (never a minute at
    or before the last one published) is not there: the late minute's bar is handed
    twice. (With the guard in place, the builder's bug alone is masked: the simulator
    saw it reopen minutes and the feed drop them.)"""
    from mytrading.domain.bars import BarBuilder
    from mytrading.feed.daemon import FeedDaemon

    on_tick = BarBuilder.on_tick

    def bad(self: Any, tick: Any, now_ns: int | None = None) -> Any:
        key = (tick.exchange, tick.symbol)
        line = self._lines.get(key)
        t = tick.exch_ns
        if line is None or not t:
            return on_tick(self, tick, now_ns)
        if line.bar is not None and t < line.bar.start_ns:
            closed = self._emit(key, line, line.bar, "data")
            line.handed_end = 0
            on_tick(self, tick, now_ns)
            return closed
        if line.bar is None and t < line.handed_end:
            line.handed_end = 0
        return on_tick(self, tick, now_ns)

    def unguarded(self: Any, bar: Any) -> None:
        self.last_bar.pop((bar.exchange, bar.symbol), None)
        publish(self, bar)

    publish = FeedDaemon._publish_bar
    undo = _patch(BarBuilder, "on_tick", bad), _patch(FeedDaemon, "_publish_bar", unguarded)

    def restore() -> None:
        for u in undo:
            u()

    return restore


def _bar_volume_from_first_tick() -> Callable[[], None]:
    """The bug the simulator was asked to catch: a bar's volume counted from its first
    tick's cumulative volume, so its first trade is lost."""
    from mytrading.domain.bars import BarBuilder

    def bad(self: Any, exchange: str, start: int, before: int, before_t: int, volume: int) -> int:
        return volume

    return _patch(BarBuilder, "_volume_before", bad)


def _risk_books_at_the_rupee() -> Callable[[], None]:
    """Risk books each fill at its price rounded to the rupee: its P&L parts from the
    broker's."""
    import msgspec

    from mytrading.risk.core import RiskCore

    on_fill = RiskCore.on_fill

    def bad(self: Any, f: Any) -> float:
        return on_fill(self, msgspec.structs.replace(f, price=float(round(f.price))))

    return _patch(RiskCore, "on_fill", bad)


def _unknown_never_absent() -> Callable[[], None]:
    """An order whose placement may not have reached the broker is never found absent:
    its strategy stays halted for a person, though the broker certainly has no such
    order."""
    from mytrading.openalgo import orders

    return _patch(orders.OpenAlgoAdapter, "_same_day", lambda self, since_s: False)


MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        Mutation("router_doubles_quantity", "approved", "the router sends twice the quantity",
                 _router_doubles_quantity),
        Mutation("router_resends_on_timeout", "once", "a lost reply's order sent again",
                 _router_resends_on_timeout),
        Mutation("journal_after_broker_call", "person", "the journal written after the call",
                 _journal_after_broker_call),
        Mutation("engine_drops_hole_fills", "fills", "the engine drops a hole's fills",
                 _engine_drops_hole_fills),
        Mutation("router_forgets_fills_made_while_down", "positions",
                 "fills made while the router was down never booked",
                 _router_forgets_fills_made_while_down),
        Mutation("risk_approves_while_halted", "caps", "risk approves entries while halted",
                 _risk_approves_while_halted),
        Mutation("risk_ignores_kill_switch", "kill_switch", "the kill switch lets entries by",
                 _risk_ignores_kill_switch),
        Mutation("fill_price_from_rounded_average", "pnl", "fills priced from rounded averages",
                 _fill_price_from_rounded_average),
        Mutation("late_tick_reopens_bar", "bars", "a late tick reopens a handed bar",
                 _late_tick_reopens_bar),
        Mutation("bar_volume_from_first_tick", "bars", "a bar's first trade's volume lost",
                 _bar_volume_from_first_tick),
        Mutation("risk_books_at_the_rupee", "pnl", "risk books fills at the rupee",
                 _risk_books_at_the_rupee),
        Mutation("unknown_never_absent", "person", "an unknown order never found absent",
                 _unknown_never_absent),
    )
}  # fmt: skip


@contextlib.contextmanager
def planted(name: str) -> Iterator[None]:
    """The mutation ``name`` in force for the block ("" : none)."""
    if not name:
        yield
        return
    if name not in MUTATIONS:
        raise ValueError(f"no mutation {name!r}; there are: {', '.join(MUTATIONS)}")
    undo = MUTATIONS[name].apply()
    try:
        yield
    finally:
        undo()
