"""What a strategy's context and its parts (order books, brackets, rolls) share: the
values they keep (``OpenOrder``, ``PendingRoll``, ``PositionView``), what they need from
the engine (``EngineLink``) and from the strategy (``Hooks``), and ``Parts``: the
attributes and calls each part may use, all provided by ``StrategyContext``
(``engine/context.py``), declared once so the type checker follows a part's calls into
the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import msgspec

from mytrading.domain import Action, PriceType, Product
from mytrading.domain.bands import PriceBand
from mytrading.domain.ids import OrderId
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import Instrument, RefData
from mytrading.messaging import wire
from mytrading.orders.state import whole_status

Sym = tuple[str, str]  # (exchange, symbol)


@dataclass
class OpenOrder:
    order_id: str
    intent_id: str
    exchange: str
    symbol: str
    action: Action
    quantity: int
    status: str
    pricetype: PriceType = "MARKET"
    price: float = 0.0
    trigger_price: float = 0.0
    product: Product = "MIS"
    filled_qty: int = 0
    avg_price: float = 0.0
    # risk split it into child orders: their latest (status, filled, avg) by order id
    children: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    parts: int = 1

    def merge(self, u: wire.OrderUpdate) -> wire.OrderUpdate:
        """One update of a child order -> the update of the whole order it belongs to:
        filled quantities add up; its status is ``orders/state.whole_status``."""
        self.parts = u.parts
        self.children[u.order_id] = (u.status, u.filled_qty, u.avg_price)
        kids = self.children.values()
        filled = sum(f for _, f, _ in kids)
        avg = sum(f * a for _, f, a in kids) / filled if filled else 0.0
        status = whole_status([s for s, _, _ in kids], self.parts, filled)
        return msgspec.structs.replace(
            u,
            order_id=str(OrderId.parse(u.order_id).whole),
            quantity=self.quantity,
            status=status,
            filled_qty=filled,
            avg_price=round(avg, 2),
            part=0,
        )

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_qty

    @property
    def signed_remaining(self) -> int:
        return self.remaining if self.action == "BUY" else -self.remaining


@dataclass
class PendingRoll:
    old: Sym
    new: Sym
    legs: tuple[str, str]  # intent ids of the close and the open order
    ended: dict[str, str] = field(default_factory=dict)  # leg -> final status


@dataclass(frozen=True)
class PositionView:
    exchange: str
    symbol: str
    quantity: int
    avg_price: float
    realized: float
    unrealized: float
    ltp: float


class SetMargins(Protocol):
    """Risk's margin table as a strategy that sizes a multi-leg set sees it
    (``risk/margin.MarginTable``, given by the process; the engine imports no risk code)."""

    def set_need(
        self, legs: Sequence[tuple[Instrument, str, int, float]], day: date, product: str = ...
    ) -> float: ...


class BandOf(Protocol):
    """A strategy's limits as the engine reads them: the price band risk holds its
    prices to (``risk/limits.Limits``)."""

    def band(self) -> PriceBand: ...


class LimitsOf(Protocol):
    """Risk's limits by strategy (``risk/limits.LimitBook``, given by the process)."""

    def of(self, book: str) -> BandOf: ...


class EngineLink(Protocol):
    """What a strategy's context needs from the engine that runs it."""

    def margins(self) -> SetMargins | None:
        """The margin table risk sizes by (the process's configuration), for a strategy
        that sizes a multi-leg set itself; None where there is none."""
        ...

    def next_intent_id(self) -> str:
        """Unique across every strategy of this engine run (risk refuses a repeat)."""
        ...

    def submit(self, strategy: str, intent: wire.Intent, protective: bool) -> bool:
        """Send an intent; False if refused (a quarantined strategy may only cancel, and
        the engine may still place and manage a bracket's protective exits)."""
        ...

    def want_ticks(self, strategy: str, exchange: str, symbol: str) -> None: ...

    def want_depth(self, strategy: str, exchange: str, symbol: str) -> None: ...

    def want_bars(
        self, strategy: str, exchange: str, symbol: str, tf: str, warmup: int
    ) -> None: ...

    def set_timer(self, strategy: str, name: str, every_s: float) -> None: ...

    def roll_ended(self, strategy: str, roll: PendingRoll) -> None:
        """Both orders of a roll are final: move the strategy's data, call ``on_roll``."""
        ...

    def now_ns(self) -> int: ...

    def now(self) -> datetime: ...

    def trading_state(self, strategy: str) -> tuple[str, str]:
        """(state, why) as risk holds it for ``strategy`` (the stack's counted)."""
        ...

    def ltp(self, exchange: str, symbol: str) -> float: ...

    def band(self, strategy: str, exchange: str, symbol: str) -> tuple[float, float] | None:
        """(last price, half the price band around it) that risk judges ``strategy``'s
        prices by now; None before a first price."""
        ...

    @property
    def mode(self) -> str:
        """live, paper, dry_run or backtest."""
        ...


class Hooks(Protocol):
    """What the context calls back: the author's hooks (``BaseStrategy``'s)."""

    params: Any

    @property
    def name(self) -> str: ...  # a class attribute of the author's class

    def on_bar(self, bar: wire.Bar) -> None: ...

    def on_data(self, bar: wire.Bar) -> Any: ...

    def on_signal(self, signal: Any, bar: wire.Bar) -> None: ...

    def on_order_update(self, update: wire.OrderUpdate) -> None: ...

    def on_fill(self, fill: wire.Fill) -> None: ...

    def on_position(self, position: PositionView) -> None: ...


class Parts(Protocol):
    """What the context's parts (``OrderBook``, ``Brackets``, ``Rolls``) use of it: each
    part is given the context (``StrategyContext`` provides every one of these) and
    reaches shared state and the other parts' duties through it, nothing else."""

    strategy: Hooks
    name: str
    refdata: RefData
    link: EngineLink
    log: Any
    ledger: Ledger[tuple[str, str]]
    open_orders: dict[str, OpenOrder]
    fills: int
    brackets: dict[str, wire.BracketSpec]
    oco: dict[str, str]
    amends: dict[str, tuple[str, dict[str, Any]]]
    protective: set[str]
    engine_orders: bool
    origin_ns: int
    products: dict[tuple[str, str], Product]
    rolls: dict[str, PendingRoll]
    rolls_ended: list[PendingRoll]

    def order(
        self,
        action: str,
        exchange: str,
        symbol: str,
        quantity: int,
        pricetype: str = "MARKET",
        product: str = "MIS",
        price: float = 0.0,
        trigger_price: float = 0.0,
        sizing: str = "",
        link: wire.OrderLink | None = None,
        intent_id: str = "",
        sizing_per_lot: float = 0.0,
    ) -> str: ...

    def send(self, intent: wire.Intent) -> str: ...

    def modify(
        self,
        intent_id: str,
        quantity: int | None = None,
        price: float | None = None,
        trigger_price: float | None = None,
        pricetype: str | None = None,
    ) -> str: ...

    def cancel(self, intent_id: str) -> str: ...

    def position(self, exchange: str, symbol: str) -> int: ...

    def working(self, exchange: str, symbol: str) -> int: ...

    def position_view(self, exchange: str, symbol: str) -> PositionView: ...

    def lot_size(self, exchange: str, symbol: str) -> int: ...

    def today(self) -> date: ...

    # the brackets part's duties, as the order book asks them
    def protect(self, br: wire.BracketSpec, f: wire.Fill) -> None: ...

    def unprotected(self, stop: OpenOrder, reason: str) -> None: ...

    def oco_done(self, intent_id: str, status: str) -> None: ...

    # the rolls part's
    def roll_leg_ended(self, intent_id: str, status: str) -> None: ...

    def roll_refused(self, rid: str) -> list[str]: ...
