"""``BaseStrategy``: the one class a strategy author subclasses.

A strategy declares a ``name``, a ``Params`` model (pydantic, with defaults; overridden per
strategy by ``MT_STRATEGY_PARAMS``), subscribes to ticks or bars in ``on_start`` and reacts
in its hooks. Hooks take one event argument; new hooks may be added to this class later
with a no-op default, so existing strategies keep working.

Orders go out through ``buy``/``sell``/``target_position``; each call becomes an
``OrderIntent`` that the risk daemon must approve before the router sees it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from mytrading import wire
from mytrading.refdata import RefData, future_symbol


class StrategyParams(BaseModel):
    """Base of every strategy's parameters: unknown keys are an error, not a silent typo."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class OpenOrder:
    order_id: str
    intent_id: str
    exchange: str
    symbol: str
    action: str
    quantity: int
    status: str
    filled_qty: int = 0


@dataclass
class StrategyState:
    """What the engine knows about one strategy: positions from its fills, its open orders."""

    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)  # by intent id
    realized: float = 0.0
    fills: int = 0


class BaseStrategy:
    name: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def __init__(
        self,
        params: StrategyParams,
        refdata: RefData,
        submit: Callable[[wire.OrderIntent], None],
        subscribe: Callable[[str], None],
        now: Callable[[], object],
        run_id: str,
    ) -> None:
        self.params = params
        self.refdata = refdata
        self.state = StrategyState()
        self._submit = submit
        self._subscribe = subscribe
        self._now = now
        self._ids = itertools.count(1)
        self._run_id = run_id
        self._origin_ns = 0  # ts of the event being handled: traced into intents

    # ------------------------------------------------------------------ hooks

    def on_start(self) -> None: ...

    def on_tick(self, tick: wire.Tick) -> None: ...

    def on_bar(self, bar: wire.Bar) -> None: ...

    def on_order_update(self, update: wire.OrderUpdate) -> None: ...

    def on_fill(self, fill: wire.Fill) -> None: ...

    def on_stop(self) -> None: ...

    # -------------------------------------------------------------- subscriptions

    def subscribe_ticks(self, exchange: str, symbol: str) -> None:
        self.refdata.instrument(exchange, symbol)  # fail early on an unknown symbol
        self._subscribe(wire.exact(wire.tick_topic(exchange, symbol)))

    def subscribe_bars(self, exchange: str, symbol: str, tf: str = "1m") -> None:
        self.refdata.instrument(exchange, symbol)
        self._subscribe(wire.exact(wire.bar_topic(tf, exchange, symbol)))

    # ------------------------------------------------------------------ helpers

    def now(self) -> object:
        """Market time, timezone-aware (Asia/Kolkata)."""
        return self._now()

    def near_future(self, underlying: str) -> tuple[str, str]:
        """(exchange, symbol) of the near-month future of an index."""
        u = self.refdata.underlying(underlying)
        expiry = self.refdata.calendar.near_future_expiry(u, self.now().date())  # type: ignore[attr-defined]
        return u.fo_exchange, future_symbol(underlying, expiry)

    def lot_size(self, exchange: str, symbol: str) -> int:
        return self.refdata.instrument(exchange, symbol).lot_size

    def position(self, exchange: str, symbol: str) -> int:
        return self.state.positions.get((exchange, symbol), 0)

    def has_open_orders(self, symbol: str | None = None) -> bool:
        return any(symbol is None or o.symbol == symbol for o in self.state.open_orders.values())

    def buy(self, exchange: str, symbol: str, quantity: int, **kw: object) -> str:
        return self._order("BUY", exchange, symbol, quantity, **kw)

    def sell(self, exchange: str, symbol: str, quantity: int, **kw: object) -> str:
        return self._order("SELL", exchange, symbol, quantity, **kw)

    def target_position(self, exchange: str, symbol: str, target: int, **kw: object) -> str | None:
        """Trade the difference between the target and the current net position."""
        diff = target - self.position(exchange, symbol)
        if diff == 0:
            return None
        return self._order("BUY" if diff > 0 else "SELL", exchange, symbol, abs(diff), **kw)

    def _order(
        self,
        action: str,
        exchange: str,
        symbol: str,
        quantity: int,
        pricetype: str = "MARKET",
        product: str = "MIS",
        price: float = 0.0,
        trigger_price: float = 0.0,
    ) -> str:
        intent_id = f"{self._run_id}-{next(self._ids)}"
        intent = wire.OrderIntent(
            intent_id=intent_id,
            strategy=self.name,
            exchange=exchange,
            symbol=symbol,
            action=action,
            quantity=quantity,
            pricetype=pricetype,
            product=product,  # type: ignore[arg-type]
            price=price,
            trigger_price=trigger_price,
            origin_ns=self._origin_ns,
        )
        self.state.open_orders[intent_id] = OpenOrder(
            "", intent_id, exchange, symbol, action, quantity, "new"
        )
        self._submit(intent)
        return intent_id
