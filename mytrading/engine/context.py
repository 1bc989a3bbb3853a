"""``StrategyContext``: the engine's side of one strategy.

The engine owns it and talks only to it: bars and their rings, indicators, positions from
fills, working orders, brackets and OCO pairs, rolls, and every intent the strategy
sends. ``BaseStrategy`` (``engine/strategy.py``) is the author's thin facade over it:
its helpers call in here, and the hooks it defines are what this calls back.

Its parts, composed (each given the context, ``engine/parts.Parts`` naming what it may
use of it): ``OrderBook`` (``engine/order_book.py``: working orders and positions from
what the router reports), ``Brackets`` (``engine/brackets.py``: protective exits and OCO)
and ``Rolls`` (``engine/rolls.py``: a futures roll's two legs). The calls below that
belong to a part hand straight to it.
"""

from __future__ import annotations

import collections
import math
from typing import Any, Literal

import msgspec
import numpy as np
import structlog

from mytrading import domain
from mytrading.domain import Product
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import RefData
from mytrading.engine.brackets import Brackets
from mytrading.engine.indicator_set import AheadFeed, Bound, make
from mytrading.engine.order_book import OrderBook
from mytrading.engine.parts import EngineLink, Hooks, OpenOrder, PendingRoll, PositionView
from mytrading.engine.rolls import Rolls
from mytrading.messaging import wire

BarKey = tuple[str, str, str]  # (exchange, symbol, timeframe)


class StrategyContext:
    def __init__(
        self,
        strategy: Hooks,
        refdata: RefData,
        link: EngineLink,
        bar_history: int,
        uses_on_data: bool,
    ) -> None:
        self.strategy = strategy
        self.name = strategy.name
        self.refdata = refdata
        self.link = link
        self.log: Any = structlog.get_logger("strategy").bind(strategy=strategy.name)
        self.bar_history = max(bar_history, 1)
        self.ledger: Ledger[tuple[str, str]] = Ledger()  # (exchange, symbol), from fills
        self.open_orders: dict[str, OpenOrder] = {}  # by intent id
        self.fills = 0
        self.warming_up = False
        self.origin_ns = 0  # ts of the event being handled: traced into intents
        self.bar_ns = 0  # the start of the bar ``on_bar`` is handling: carried by intents
        self.fill_of = ""  # the intent whose fill is being handled: carried by intents
        self.rings: dict[BarKey, collections.deque[wire.Bar]] = {}
        self.primary: BarKey | None = None  # the first bar subscription
        self.indicators: dict[str, tuple[BarKey | None, Bound]] = {}
        self.indicator_specs: dict[str, tuple[str, dict[str, Any]]] = {}  # to rebuild
        # subscription -> the indicators it feeds (or their feeds, ahead of a backtest's bars)
        self.fed: dict[BarKey, list[Bound | AheadFeed]] = {}
        self._ahead: dict[BarKey, list[Bound | AheadFeed]] = {}  # fed's own, while fed ahead
        self.warmup_of: dict[BarKey, int] = {}  # subscription -> its warm-up
        self.brackets: dict[str, wire.BracketSpec] = {}  # by entry intent id
        self.oco: dict[str, str] = {}  # exit intent -> its sibling
        self.amends: dict[str, tuple[str, dict[str, Any]]] = {}  # amend intent -> target
        self.protective: set[str] = set()  # bracket exits: kept working in quarantine
        self.engine_orders = False  # the engine's own orders pass even in quarantine
        self.products: dict[tuple[str, str], Product] = {}  # the product each position is in
        self.rolls: dict[str, PendingRoll] = {}  # rolls in flight, by intent id
        self.rolls_ended: list[PendingRoll] = []  # both legs final: on_roll is due
        # on_data is the MyTrading style's; a strategy without one is not called per bar
        self.uses_on_data = uses_on_data
        self.book = OrderBook(self)
        self.exits = Brackets(self)
        self.roller = Rolls(self)

    # ------------------------------------------------------------- the parts' calls

    def working_order(self, intent_id: str, what: str) -> OpenOrder:
        return self.book.working_order(intent_id, what)

    def bracket(
        self,
        exchange: str,
        symbol: str,
        action: str,
        quantity: int,
        entry_trigger: float | None = None,
        entry_buffer: float = 3.0,
        stop_trigger: float | None = None,
        stop_distance: float | None = None,
        stop_pct: float | None = None,
        stop_buffer: float = 3.0,
        target: float | None = None,
        units: Literal["rupees", "ticks"] = "rupees",
        product: str = "MIS",
        sizing: str = "",
        sizing_per_lot: float = 0.0,
    ) -> str:
        return self.exits.bracket(
            exchange, symbol, action, quantity, entry_trigger, entry_buffer, stop_trigger,
            stop_distance, stop_pct, stop_buffer, target, units, product, sizing, sizing_per_lot,
        )  # fmt: skip

    def protect(self, br: wire.BracketSpec, f: wire.Fill) -> None:
        self.exits.protect(br, f)

    def unprotected(self, stop: OpenOrder, reason: str) -> None:
        self.exits.unprotected(stop, reason)

    def oco_done(self, intent_id: str, status: str) -> None:
        self.exits.oco_done(intent_id, status)

    def settle_missed(self, orders: list[wire.WorkingOrder], fills: list[wire.Fill]) -> list[str]:
        return self.exits.settle_missed(orders, fills)

    def roll(self, exchange: str, symbol: str, to: str = "") -> str:
        return self.roller.roll(exchange, symbol, to)

    def roll_leg_ended(self, intent_id: str, status: str) -> None:
        self.roller.roll_leg_ended(intent_id, status)

    def roll_refused(self, rid: str) -> list[str]:
        return self.roller.roll_refused(rid)

    # ------------------------------------------------------------- bars, indicators

    def want_bars(self, exchange: str, symbol: str, tf: str, warmup: int) -> None:
        key = (exchange, symbol, tf)
        self.rings.setdefault(key, collections.deque(maxlen=self.bar_history))
        self.warmup_of[key] = warmup
        if self.primary is None:
            self.primary = key

    def bars(self, exchange: str, symbol: str, tf: str) -> list[wire.Bar]:
        return list(self.rings.get((exchange, symbol, tf), ()))

    def add_indicator(self, label: str, key: BarKey | None, kind: str, **params: Any) -> None:
        if label in self.indicators:
            raise ValueError(f"indicator {label!r} is already registered")
        self.indicators[label] = (key, make(kind, **params))
        self.indicator_specs[label] = (kind, params)
        self.finish_ahead()
        self.fed.clear()

    def _feeds(self, key: BarKey) -> list[Bound | AheadFeed]:
        """The indicators one subscription's bars feed, found once (``fed``)."""
        inds = self.fed.get(key)
        if inds is None:
            inds = self.fed[key] = [
                ind for k, ind in self.indicators.values() if (k or self.primary) == key
            ]
        return inds

    def ahead(self, key: BarKey, inputs: np.ndarray, closes: list[float]) -> None:
        """A backtest's next bars of ``key`` are known: the indicators of their close that
        can run over them do so now (``AheadFeed``), and each bar sets their values.
        ``finish_ahead`` (the backtest's, at the batch's end; or a change of the
        indicators) brings their streaming states up to the bars given."""
        self.finish_ahead(key)
        inds = self._feeds(key)
        if not any(isinstance(ind, Bound) and ind.core is not None for ind in inds):
            return
        feeds: list[Bound | AheadFeed] = [
            AheadFeed(ind, inputs, closes) if isinstance(ind, Bound) and ind.core else ind
            for ind in inds
        ]
        self._ahead[key] = inds
        self.fed[key] = feeds

    def finish_ahead(self, key: BarKey | None = None) -> None:
        """Bring the indicators fed ahead (of ``key``, or of every subscription) up to
        the bars given, and give them back their streaming updates."""
        for k in [key] if key is not None else list(self._ahead):
            inds = self._ahead.pop(k, None)
            if inds is None:
                continue
            for feed in self.fed.get(k, ()):
                if isinstance(feed, AheadFeed):
                    feed.finish()
            self.fed[k] = inds

    def indicator_value(self, name: str, output: str | None = None) -> float:
        try:
            return self.indicators[name][1].value(output)
        except KeyError:
            if name not in self.indicators:
                raise KeyError(f"no indicator {name!r}; have {list(self.indicators)}") from None
            raise

    def on_bar(self, bar: wire.Bar) -> None:
        """A closed bar: its ring, the indicators it feeds, the mark, then the strategy's
        ``on_bar`` and (MyTrading style) ``on_data`` and ``on_signal``."""
        key = (bar.exchange, bar.symbol, bar.tf)
        ring = self.rings.get(key)
        if ring is not None:
            ring.append(bar)
        inds = self.fed.get(key)
        if inds is None:  # which indicators this subscription feeds, found once
            inds = self._feeds(key)
        for ind in inds:
            ind.update(bar)
        p = self.ledger.positions.get(key[:2])
        if p is not None:
            p.ltp = bar.close  # Ledger.mark, inline: once per bar
        strategy = self.strategy
        strategy.on_bar(bar)
        if self.uses_on_data and (key == self.primary or not self.indicators):
            signal = strategy.on_data(bar)
            if signal is not None:
                strategy.on_signal(signal, bar)

    def moved_bars(self, old: tuple[str, str], new: tuple[str, str], tf: str) -> int:
        """A bar subscription moves to another contract (a roll): a fresh ring, the
        indicators it fed rebuilt empty (the warm-up refills both); returns the warm-up
        the subscription asked for."""
        self.finish_ahead()
        okey: BarKey = (old[0], old[1], tf)
        nkey: BarKey = (new[0], new[1], tf)
        self.rings.pop(okey, None)
        self.rings[nkey] = collections.deque(maxlen=self.bar_history)
        primary = self.primary
        if primary == okey:
            self.primary = nkey
        for label, (k, _) in list(self.indicators.items()):
            if (k or primary) == okey:
                kind, params = self.indicator_specs[label]
                self.indicators[label] = (nkey if k else None, make(kind, **params))
        self.fed.clear()
        return self.warmup_of.pop(okey, 0)

    def mark(self, exchange: str, symbol: str, ltp: float) -> None:
        if not math.isnan(ltp):
            self.ledger.mark((exchange, symbol), ltp)
            self.exits.on_mark(exchange, symbol)  # stops short of where meant move out

    # --------------------------------------------------------------- positions

    def position(self, exchange: str, symbol: str) -> int:
        p = self.ledger.positions.get((exchange, symbol))
        return p.qty if p else 0

    def working(self, exchange: str, symbol: str) -> int:
        """Signed quantity of this instrument still working in open orders."""
        if not self.open_orders:
            return 0
        return sum(
            o.signed_remaining
            for o in self.open_orders.values()
            if o.exchange == exchange and o.symbol == symbol
        )

    def position_view(self, exchange: str, symbol: str) -> PositionView:
        p = self.ledger.positions.get((exchange, symbol))
        if p is None:
            return PositionView(exchange, symbol, 0, 0.0, 0.0, 0.0, 0.0)
        return PositionView(exchange, symbol, p.qty, p.avg, p.realized, p.unrealized(), p.ltp)

    def today(self) -> Any:
        return self.link.now().date()

    def lot_size(self, exchange: str, symbol: str) -> int:
        return self.refdata.instrument(exchange, symbol).lot_size

    # ------------------------------------------------------------------ orders

    def order(
        self,
        action: object,
        exchange: object,
        symbol: object,
        quantity: object,
        pricetype: object = "MARKET",
        product: object = "MIS",
        price: object = 0.0,
        trigger_price: object = 0.0,
        sizing: str = "",
        link: wire.OrderLink | None = None,
        intent_id: str = "",
        sizing_per_lot: object = 0.0,
    ) -> str:
        """A new order: checked at the call (every value the wire would refuse is refused
        here, by name, with the choices), sent, and kept as working until the router says
        otherwise. The author's values are taken as ``object``: the checks below say what
        is wrong with one, where a typed parameter of the compiled build would refuse it
        with "float object expected"."""
        act = domain.action(action)
        ex = domain.exchange(exchange)
        sym = domain.symbol(symbol)
        qty = domain.quantity(quantity)
        kind = domain.price_type(pricetype)
        prod = domain.product(product)
        px = domain.price(price)
        trig = domain.price(trigger_price, "trigger_price")
        if sizing and qty:
            raise ValueError(f"{act} {sym}: give a quantity or a sizing, not both")
        if qty <= 0 and not sizing:
            raise ValueError(f"{act} {sym}: quantity must be positive, got {qty}")
        eng = self.link
        intent_id = self.send(
            wire.PlaceIntent(
                intent_id=intent_id or ("" if self.warming_up else eng.next_intent_id()),
                decided_ns=eng.now_ns(),
                strategy=self.name,
                exchange=ex,
                symbol=sym,
                action=act,
                quantity=qty,
                pricetype=kind,
                product=prod,
                price=px,
                trigger_price=trig,
                origin_ns=self.origin_ns,
                sizing=sizing,
                sizing_per_lot=domain.price(sizing_per_lot, "sizing_per_lot"),
                link=link,
            )
        )
        if intent_id:
            self.open_orders[intent_id] = OpenOrder(
                "", intent_id, ex, sym, act, qty, "new", kind, px, trig, prod
            )
        return intent_id

    def send(self, intent: wire.Intent) -> str:
        """Hand one intent to the engine; "" when none can go out (warm-up, quarantine).
        An intent without an id gets the engine's next one; one with an id took it from
        the engine beforehand (an OCO pair names each other)."""
        if self.warming_up:
            self.log.warning(
                "order ignored during warm-up", symbol=intent.symbol, action=intent.action
            )
            return ""
        if (
            not intent.intent_id
            or not intent.decided_ns
            or (self.bar_ns and not intent.bar_ns)
            or (self.fill_of and not intent.fill_of)
        ):
            intent = msgspec.structs.replace(
                intent,
                intent_id=intent.intent_id or self.link.next_intent_id(),
                decided_ns=intent.decided_ns or self.link.now_ns(),
                bar_ns=intent.bar_ns or self.bar_ns,
                fill_of=intent.fill_of or self.fill_of,
            )
        ref = getattr(intent, "ref_intent_id", "")
        protective = self.engine_orders or (ref != "" and ref in self.protective)
        return intent.intent_id if self.link.submit(self.name, intent, protective) else ""

    def modify(
        self,
        intent_id: str,
        quantity: int | None = None,
        price: float | None = None,
        trigger_price: float | None = None,
        pricetype: str | None = None,
    ) -> str:
        o = self.working_order(intent_id, "modify")
        qty = o.quantity if quantity is None else domain.quantity(quantity)
        px = o.price if price is None else domain.price(price)
        trig = o.trigger_price if trigger_price is None else domain.price(trigger_price)
        kind = o.pricetype if pricetype is None else domain.price_type(pricetype)
        fields: dict[str, Any] = {
            "quantity": qty,
            "price": px,
            "trigger_price": trig,
            "pricetype": kind,
        }
        amend = self.send(
            wire.AmendIntent(
                intent_id="",
                strategy=self.name,
                exchange=o.exchange,
                symbol=o.symbol,
                action=o.action,
                quantity=qty,
                pricetype=kind,
                product=o.product,
                price=px,
                trigger_price=trig,
                origin_ns=self.origin_ns,
                ref_intent_id=intent_id,
            )
        )
        if amend:
            self.amends[amend] = (intent_id, fields)
        return amend

    def cancel(self, intent_id: str) -> str:
        o = self.working_order(intent_id, "cancel")
        return self.send(
            wire.CancelIntent(
                intent_id="",
                strategy=self.name,
                exchange=o.exchange,
                symbol=o.symbol,
                action=o.action,
                quantity=o.quantity,
                product=o.product,
                origin_ns=self.origin_ns,
                ref_intent_id=intent_id,
            )
        )

    def cancel_all(
        self, exchange: str | None = None, symbol: str | None = None, keep_protective: bool = False
    ) -> list[str]:
        return [
            self.cancel(i)
            for i, o in list(self.open_orders.items())
            if (symbol is None or o.symbol == symbol)
            and (exchange is None or o.exchange == exchange)
            and not (keep_protective and i in self.protective)
        ]
