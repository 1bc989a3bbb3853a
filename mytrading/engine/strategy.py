"""``BaseStrategy``: the one class a strategy author subclasses.

A strategy declares a ``name`` and its parameters' model (pydantic, with defaults,
overridden by ``config/strategies.toml`` and then by ``MT_STRATEGY_PARAMS``) as the type
argument: ``class Sma(BaseStrategy[SmaParams])`` makes ``self.params`` a ``SmaParams`` for
the type checker and sets ``Params`` (an explicit ``Params = ...`` still works), subscribes
to ticks or bars in ``on_start`` (or ``initialize``) and reacts in its hooks. Every hook has a no-op
default, so hooks added later do not break existing strategies.

Two styles work, and can be mixed:

* event hooks (freqtrade / Nautilus style): ``on_bar`` and friends call the order helpers;
* MyTrading style: ``initialize()`` registers indicators with ``add_indicator``,
  ``on_data(bar)`` reads them with ``get_indicator_value`` and returns
  ``create_signal("BUY", confidence=0.8)``, which ``on_signal`` turns into an order.

Every order helper makes an intent (``wire.Intent``: place, amend, cancel or roll); the
risk daemon must approve it before the router sees it. This class is the author's
facade: hooks to override and helpers to call.
The state behind it (positions from fills, working orders, brackets, rolls, bar rings,
indicators) is the engine's, in ``self.context`` (``StrategyContext``, engine/context.py);
the engine talks to the context, and the properties here read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    TypedDict,
    TypeVar,
    Unpack,
    get_args,
    get_origin,
    overload,
)

from pydantic import BaseModel, ConfigDict, Field

from mytrading.domain import Action, PriceType, Product
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import RefData, future_symbol, option_symbol
from mytrading.engine.context import StrategyContext
from mytrading.engine.helpers import StrategyHelpers
from mytrading.engine.parts import EngineLink, OpenOrder, PositionView
from mytrading.engine.rolls import due, next_contract
from mytrading.messaging import wire
from mytrading.options.chain import OptionQuote, strike_for
from mytrading.options.select import ExpiryKind, StrikeRule, choose, expiry_of, years_to

__all__ = [
    "BaseStrategy",
    "EngineLink",
    "OpenOrder",
    "PositionView",
    "Signal",
    "StrategyContext",
    "StrategyParams",
]

SignalAction = Literal["BUY", "SELL", "EXIT"]


class StrategyParams(BaseModel):
    """Base of every strategy's parameters: unknown keys are an error, not a silent typo.

    Two belong to every strategy: ``roll_days`` rolls a future it holds (or watches) to
    the next month this many trading days before expiry (0: never, the default; see
    ``engine/rolls.py``), and ``roll_adjust`` says whether warm-up history stitched
    across rolls is back-adjusted (``back``) or left as traded (``none``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roll_days: int = Field(0, ge=0, le=20)
    roll_adjust: Literal["none", "back"] = "none"


@dataclass(frozen=True)
class Signal:
    """What ``on_data`` returns in the MyTrading style (see ``on_signal``)."""

    action: SignalAction
    confidence: float = 1.0
    quantity: int = 0  # 0: ``signal_lots`` lots
    reason: str = ""


P = TypeVar("P", bound=StrategyParams)


class OrderTerms(TypedDict, total=False):
    """The terms an order helper takes by keyword, each typed as the wire's field (the
    domain's closed sets), and each checked again at the call (a value from a file is no
    less checked): ``self.buy(ex, sym, 65, pricetype="LIMIT", price=24_010.5)``."""

    pricetype: PriceType  # MARKET (the default), LIMIT, SL, SL-M
    product: Product  # MIS (the default), NRML, CNC
    price: float  # LIMIT and SL: the limit price (rounded to the tick by risk's check)
    trigger_price: float  # SL and SL-M: the trigger
    sizing: str  # with quantity 0: risk sizes the order from margin by this grade
    sizing_per_lot: float  # with sizing: one lot's margin with the rest of its set


class BaseStrategy(StrategyHelpers, Generic[P]):
    name: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams  # set from ``BaseStrategy[P]``
    params: P
    bar_history: ClassVar[int] = 500  # bars kept per subscription for ``bars()``
    # Signal defaults: set on the class, or per instance from params (in ``initialize``).
    signal_lots: int = 1  # size of a signal without a quantity
    min_confidence: float = 0.0  # signals below it are logged and ignored
    signal_product: Product = "MIS"

    def __init_subclass__(cls, **kw: Any) -> None:
        """``class S(BaseStrategy[SomeParams])`` sets ``S.Params = SomeParams``; an explicit
        ``Params`` that is not that type (or a subclass of it) is an error at import."""
        super().__init_subclass__(**kw)
        declared = _params_argument(cls)
        if declared is None:
            return
        if "Params" not in cls.__dict__:
            cls.Params = declared
        elif not issubclass(cls.Params, declared):
            raise TypeError(
                f"{cls.__name__}: Params is {cls.Params.__name__}, but the class is "
                f"BaseStrategy[{declared.__name__}]"
            )

    def __init__(self, params: P, refdata: RefData, link: EngineLink) -> None:
        self.params = params
        self.refdata = refdata
        self.link = link
        # the engine's side of this strategy: the runner talks to it, never to the fields
        # of this facade (``engine/context.py``)
        self.context = StrategyContext(
            self,
            refdata,
            link,
            self.bar_history,
            uses_on_data=type(self).on_data is not BaseStrategy.on_data,
        )
        self.log = self.context.log

    # Books the engine keeps, read by authors (the context owns them).

    @property
    def ledger(self) -> Ledger[tuple[str, str]]:
        """Positions by (exchange, symbol), from fills."""
        return self.context.ledger

    @property
    def open_orders(self) -> dict[str, OpenOrder]:
        """Working orders by intent id."""
        return self.context.open_orders

    @property
    def fills(self) -> int:
        return self.context.fills

    @property
    def protective(self) -> set[str]:
        """Intent ids of bracket exits (kept working in quarantine)."""
        return self.context.protective

    # ------------------------------------------------------------------ hooks

    def on_start(self) -> None:
        """Subscribe and set up. The default calls ``initialize`` (MyTrading style)."""
        self.initialize()

    def initialize(self) -> None: ...

    def on_tick(self, tick: wire.Tick) -> None: ...

    def on_bar(self, bar: wire.Bar) -> None: ...

    def on_depth(self, depth: wire.Depth) -> None:
        """Five levels a side of an instrument given to ``subscribe_depth`` (live and
        paper; a backtest has no depth)."""

    def on_data(self, bar: wire.Bar) -> Signal | None:
        """MyTrading style: called after ``on_bar`` with indicators updated."""
        return None

    def on_order_update(self, update: wire.OrderUpdate) -> None: ...

    def on_fill(self, fill: wire.Fill) -> None: ...

    def on_position(self, position: PositionView) -> None: ...

    def on_timer(self, name: str, now: datetime) -> None: ...

    def on_roll(self, old: tuple[str, str], new: tuple[str, str], ok: bool) -> None:
        """A future this strategy held or watched rolled (``roll_days``): its bar and tick
        subscriptions on ``old`` now follow ``new`` (indicators rebuilt from the new
        contract's history); move any reference of your own. ``ok``: both orders filled
        (False: risk refused the pair, or one leg failed; see the risk events)."""

    def on_stop(self) -> None: ...

    def on_signal(self, signal: Signal, bar: wire.Bar) -> None:
        """Turn a signal into a target position on the bar's instrument: BUY is long,
        SELL is short, EXIT is flat (smart-order semantics; no order if already there)."""
        if signal.confidence < self.min_confidence:
            self.log.info("signal below min confidence", action=signal.action, c=signal.confidence)
            return
        qty = signal.quantity or self.signal_lots * self.lot_size(bar.exchange, bar.symbol)
        target = {"BUY": qty, "SELL": -qty, "EXIT": 0}[signal.action]
        self.target_position(bar.exchange, bar.symbol, target, product=self.signal_product)

    # -------------------------------------------------------------- subscriptions

    def subscribe_ticks(self, exchange: str, symbol: str) -> None:
        self.refdata.instrument(exchange, symbol)  # fail early on an unknown symbol
        self.link.want_ticks(self.name, exchange, symbol)

    def subscribe_depth(self, exchange: str, symbol: str) -> None:
        """Market depth (five levels a side) through ``on_depth``, and ticks as with
        ``subscribe_ticks``: the feed subscribes this instrument in depth mode."""
        self.refdata.instrument(exchange, symbol)
        self.link.want_ticks(self.name, exchange, symbol)
        self.link.want_depth(self.name, exchange, symbol)

    def subscribe_bars(self, exchange: str, symbol: str, tf: str = "1m", warmup: int = 0) -> None:
        """Bars of ``tf`` (1m, 3m, 5m, 10m, 15m, 30m, 1h, D) built by the engine from ticks.
        ``warmup`` past bars are replayed through ``on_bar`` from the broker's history
        before live data (orders are not sent while ``warming_up``)."""
        self.refdata.instrument(exchange, symbol)
        self.context.want_bars(exchange, symbol, tf, warmup)
        self.link.want_bars(self.name, exchange, symbol, tf, warmup)

    def set_timer(self, name: str, every_s: float) -> None:
        """Call ``on_timer(name, now)`` every ``every_s`` seconds of market time."""
        if every_s <= 0:
            raise ValueError(f"timer {name!r}: interval must be positive, got {every_s}")
        self.link.set_timer(self.name, name, every_s)

    # ---------------------------------------------------------------- indicators

    def add_indicator(
        self,
        kind: str,
        name: str | None = None,
        exchange: str | None = None,
        symbol: str | None = None,
        tf: str | None = None,
        **params: Any,
    ) -> None:
        """Register a streaming indicator fed with every bar of one subscription (by
        default the first ``subscribe_bars``), before ``on_bar`` runs. ``name`` defaults
        to the kind: ``add_indicator("RSI", period=14)`` is read as ``"RSI"``."""
        key = None
        if exchange is not None or symbol is not None:
            if exchange is None or symbol is None:
                raise ValueError("give both exchange and symbol, or neither")
            key = (exchange, symbol, tf or "1m")
        self.context.add_indicator(name or kind.upper(), key, kind, **params)

    def create_signal(
        self, action: SignalAction, confidence: float = 1.0, quantity: int = 0, reason: str = ""
    ) -> Signal:
        if action not in ("BUY", "SELL", "EXIT"):
            raise ValueError(f"signal action must be BUY, SELL or EXIT, got {action!r}")
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {confidence}")
        return Signal(action, confidence, quantity, reason)

    # -------------------------------------------------------------- read access

    @property
    def mode(self) -> str:
        """``live``, ``paper``, ``dry_run`` or ``backtest``: the only thing that tells a
        strategy it runs over history (everything else is the same code)."""
        return self.link.mode

    @property
    def trading_state(self) -> tuple[str, str]:
        """(state, why) as risk holds it for this strategy: ``active``, ``reducing`` (only
        orders that shrink a position pass) or ``halted`` (no entry), the stack's state
        counted. While it is not active the engine does not send new entries: the first
        comes back as a rejection saying why (engine/gate.py)."""
        return self.link.trading_state(self.name)

    def now(self) -> datetime:
        """Market time, timezone-aware (Asia/Kolkata)."""
        return self.link.now()

    def today(self) -> date:
        return self.link.now().date()

    def bars(self, exchange: str, symbol: str, tf: str = "1m") -> list[wire.Bar]:
        """Recent closed bars, oldest first (at most ``bar_history``)."""
        return self.context.bars(exchange, symbol, tf)

    def ltp(self, exchange: str, symbol: str) -> float:
        """Last traded price the engine has seen (0.0 if none yet)."""
        return self.link.ltp(exchange, symbol)

    def lot_size(self, exchange: str, symbol: str) -> int:
        return self.refdata.instrument(exchange, symbol).lot_size

    def tick_size(self, exchange: str, symbol: str) -> float:
        return self.refdata.instrument(exchange, symbol).tick_size

    def round_price(self, exchange: str, symbol: str, price: float) -> float:
        return self.refdata.instrument(exchange, symbol).round_price(price)

    def position_view(self, exchange: str, symbol: str) -> PositionView:
        return self.context.position_view(exchange, symbol)

    def positions(self) -> list[PositionView]:
        return [self.position_view(ex, sym) for (ex, sym) in self.ledger.positions]

    def pnl(self) -> float:
        """Realized plus unrealized P&L in rupees, before charges."""
        return sum(p.realized + p.unrealized() for p in self.ledger.positions.values())

    # ---------------------------------------------------------- symbols, options

    def near_future(self, underlying: str) -> tuple[str, str]:
        """(exchange, symbol) of the near-month future of an index (see ``future``)."""
        return self.future(underlying, "near")

    def future(self, underlying: str, which: str = "near") -> tuple[str, str]:
        """(exchange, symbol) of an index's or a stock's monthly future: ``near``, ``next``
        or ``far`` (the three listed months; expiries moved back for holidays). With
        ``roll_days``, a month inside its roll window is skipped: ``near`` is the month
        this strategy would hold after the roll."""
        months = {"near": 0, "next": 1, "far": 2}
        if which not in months:
            raise ValueError(f"which must be one of {list(months)}, got {which!r}")
        u = self.refdata.underlying(underlying)
        expiry = self.refdata.calendar.near_future_expiry(u, self.today())
        near = future_symbol(underlying, expiry)
        if due(self.refdata, u.fo_exchange, near, self.today(), self.params.roll_days):
            near = next_contract(
                self.refdata, u.fo_exchange, near, self.today(), self.params.roll_days
            )
            expiry = self.refdata.instrument(u.fo_exchange, near).expiry or expiry
        for _ in range(months[which]):
            expiry = self.refdata.calendar.near_future_expiry(u, expiry + timedelta(days=1))
        return u.fo_exchange, future_symbol(underlying, expiry)

    def equity(self, name: str, exchange: str = "NSE") -> tuple[str, str]:
        """(exchange, symbol) of a stock or ETF (config/stocks.toml, or the master
        contract): trade it with product CNC (delivery) or MIS (intraday)."""
        inst = self.refdata.instrument(exchange, name)
        if inst.kind != "EQ":
            raise ValueError(f"{exchange}:{name} is not an equity ({inst.kind})")
        return exchange, name

    def universe(self, name: str) -> list[str]:
        """The stocks of a named universe (``[universes]`` in config/stocks.toml)."""
        try:
            return list(self.refdata.universes[name])
        except KeyError:
            raise ValueError(
                f"no universe {name!r}; config/stocks.toml has {sorted(self.refdata.universes)}"
            ) from None

    def spot(self, underlying: str) -> tuple[str, str]:
        """(exchange, symbol) of the index itself (quotes only, not tradable)."""
        return self.refdata.underlying(underlying).spot_exchange, underlying

    @overload
    def option(
        self,
        underlying: str,
        right: str,
        offset: str = "ATM",
        expiry: date | ExpiryKind | None = None,
        *,
        strike: float | None = None,
    ) -> tuple[str, str]: ...

    @overload
    def option(
        self,
        underlying: str,
        right: str,
        offset: str = "ATM",
        expiry: date | ExpiryKind | None = None,
        *,
        strike: float | None = None,
        premium_near: float | None = None,
        premium_above: float | None = None,
        premium_below: float | None = None,
        delta_near: float | None = None,
        strikes: int = 10,
    ) -> tuple[str, str] | None: ...

    def option(
        self,
        underlying: str,
        right: str,
        offset: str = "ATM",
        expiry: date | ExpiryKind | None = None,
        *,
        strike: float | None = None,
        premium_near: float | None = None,
        premium_above: float | None = None,
        premium_below: float | None = None,
        delta_near: float | None = None,
        strikes: int = 10,
    ) -> tuple[str, str] | None:
        """(exchange, symbol) of an option of ``underlying`` (``right`` CE or PE).

        Expiry: a date, or ``"weekly"`` (the default: the nearest), ``"next_week"``,
        ``"monthly"``, ``"next_month"``. Strike, one way: ``offset`` ATM / ITMn / OTMn from
        the index's last price (the default), ``strike=``, or by price: ``premium_near=``,
        ``premium_above=`` (the cheapest at or above), ``premium_below=`` (the dearest at
        or below), ``delta_near=`` (absolute delta, from each quote's implied volatility).
        A price-based choice is made among ATM +- ``strikes`` of that expiry, which this
        subscribes to the first time: it answers None until they are quoted (ask again
        on a later bar or timer, as a market order waits for a quote).
        """
        u = self.refdata.underlying(underlying)
        spot = self.ltp(u.spot_exchange, underlying)
        if spot <= 0:
            raise ValueError(f"no price yet for {underlying}: subscribe to it first")
        exp = expiry_of(self.refdata.calendar, u, self.today(), expiry or "weekly")
        rule = StrikeRule(offset, strike, premium_near, premium_above, premium_below, delta_near)
        chain = None
        if rule.needs_prices:
            chain = self.option_chain(underlying, strikes, exp)
            for q in chain:
                self.subscribe_ticks(u.fo_exchange, q.symbol)
        k = choose(rule, right, spot, u.strike_step, chain, years_to(exp, self.link.now()))
        if k is None:
            return None
        return u.fo_exchange, option_symbol(underlying, exp, k, right)

    def option_chain(
        self, underlying: str, strikes: int = 5, expiry: date | None = None
    ) -> list[OptionQuote]:
        """CE and PE at ATM +- ``strikes`` steps with the last prices seen (0.0 if none),
        for ``nearest_premium`` and friends."""
        u = self.refdata.underlying(underlying)
        spot = self.ltp(u.spot_exchange, underlying)
        if spot <= 0:
            raise ValueError(f"no price yet for {underlying}: subscribe to it first")
        exp = expiry or self.refdata.calendar.near_option_expiry(u, self.today())
        atm = strike_for(spot, u.strike_step, "CE")
        out = []
        for k in range(-strikes, strikes + 1):
            strike = atm + k * u.strike_step
            for right in ("CE", "PE"):
                sym = option_symbol(underlying, exp, strike, right)
                out.append(OptionQuote(sym, strike, right, self.ltp(u.fo_exchange, sym)))
        return out

    # ------------------------------------------------------------- order helpers
    # Each takes the order's terms by keyword (``OrderTerms``: typed as the wire's, so an
    # editor completes them and mypy checks a strategy) and hands one call to the
    # context's ``order``, the strategy's one port for orders.

    def buy(self, exchange: str, symbol: str, quantity: int, **terms: Unpack[OrderTerms]) -> str:
        """Buy ``quantity`` (0 with ``sizing``: risk sizes it); the intent id, "" if
        none could go out (warm-up, quarantine)."""
        return self.context.order("BUY", exchange, symbol, quantity, **terms)

    def sell(self, exchange: str, symbol: str, quantity: int, **terms: Unpack[OrderTerms]) -> str:
        return self.context.order("SELL", exchange, symbol, quantity, **terms)

    def short(self, exchange: str, symbol: str, quantity: int, **terms: Unpack[OrderTerms]) -> str:
        """Sell to open or add to a short; refused (ValueError) while long."""
        if self.position(exchange, symbol) > 0:
            raise ValueError(f"short {symbol}: the position is long; close it first")
        return self.context.order("SELL", exchange, symbol, quantity, **terms)

    def cover(
        self,
        exchange: str,
        symbol: str,
        quantity: int | None = None,
        **terms: Unpack[OrderTerms],
    ) -> str:
        """Buy back a short: all of it by default, never more than it."""
        short = -self.position(exchange, symbol)
        if short <= 0:
            raise ValueError(f"cover {symbol}: there is no short position")
        qty = short if quantity is None else quantity
        if qty > short:
            raise ValueError(f"cover {symbol}: {qty} is more than the short of {short}")
        return self.context.order("BUY", exchange, symbol, qty, **terms)

    def close(self, exchange: str, symbol: str, **terms: Unpack[OrderTerms]) -> str | None:
        """Cancel this instrument's working orders and trade the position to zero."""
        self.cancel_all(exchange, symbol)
        pos = self.position(exchange, symbol)
        if pos == 0:
            return None
        side: Action = "SELL" if pos > 0 else "BUY"
        return self.context.order(side, exchange, symbol, abs(pos), **terms)

    def close_all(self, **terms: Unpack[OrderTerms]) -> list[str]:
        out = []
        for ex, sym in list(self.ledger.positions):
            oid = self.close(ex, sym, **terms)
            if oid:
                out.append(oid)
        return out

    if TYPE_CHECKING:  # run from ``StrategyHelpers`` (compiled); typed here for authors

        def target_position(  # type: ignore[override]
            self,
            exchange: str,
            symbol: str,
            target: int,
            min_change: int = 0,
            min_lots: float = 0.0,
            min_pct: float = 0.0,
            **terms: Unpack[OrderTerms],
        ) -> str | None: ...

    def modify(
        self,
        intent_id: str,
        quantity: int | None = None,
        price: float | None = None,
        trigger_price: float | None = None,
        pricetype: PriceType | None = None,
    ) -> str:
        """Change a working order; unchanged fields keep their values."""
        return self.context.modify(intent_id, quantity, price, trigger_price, pricetype)

    def cancel(self, intent_id: str) -> str:
        return self.context.cancel(intent_id)

    def cancel_all(
        self, exchange: str | None = None, symbol: str | None = None, keep_protective: bool = False
    ) -> list[str]:
        return self.context.cancel_all(exchange, symbol, keep_protective)

    def bracket(
        self,
        exchange: str,
        symbol: str,
        action: Action,
        quantity: int,
        entry_trigger: float | None = None,
        entry_buffer: float = 3.0,
        stop_trigger: float | None = None,
        stop_distance: float | None = None,
        stop_pct: float | None = None,
        stop_buffer: float = 3.0,
        target: float | None = None,
        units: Literal["rupees", "ticks"] = "rupees",
        product: Product = "MIS",
        sizing: str = "",
        sizing_per_lot: float = 0.0,
    ) -> str:
        """An entry whose protective SL-L exit goes out as soon as (each part of) the entry
        fills; with a ``target``, a LIMIT exit too, the two OCO (``engine/brackets.py``).
        With ``sizing`` (and no quantity) risk sizes the entry from margin, as ``buy``."""
        return self.context.bracket(
            exchange,
            symbol,
            action,
            quantity,
            entry_trigger=entry_trigger,
            entry_buffer=entry_buffer,
            stop_trigger=stop_trigger,
            stop_distance=stop_distance,
            stop_pct=stop_pct,
            stop_buffer=stop_buffer,
            target=target,
            units=units,
            product=product,
            sizing=sizing,
            sizing_per_lot=sizing_per_lot,
        )

    def roll(self, exchange: str, symbol: str, to: str = "") -> str:
        """Roll the whole position in the future ``symbol`` into ``to`` (default: the next
        month outside the roll window), as one pair risk approves or refuses
        (``engine/rolls.py``). Returns the roll's intent id ("" if it could not be sent)."""
        return self.context.roll(exchange, symbol, to)


def _params_argument(cls: type) -> type[StrategyParams] | None:
    """The parameters type ``cls`` gave ``BaseStrategy[...]`` as it subclassed it, if any."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        if get_origin(base) is BaseStrategy:
            (arg,) = get_args(base)
            if isinstance(arg, type) and issubclass(arg, StrategyParams):
                return arg
    return None
