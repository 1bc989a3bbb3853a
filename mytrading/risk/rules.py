"""Pre-trade rules: small functions of one intent (``Ask``) and the risk book, declared in
order in ``PRE_TRADE``, each testable alone.

``check`` runs them in that order and returns the first failure as a ``Rejection`` (rule
name, reason, threshold, value), or the approved and normalised order fields. They read
the book (``RiskBook``, ``risk/book.py``) and never change it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import date, datetime

import msgspec

from mytrading.domain.accounts import MAIN
from mytrading.domain.ids import OrderId
from mytrading.domain.refdata import IST, Instrument, RefData, RefDataError
from mytrading.messaging import wire
from mytrading.options.exposure import Greeks, book_greeks
from mytrading.risk.book import RiskBook
from mytrading.risk.limits import Limits
from mytrading.risk.margin import MarginTable


class Rejection(msgspec.Struct, frozen=True):
    rule: str
    reason: str
    threshold: float = 0.0
    value: float = 0.0


class Approval(msgspec.Struct, frozen=True):
    price: float  # rounded to the tick
    trigger: float
    quantity: int  # as asked, or as sized from margin
    margin: float  # rupees this order needs
    # a reversal whose opening part was refused: only its closing part is approved
    refused_open: Rejection | None = None


class Ask:
    """One intent under the pre-trade rules, and what they work out about it on the way
    (the contract, its last price, the tick-rounded prices, the margin it needs)."""

    __slots__ = (
        *("intent", "book", "refdata", "limits", "market_now", "wall_ns", "margins"),
        *("account", "ref", "key", "inst", "last", "price", "trigger", "need"),
        *("pos", "signed", "_exposure", "speed", "_market_ns", "_day", "_exit"),
    )

    def __init__(
        self,
        intent: wire.PricedIntent,
        book: RiskBook,
        refdata: RefData,
        limits: Limits,
        market_now: datetime,
        wall_ns: int,
        margins: MarginTable | None,
        account: str,
        speed: float = 1.0,
        market_ns: int = -1,
    ) -> None:
        self.intent = intent
        self.speed = speed  # market seconds per wall second (a simulated clock runs faster)
        self.book = book
        self.refdata = refdata
        self.limits = limits
        self.market_now = market_now
        self.wall_ns = wall_ns
        self.margins = margins
        self.account = account
        self.ref = ref_order_id(intent)  # the working order a modify or cancel acts on
        self.key = (intent.strategy, intent.exchange, intent.symbol)
        self.inst: Instrument | None = None  # set by ``tradable``
        self.last = 0.0
        self.price = 0.0
        self.trigger = 0.0
        self.need = 0.0  # rupees of margin, set by ``margin``
        self.pos = book.positions.get(self.key, 0)  # the book does not move during a check
        self.signed = intent.quantity if intent.action == "BUY" else -intent.quantity
        self._exposure: tuple[int, int] | None = None
        self._market_ns = market_ns  # -1: worked out from market_now when asked
        self._day: date | None = None
        self._exit: bool | None = None

    @property
    def exit(self) -> bool:
        """It shrinks the position without turning it round (``sizing`` may change the
        quantity: asked again after it)."""
        if self._exit is None:
            self._exit = reduces(self.pos, self.intent)
        return self._exit

    @property
    def closes(self) -> bool:
        """It shrinks the position even once every other working order that is not
        being cancelled fills: an exit that another exit already covers (risk's own,
        closing the same position) would turn the position round, a new entry. An order
        whose cancel is on its way (a bracket's stop, cancelled by the strategy's close)
        covers nothing: counting it would refuse the close and leave the position
        without its stop."""
        return self.exit and closes(self.book, self.key, self.intent, self.ref)

    @property
    def protective(self) -> bool:
        """A bracket's stop or target (the engine's): its pair never both fill."""
        link = getattr(self.intent, "link", None)
        return link is not None and link.protective

    @property
    def market_ns(self) -> int:
        """The market time as epoch nanoseconds (``market_now``'s, worked out once)."""
        if self._market_ns < 0:
            self._market_ns = int(self.market_now.timestamp() * 1e9)
        return self._market_ns

    @property
    def day(self) -> date:
        """The market's date in India (``market_now``'s, worked out once)."""
        if self._day is None:
            now = self.market_now
            self._day = (now if now.tzinfo is IST else now.astimezone(IST)).date()
        return self._day

    @property
    def exposure(self) -> tuple[int, int]:
        """(long, short): the position once every other working order fills each way."""
        if self._exposure is None:
            self._exposure = self.book.exposure(self.key, exclude=self.ref)
        return self._exposure

    @property
    def after(self) -> int:
        long_, short = self.exposure
        return (long_ + self.signed) if self.signed > 0 else (short + self.signed)

    @property
    def grows(self) -> bool:
        return abs(self.after) > abs(self.pos)


Rule = Callable[[Ask], Rejection | None]


def duplicate_intent(a: Ask) -> Rejection | None:
    """An intent id risk has seen: a repeat is refused, never sent twice."""
    return duplicate(a.intent, a.book)


def intent_age(a: Ask) -> Rejection | None:
    """An intent decided longer ago than ``max_intent_age_s`` of market time is refused
    as stale: risk held up (a pause, a backlog) must not send a decision the market has
    moved past. On a clock faster than the wall's the limit is also counted in wall
    seconds (a demo at 300x would otherwise refuse for the bus's ordinary milliseconds).
    An intent that does not say when it was decided is not judged by age, nor is one
    that only shrinks a position (a protective stop, an exit): sent late, it still only
    lowers risk, and refused it would leave the position unprotected."""
    most = a.limits.max_intent_age_s
    decided = a.intent.decided_ns
    if not most or not decided or a.exit:
        return None
    age = (a.market_ns - decided) / 1e9
    if age <= most * max(1.0, a.speed):
        return None
    return Rejection(
        "stale_intent",
        f"decided {age:.1f}s of market time ago, more than {most:g}s: the market has moved",
        most,
        round(age, 3),
    )


def working_target(a: Ask) -> Rejection | None:
    """An amend needs a working order to act on, and one not split."""
    if not isinstance(a.intent, wire.AmendIntent):
        return None
    kids = a.book.children(a.ref)
    if not kids:
        return Rejection("not_working", f"modify: no working order {a.ref}")
    if kids != [a.ref]:
        return Rejection("split_modify", f"{a.ref} was split into child orders: cancel it instead")
    return None


def trading_state(a: Ask) -> Rejection | None:
    """HALTED (the kill switch, or one strategy): no entry, from any source. An order that
    only shrinks a position still passes: a protective stop, a target (each of a pair, as
    only one of them fills), an exit. An exit the working exits already cover does not:
    with risk's own exit closing the position, a strategy's exit of it would sell it short
    (the simulator found a kill switch's day that ended long and short that way, seed 6).
    A halted stack is never left holding a position it cannot protect."""
    if a.book.states.of(a.intent.strategy) != "halted":
        return None
    if a.closes or (a.protective and a.exit):
        return None
    if a.book.states.kill_switch:
        return Rejection("kill_switch", "kill switch is on: no new entries (exits pass)")
    return Rejection("halted", f"{a.intent.strategy} is HALTED: no new entries (exits pass)")


def tradable(a: Ask) -> Rejection | None:
    """A contract the reference data knows, and not an index."""
    try:
        a.inst = a.refdata.instrument(a.intent.exchange, a.intent.symbol)
    except RefDataError as exc:
        return Rejection("instrument", str(exc))
    if not a.inst.tradable:
        return Rejection("instrument", f"{a.intent.symbol} is an index, not a tradable contract")
    if a.inst.expiry is not None and a.inst.expiry < a.day:
        # settled at its expiry (router/expiry.py): an order for it can only be a strategy
        # that has not heard the settlement yet, and a broker has delisted it
        return Rejection(
            "instrument", f"{a.intent.symbol} expired on {a.inst.expiry}: it cannot be traded"
        )
    a.last = a.book.ltp.get((a.intent.exchange, a.intent.symbol), 0.0)
    return None


def sizing(a: Ask) -> Rejection | None:
    """A sized intent (``sizing``, no quantity) gets its lots from the free margin."""
    if not isinstance(a.intent, wire.PlaceIntent) or not a.intent.sizing:
        return None
    assert a.inst is not None
    sized = _size(
        a.intent,
        a.inst,
        a.book,
        a.limits,
        a.margins,
        a.last,
        a.market_now,
        a.wall_ns,
        a.refdata,
        a.account,
    )
    if isinstance(sized, Rejection):
        return sized
    a.intent = msgspec.structs.replace(a.intent, quantity=sized)
    a.signed = sized if a.intent.action == "BUY" else -sized
    a._exit = None  # judged again on the sized quantity
    return None


def quantity(a: Ask) -> Rejection | None:
    """Positive, whole lots, at most ``max_intent_lots``; a modify within one child."""
    assert a.inst is not None
    return _quantity(a.intent, a.inst, a.limits)


def prices(a: Ask) -> Rejection | None:
    """Prices rounded to the tick; a LIMIT or SL needs a price, an SL a trigger."""
    assert a.inst is not None
    i = a.intent
    a.price = a.inst.round_price(i.price) if i.price else 0.0
    a.trigger = a.inst.round_price(i.trigger_price) if i.trigger_price else 0.0
    if i.pricetype in ("LIMIT", "SL") and a.price <= 0:
        return Rejection("price", f"{i.pricetype} needs a positive price", 0, i.price)
    if i.pricetype in ("SL", "SL-M") and a.trigger <= 0:
        return Rejection(
            "price", f"{i.pricetype} needs a positive trigger price", 0, i.trigger_price
        )
    return None


def price_band(a: Ask) -> Rejection | None:
    assert a.inst is not None
    return _price_band(a.inst, a.price, a.trigger, a.last, a.limits)


def notional(a: Ask) -> Rejection | None:
    return _notional(a.intent, a.price or a.trigger or a.last, a.limits)


def trading_hours(a: Ask) -> Rejection | None:
    """The session, then the entry or exit window, then the MIS cut-off."""
    return trading_time(a.intent, a.refdata, a.limits, a.market_now, a.exit)


def reducing(a: Ask) -> Rejection | None:
    """REDUCING: only an order that shrinks the position, even if every working order
    fills."""
    if a.book.states.of(a.intent.strategy) != "reducing":
        return None
    pos, signed = a.pos, a.signed
    long_, short = a.exposure
    if pos > 0 > signed:
        room = max(0, short)  # what is left long after the working sells
    elif pos < 0 < signed:
        room = max(0, -long_)  # what is left short after the working buys
    else:
        room = 0
    if abs(signed) <= room:
        return None
    return Rejection(
        "reducing",
        f"{a.intent.strategy} is REDUCING: only orders that shrink the position "
        f"({pos}, {room} left to close after working orders) pass",
        room,
        abs(signed),
    )


def max_position(a: Ask) -> Rejection | None:
    assert a.inst is not None
    return position_cap(a.intent, a.inst, a.book, a.limits, a.after, a.grows)


def strategy_caps(a: Ask) -> Rejection | None:
    return _strategy_caps(a.intent, a.book, a.refdata, a.limits, a.after, a.grows, a.ref)


def margin(a: Ask) -> Rejection | None:
    """The margin the order needs (``margins.toml``, or the broker's per-lot figure while
    fresh) within the account's free margin; only what it opens needs any."""
    if a.margins is None:
        return None
    assert a.inst is not None
    i, pos = a.intent, a.pos
    opens = i.quantity if pos * a.signed >= 0 else max(0, i.quantity - abs(pos))
    n = a.margins.need(
        a.inst,
        i.action,
        i.quantity,
        a.price or a.last,
        opens,
        _paired(i, a.inst, a.book, a.refdata),
        a.day,
        a.book.broker_per_lot(i.exchange, i.symbol, i.action, a.wall_ns),
        i.product,
    )
    a.need = n.amount
    if a.need <= 0:
        return None
    free = a.book.free_margin(a.wall_ns, a.account)
    if free is None:
        return Rejection("margin", "no funds figure from the broker yet")
    if a.need > free:
        return Rejection(
            "margin",
            f"{n.trade_type} needs {a.need:,.0f}, available {free:,.0f}",
            round(free, 2),
            round(a.need, 2),
        )
    return None


def greek_limits(a: Ask) -> Rejection | None:
    """The strategy's net delta and vega in the order's underlying, with the order filled
    (its working orders left out, as the exposure of one instrument is), within
    ``max_net_delta`` and ``max_vega``; an order that brings either towards zero passes."""
    lim = a.limits
    if not (lim.max_net_delta or lim.max_vega) or a.inst is None:
        return None
    strategy, und = a.intent.strategy, a.inst.underlying
    held = [
        (ex, sym, q)
        for (s, ex, sym), q in a.book.positions.items()
        if s == strategy and q and _underlying(a.refdata, ex, sym) == und
    ]

    def ltp(ex: str, sym: str) -> float:  # the market's, else (unquoted) the order's price
        got = a.book.ltp.get((ex, sym), 0.0)
        return got or (a.price if (ex, sym) == (a.intent.exchange, a.intent.symbol) else 0.0)

    now = a.market_now
    before = book_greeks(a.refdata, held, ltp, now).get(und, Greeks())
    after_pos = [(ex, sym, q) for ex, sym, q in held if (ex, sym) != a.key[1:]]
    after_pos.append((a.intent.exchange, a.intent.symbol, a.pos + a.signed))
    after = book_greeks(a.refdata, after_pos, ltp, now).get(und, Greeks())
    for name, cap, b, x in (
        ("net delta", lim.max_net_delta, before.delta, after.delta),
        ("vega", lim.max_vega, before.vega, after.vega),
    ):
        if cap and abs(x) > cap and abs(x) > abs(b):
            return Rejection(
                "greeks",
                f"{strategy}'s {name} in {und} would be {x:+,.1f} (limit +-{cap:,.0f})",
                cap,
                round(x, 2),
            )
    return None


def _underlying(refdata: RefData, exchange: str, symbol: str) -> str:
    try:
        return refdata.instrument(exchange, symbol).underlying
    except RefDataError:
        return ""


def order_rate(a: Ask) -> Rejection | None:
    return rate_limit(a.intent, a.book, a.limits, a.wall_ns)


# The pre-trade rules, in the order they run: the first that refuses decides. A modify
# is checked like a new order, with the order it replaces left out of the exposure. A
# cancel is not judged by these (``check_cancel``): it needs only a unique id and a
# working order to act on (it always lowers risk, so neither the kill switch nor the
# rate limit holds it back).
PRE_TRADE: tuple[Rule, ...] = (
    duplicate_intent,
    intent_age,
    working_target,
    trading_state,
    tradable,
    sizing,
    quantity,
    prices,
    price_band,
    notional,
    trading_hours,
    reducing,
    max_position,
    strategy_caps,
    margin,
    greek_limits,
    order_rate,
)


def check(
    intent: wire.PricedIntent,
    book: RiskBook,
    refdata: RefData,
    limits: Limits,
    market_now: datetime,
    wall_ns: int,
    margins: MarginTable | None = None,
    account: str = MAIN,
    speed: float = 1.0,
    market_ns: int = -1,
) -> Rejection | Approval:
    """The first rule of ``PRE_TRADE`` the intent breaks, or the approved order's
    normalised fields. ``margins`` None leaves the margin rule out (unit tests of the
    other rules); the margin is ``account``'s, the strategy's lead account; ``speed``:
    the market clock's (market seconds per wall second); ``market_ns``: ``market_now``
    as epoch nanoseconds when the caller's clock has it (-1: worked out from it)."""
    a = Ask(intent, book, refdata, limits, market_now, wall_ns, margins, account, speed, market_ns)
    for rule in PRE_TRADE:
        refused = rule(a)
        if refused is not None:
            return refused
    return Approval(a.price, a.trigger, a.intent.quantity, a.need)


def check_cancel(intent: wire.CancelIntent, book: RiskBook) -> Rejection | Approval:
    """A cancel: an id risk has not seen, and a working order (or its children) to act on."""
    refused = duplicate(intent, book)
    if refused is not None:
        return refused
    ref = ref_order_id(intent)
    if not book.children(ref):
        return Rejection("not_working", f"cancel: no working order {ref}")
    return Approval(0.0, 0.0, intent.quantity, 0.0)


def duplicate(intent: wire.Intent, book: RiskBook) -> Rejection | None:
    """An intent id risk has seen: a repeat is refused, never sent twice."""
    if intent.intent_id in book.seen_intents:
        return Rejection("duplicate_intent", f"intent {intent.intent_id} was already received")
    return None


def position_cap(
    intent: wire.PricedIntent,
    inst: Instrument,
    book: RiskBook,
    limits: Limits,
    after: int,
    grows: bool,
) -> Rejection | None:
    """Lots per (strategy, symbol); an equity, which has no lots, by value."""
    if not grows:
        return None
    if inst.kind == "EQ":
        price = intent.price or book.ltp.get((intent.exchange, intent.symbol), 0.0)
        if price <= 0:  # no lots bound it: an equity order must be valued before it grows
            return Rejection("price", f"no price yet to value {intent.symbol} by (no tick seen)")
        value = abs(after) * price
        if value > limits.max_equity_position_value:
            return Rejection(
                "max_position",
                f"position would reach {after} shares, {value:,.0f} rupees (limit "
                f"{limits.max_equity_position_value:,.0f})",
                limits.max_equity_position_value,
                round(value, 2),
            )
        return None
    max_qty = limits.max_position_lots * inst.lot_size
    if abs(after) > max_qty:
        return Rejection(
            "max_position",
            f"position would reach {after} (limit {max_qty} = {limits.max_position_lots} lots)",
            max_qty,
            abs(after),
        )
    return None


def _paired(intent: wire.PricedIntent, inst: Instrument, book: RiskBook, refdata: RefData) -> bool:
    """A short option whose other type (same underlying and expiry) is short already."""
    if inst.kind not in ("CE", "PE") or intent.action != "SELL":
        return False
    other = "PE" if inst.kind == "CE" else "CE"
    keys = {k for k in book.positions if k[0] == intent.strategy}
    keys |= {k for k in book.working.by_key if k[0] == intent.strategy}
    for key in keys:
        try:
            o = refdata.instrument(key[1], key[2])
        except RefDataError:
            continue
        if o.kind == other and o.underlying == inst.underlying and o.expiry == inst.expiry:
            _, short = book.exposure(key)
            if short < 0:
                return True
    return False


def _size(
    intent: wire.PlaceIntent,
    inst: Instrument,
    book: RiskBook,
    limits: Limits,
    margins: MarginTable | None,
    last: float,
    market_now: datetime,
    wall_ns: int,
    refdata: RefData,
    account: str = MAIN,
) -> int | Rejection:
    """The quantity for a sized intent: lots from free margin, capped per order."""
    if intent.quantity:
        return Rejection("sizing", "give a quantity or a sizing, not both", 0, intent.quantity)
    if margins is None:
        return Rejection("sizing", "no margin table: sizing is off")
    free = book.free_margin(wall_ns, account)
    if free is None:
        return Rejection("sizing", "no funds figure from the broker yet")
    price = intent.price or last
    if inst.kind in ("CE", "PE") and intent.action == "BUY" and price <= 0:
        return Rejection("sizing", "no price to size an option purchase by")
    per = margins.need(
        inst,
        intent.action,
        inst.lot_size,
        price,
        inst.lot_size,
        _paired(intent, inst, book, refdata),
        market_now.astimezone(IST).date(),
        book.broker_per_lot(intent.exchange, intent.symbol, intent.action, wall_ns),
        intent.product,
    ).per_lot
    per = max(per, intent.sizing_per_lot)  # a leg of a set: the set's margin per lot
    try:
        lots = margins.lots_for(intent.sizing, free, per)
    except ValueError as exc:
        return Rejection("sizing", str(exc))
    if lots <= 0:
        return Rejection(
            "sizing", f"{intent.sizing}: {free:,.0f} available is not one lot at {per:,.0f}"
        )
    return min(lots, limits.max_intent_lots) * inst.lot_size


def _quantity(intent: wire.PricedIntent, inst: Instrument, limits: Limits) -> Rejection | None:
    if intent.quantity <= 0:
        return Rejection("quantity", "quantity must be positive", 0, intent.quantity)
    if intent.quantity % inst.lot_size:
        return Rejection(
            "lot_multiple",
            f"quantity {intent.quantity} is not a multiple of the lot size {inst.lot_size}",
            inst.lot_size,
            intent.quantity,
        )
    lots = intent.quantity // inst.lot_size
    if lots > limits.max_intent_lots and inst.kind != "EQ":
        return Rejection(
            "max_order_qty",
            f"{lots} lots exceeds {limits.max_intent_lots} per order",
            limits.max_intent_lots,
            lots,
        )
    if isinstance(intent, wire.AmendIntent) and intent.quantity > child_size(inst, limits):
        return Rejection(
            "split_modify",
            "a modify cannot grow an order past one child order; cancel and place anew",
            child_size(inst, limits),
            intent.quantity,
        )
    return None


def child_size(inst: Instrument, limits: Limits) -> int:
    """Largest order sent to the broker: ``max_order_lots`` lots, and never above the
    exchange's freeze quantity (a whole number of lots)."""
    if inst.kind == "EQ":
        return 10**9  # no lots, no freeze: an equity order goes whole (its value is capped)
    freeze_lots = max(1, inst.freeze_qty // inst.lot_size) if inst.freeze_qty else 10**9
    return min(limits.max_order_lots, freeze_lots) * inst.lot_size


def split(quantity: int, inst: Instrument, limits: Limits) -> list[int]:
    """Child quantities: full children first, the remainder last (OpenAlgo's splitorder)."""
    size = child_size(inst, limits)
    full, rest = divmod(quantity, size)
    return [size] * full + ([rest] if rest else [])


def _price_band(
    inst: Instrument, price: float, trigger: float, last: float, limits: Limits
) -> Rejection | None:
    """Prices within the band around the last price (no check before the first price):
    ``pct`` of it either side, and never fewer than ``price_band_min_ticks`` ticks."""
    if last <= 0 or not (price or trigger):  # no price to judge (a MARKET order)
        return None
    band = limits.band()
    pct = band.option_pct if inst.kind in ("CE", "PE") else band.pct
    lo, hi = band.around(inst, last)
    for name, px in (("price", price), ("trigger", trigger)):
        if px and not lo <= px <= hi:
            return Rejection(
                "price_band",
                f"{name} {px} is outside the band around the last price {last} "
                f"({lo:.2f}-{hi:.2f}: {pct:g} %, at least {limits.price_band_min_ticks} ticks)",
                pct,
                round(abs(px / last - 1) * 100, 2),
            )
    return None


def _notional(intent: wire.PricedIntent, price: float, limits: Limits) -> Rejection | None:
    value = intent.quantity * price
    if price > 0 and value > limits.max_order_notional:
        return Rejection(
            "max_notional",
            f"order value {value:,.0f} exceeds {limits.max_order_notional:,.0f}",
            limits.max_order_notional,
            value,
        )
    return None


def trading_time(
    intent: wire.PricedIntent,
    refdata: RefData,
    limits: Limits,
    market_now: datetime,
    exit_: bool,
) -> Rejection | None:
    if limits.any_hour:
        return None
    if not refdata.calendar.is_open(intent.exchange, market_now):
        return Rejection(
            "market_hours",
            f"{intent.exchange} is closed at {market_now.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        )
    now = market_now.astimezone(IST).time()
    start, end = limits.exit_window if exit_ else limits.entry_window
    if not start <= now < end:
        kind = "exit" if exit_ else "entry"
        return Rejection(
            f"{kind}_window",
            f"{kind} at {now.strftime('%H:%M:%S')} is outside {intent.strategy}'s {kind} "
            f"window {start.strftime('%H:%M')}-{end.strftime('%H:%M')}",
        )
    cutoff = refdata.calendar.session(intent.exchange).mis_squareoff
    if intent.product == "MIS" and not exit_ and now >= cutoff:
        return Rejection(
            "mis_cutoff",
            f"no new MIS positions after the {cutoff.strftime('%H:%M')} square-off",
        )
    return None


def _strategy_caps(
    intent: wire.PricedIntent,
    book: RiskBook,
    refdata: RefData,
    limits: Limits,
    after: int,
    grows: bool,
    ref: str,
) -> Rejection | None:
    """Lots across the strategy's symbols and the number of symbols it holds."""
    if not grows:
        return None
    lots, held = _holdings(book, refdata, intent.strategy, skip=(intent.exchange, intent.symbol))
    lots += _lots(refdata.instrument(intent.exchange, intent.symbol), abs(after))
    if lots > limits.max_strategy_lots:
        return Rejection(
            "max_strategy_lots",
            f"{intent.strategy} would hold {lots:g} lots (limit {limits.max_strategy_lots})",
            limits.max_strategy_lots,
            lots,
        )
    if len(held) >= limits.max_open_positions:
        return Rejection(
            "max_open_positions",
            f"{intent.strategy} already holds {len(held)} symbols "
            f"(limit {limits.max_open_positions})",
            limits.max_open_positions,
            len(held) + 1,
        )
    return None


def rate_limit(
    intent: wire.IntentBase, book: RiskBook, limits: Limits, wall_ns: int
) -> Rejection | None:
    window = book.approvals[intent.strategy]
    while window and wall_ns - window[0] >= 60_000_000_000:
        window.popleft()
    # the approvals of the last second: the window is in the order they came, so a binary
    # search finds the first (a scan from the newest end was O(orders in the last second),
    # a sixth of risk's own work on an order at 1,000 orders a second)
    last_second = len(window) - bisect.bisect_right(window, wall_ns - 1_000_000_000)
    if last_second >= limits.max_orders_per_sec:
        return Rejection(
            "order_rate",
            f"more than {limits.max_orders_per_sec} orders in one second",
            limits.max_orders_per_sec,
            last_second + 1,
        )
    if len(window) >= limits.max_orders_per_min:
        return Rejection(
            "order_rate_minute",
            f"more than {limits.max_orders_per_min} orders in one minute",
            limits.max_orders_per_min,
            len(window) + 1,
        )
    return None


def usage(book: RiskBook, refdata: RefData, strategy: str, wall_ns: int) -> dict[str, float]:
    """How much of its limits a strategy uses now: lots (worst case, counting working
    orders), symbols held, orders in the last minute."""
    lots, held = _holdings(book, refdata, strategy)
    recent = sum(1 for t in book.approvals.get(strategy, ()) if wall_ns - t < 60_000_000_000)
    return {"lots": lots, "open_positions": len(held), "orders_last_minute": recent}


def _holdings(
    book: RiskBook, refdata: RefData, strategy: str, skip: tuple[str, str] | None = None
) -> tuple[float, set[tuple[str, str]]]:
    """(lots, symbols) a strategy holds in the worst case (every working order filled),
    leaving out ``skip``."""
    keys = {k for k in book.positions if k[0] == strategy}
    keys |= {k for k in book.working.by_key if k[0] == strategy}
    lots = 0.0
    held: set[tuple[str, str]] = set()
    for key in keys:
        if key[1:] == skip:
            continue
        long_, short = book.exposure(key)
        worst = max(abs(long_), abs(short))
        if worst:
            held.add(key[1:])
            lots += _lots(refdata.instrument(key[1], key[2]), worst)
    return lots, held


def _lots(inst: Instrument, qty: int) -> float:
    """Lots for the strategy-wide lot cap; an equity has none (it counts as a symbol)."""
    return 0.0 if inst.kind == "EQ" else qty / inst.lot_size


def reduces(pos: int, intent: wire.IntentBase | wire.Order) -> bool:
    """The intent (or order) shrinks the position ``pos`` without turning it round."""
    signed = intent.quantity if intent.action == "BUY" else -intent.quantity
    return (pos > 0 > signed or pos < 0 < signed) and abs(signed) <= abs(pos)


def closes(
    book: RiskBook, key: tuple[str, str, str], intent: wire.IntentBase | wire.Order, ref: str
) -> bool:
    """``intent`` shrinks ``key``'s position even once every working order on it that no
    cancel is going for fills (``ref``: the order a modify replaces, left out): an exit
    no other exit already covers."""
    pos = book.positions.get(key, 0)
    if not reduces(pos, intent):
        return False
    buys, sells = book.covering(key, exclude=ref)
    signed = intent.quantity if intent.action == "BUY" else -intent.quantity
    if signed < 0:
        return pos - sells + signed >= 0
    return pos + buys + signed <= 0


def ref_order_id(intent: wire.Intent) -> str:
    """Our order id of the working order a modify or cancel acts on ("" for a new order)."""
    if isinstance(intent, (wire.AmendIntent, wire.CancelIntent)):
        return str(OrderId(intent.strategy, intent.ref_intent_id))
    return ""
