"""The runner's side of futures roll-over (``engine/rolls.py`` is the strategy's): which
futures of the rolling strategies are due, checked every ``CHECK_S`` of market time; a
held one rolls (``BaseStrategy.roll``: one intent risk judges as a pair), a watched one
without a position just moves; when a roll's two legs are final, the strategy's data
follows the new contract and ``on_roll`` tells it. A part the runner composes
(``RollPorts``: what it asks of the runner)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import structlog

from mytrading.engine.context import StrategyContext
from mytrading.engine.parts import PendingRoll
from mytrading.engine.rolls import CHECK_S, NS, RETRY_S, due, next_contract
from mytrading.engine.strategy import BaseStrategy

log = structlog.get_logger("engine")


class RollPorts(Protocol):
    """What the roll days asks of the runner that composes it."""

    def call(self, name: str, kind: str, fn: Callable[..., Any], *args: Any) -> None:
        """A strategy's hook, under the runner's deadline and error counting."""
        ...

    def context(self, name: str) -> StrategyContext: ...

    def strategy(self, name: str) -> BaseStrategy[Any]: ...

    def quarantined(self, name: str) -> bool: ...

    def subscribed(self, name: str) -> set[tuple[str, str]]:
        """The instruments the strategy takes bars or ticks of."""
        ...

    def ltp(self, exchange: str, symbol: str) -> float: ...

    def watch(self, exchange: str, symbol: str) -> None:
        """Have the feed quote it (a roll's new leg must be priced for risk)."""
        ...

    def move_subscriptions(self, name: str, old: tuple[str, str], new: tuple[str, str]) -> None:
        """The strategy's ticks, depth and bars on ``old`` follow ``new``."""
        ...


class RollDays:
    """The runner's side of the roll days: which futures of its rolling strategies are
    due (checked every ``CHECK_S`` of market time), the roll or the move each gets, and a
    finished roll's data moved and told to the strategy (``on_roll``)."""

    def __init__(self, ports: RollPorts) -> None:
        self.ports = ports
        self.rolling: list[str] = []  # strategies with ``roll_days``
        self._check_ns = 0  # market time of the next check
        self._tried: dict[tuple[str, str, str], int] = {}  # (strategy, ex, sym) -> ns

    def add(self, name: str) -> None:
        self.rolling.append(name)

    def remove(self, name: str) -> None:
        """A strategy gone from the engine (disabled): no roll of its any more."""
        if name in self.rolling:
            self.rolling.remove(name)
        for key in [k for k in self._tried if k[0] == name]:
            del self._tried[key]

    def tick(self, now: int) -> None:
        """The runner's timer pass: a check when one is due."""
        if self.rolling and now >= self._check_ns:
            self._check_ns = now + CHECK_S * NS
            self.check(now)

    def check(self, now: int) -> None:
        """Every future a rolling strategy holds or watches that is due: a position
        rolls, a watched contract with none moves."""
        p = self.ports
        for name in self.rolling:
            ctx = p.context(name)
            if p.quarantined(name) or ctx.warming_up:
                continue
            today = ctx.today()
            n = p.strategy(name).params.roll_days
            held = {k for k, pos in ctx.ledger.positions.items() if pos.qty}
            for ex, sym in sorted(held | p.subscribed(name)):
                if not due(ctx.refdata, ex, sym, today, n) or ctx.working(ex, sym):
                    continue
                new = next_contract(ctx.refdata, ex, sym, today, n)
                if ctx.position(ex, sym) == 0:
                    p.call(name, "roll", self.move, name, (ex, sym), (ex, new), True)
                    continue
                tried = self._tried.get((name, ex, sym), -(10**19))
                if now - tried < RETRY_S * NS or ctx.working(ex, new):
                    continue
                if p.ltp(ex, new) <= 0:  # risk must be able to value the new leg
                    p.watch(ex, new)
                    continue
                self._tried[(name, ex, sym)] = now
                p.call(name, "roll", p.strategy(name).roll, ex, sym, new)

    def ended(self, strategy: str, roll: PendingRoll) -> None:
        """Both legs of a roll are final: said, and the data moves if the position did."""
        ctx = self.ports.context(strategy)
        ok = all(s == "complete" for s in roll.ended.values())
        moved = ctx.position(*roll.old) == 0 or ctx.position(*roll.new) != 0
        (log.info if ok else log.warning)(
            "roll " + ("done" if ok else "not completed"),
            strategy=strategy,
            old=roll.old[1],
            new=roll.new[1],
            legs=roll.ended,
            position_old=ctx.position(*roll.old),
            position_new=ctx.position(*roll.new),
        )
        if moved:
            self.move(strategy, roll.old, roll.new, ok)

    def move(self, name: str, old: tuple[str, str], new: tuple[str, str], ok: bool) -> None:
        """A strategy's subscriptions on ``old`` follow ``new``, then ``on_roll``."""
        self.ports.move_subscriptions(name, old, new)
        self.ports.strategy(name).on_roll(old, new, ok)
