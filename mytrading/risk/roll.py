"""Futures roll-over in risk: a roll is one intent (``wire.RollIntent``) that risk
approves or refuses as a pair, then two orders, then one outcome, shared by the risk
daemon and the backtest (``backtest/risk.py``).

* ``check_roll``: the pair's rules. The intent must close the strategy's whole position in
  the old contract, with nothing of the strategy working in either contract (a second roll
  of a position already rolling is refused: an engine restarted mid-roll cannot double it),
  into a later future of the same underlying on the same exchange, the same number of lots
  (a revised lot size is followed), and the new leg must pass the time window, the
  position cap and the margin the pair needs beyond what the old leg frees.
* ``roll_orders``: the pair: ``<order>~1`` closes the old contract (an exit, so the router
  sends it first), ``<order>~2`` opens the new one; both carry ``OrderLink.roll``.
* ``RollWatch``: follows both legs to their end, then confirms the outcome against the
  broker's position book and says what happened as a ``RiskEvent`` of kind ``roll``:
  ``confirmed`` (both filled, the broker's book agrees), ``mismatch`` (both filled, the
  book disagrees), ``incomplete`` (one leg failed: the strategy is flat, or the old
  position is closed by risk's exit manager), ``failed`` (neither leg filled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from mytrading.domain import Product
from mytrading.domain.accounts import MAIN
from mytrading.domain.ids import OrderId, roll_leg
from mytrading.domain.refdata import IST, RefData, RefDataError
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.limits import Limits
from mytrading.risk.margin import MarginTable
from mytrading.risk.rules import (
    Approval,
    Rejection,
    duplicate,
    position_cap,
    rate_limit,
    trading_time,
)

Key = tuple[str, str, Product]  # (exchange, symbol, product): a position at the broker


class RollApproval(Approval, frozen=True):
    open_quantity: int = 0  # the new contract's quantity: the same lots at its lot size


def check_roll(
    intent: wire.RollIntent,
    book: RiskBook,
    refdata: RefData,
    limits: Limits,
    market_now: datetime,
    wall_ns: int,
    margins: MarginTable | None = None,
    account: str = MAIN,
) -> Rejection | RollApproval:
    """The first rule the roll breaks, or its approval (see the module's docstring)."""
    dup = duplicate(intent, book)
    if dup:
        return dup
    state = book.states.of(intent.strategy)
    if state != "active":
        return Rejection(
            "halted" if state == "halted" else "reducing",
            f"{intent.strategy} is {state.upper()}: no roll into a new contract",
        )
    try:
        old = refdata.instrument(intent.exchange, intent.symbol)
        new = refdata.instrument(intent.exchange, intent.roll_to)
    except RefDataError as exc:
        return Rejection("instrument", str(exc))
    if old.kind != "FUT" or new.kind != "FUT" or old.underlying != new.underlying:
        return Rejection(
            "roll", f"{intent.symbol} -> {intent.roll_to}: both must be futures of one underlying"
        )
    if not (old.expiry and new.expiry and new.expiry > old.expiry):
        return Rejection("roll", f"{intent.roll_to} does not expire after {intent.symbol}")
    s = intent.strategy
    old_key, new_key = (s, intent.exchange, intent.symbol), (s, intent.exchange, intent.roll_to)
    if book.working.of(old_key) or book.working.of(new_key):
        return Rejection(
            "roll_in_flight",
            f"{s} has orders working in {intent.symbol} or {intent.roll_to}: "
            "a roll waits until they end",
        )
    pos = book.positions.get(old_key, 0)
    closes = -intent.quantity if intent.action == "BUY" else intent.quantity
    if pos == 0 or closes != pos:
        return Rejection(
            "roll_position",
            f"a roll closes the whole position: {s} holds {pos} {intent.symbol}, "
            f"the roll would {intent.action} {intent.quantity}",
            pos,
            intent.quantity,
        )
    lots, rest = divmod(abs(pos), old.lot_size)
    if rest:
        return Rejection(
            "lot_multiple", f"{pos} {intent.symbol} is not whole lots of {old.lot_size}"
        )
    opens = lots * new.lot_size
    opener = wire.PlaceIntent(
        intent_id=intent.intent_id,
        strategy=s,
        exchange=intent.exchange,
        symbol=intent.roll_to,
        action="SELL" if intent.action == "BUY" else "BUY",
        quantity=opens,
        product=intent.product,
    )
    bad = trading_time(opener, refdata, limits, market_now, False)
    if bad:
        return bad
    after = book.positions.get(new_key, 0) + (opens if pos > 0 else -opens)
    bad = position_cap(opener, new, book, limits, after, True)
    if bad:
        return bad
    need = 0.0
    if margins is not None:
        day = market_now.astimezone(IST).date()
        old_px = book.ltp.get((intent.exchange, intent.symbol), 0.0)
        new_px = book.ltp.get((intent.exchange, intent.roll_to), 0.0)
        if new_px <= 0:
            return Rejection("price", f"no price yet for {intent.roll_to} (no tick seen)")
        held_side = "BUY" if pos > 0 else "SELL"
        held = margins.need(
            old,
            held_side,
            abs(pos),
            old_px,
            abs(pos),
            False,
            day,
            book.broker_per_lot(intent.exchange, intent.symbol, held_side, wall_ns),
            intent.product,
        ).amount
        wanted = margins.need(
            new,
            opener.action,
            opens,
            new_px,
            opens,
            False,
            day,
            book.broker_per_lot(intent.exchange, intent.roll_to, opener.action, wall_ns),
            intent.product,
        ).amount
        need = max(0.0, wanted - held)
        free = book.free_margin(wall_ns, account)
        if need > 0 and free is None:
            return Rejection("margin", "no funds figure from the broker yet")
        if need > 0 and free is not None and need > free:
            return Rejection(
                "margin",
                f"the roll needs {need:,.0f} more than the old contract frees, "
                f"available {free:,.0f}",
                round(free or 0.0, 2),
                round(need, 2),
            )
    return rate_limit(intent, book, limits, wall_ns) or RollApproval(
        0.0, 0.0, intent.quantity, need, open_quantity=opens
    )


def roll_orders(
    intent: wire.RollIntent, ok: RollApproval, by: str, account: str = MAIN
) -> tuple[wire.Order, wire.Order]:
    """(close the old contract, open the new one), each its own intent id (``<id>~1``,
    ``<id>~2``: ``ids.roll_leg``) so the engine follows them as two orders."""
    legs = [roll_leg(intent.intent_id, k) for k in (1, 2)]
    link = wire.OrderLink(roll=f"{intent.symbol}>{intent.roll_to}")
    base = wire.Order(
        order_id=str(OrderId(intent.strategy, legs[0])),
        intent_id=legs[0],
        strategy=intent.strategy,
        exchange=intent.exchange,
        symbol=intent.symbol,
        action=intent.action,
        quantity=ok.quantity,
        pricetype="MARKET",
        product=intent.product,
        price=0.0,
        trigger_price=0.0,
        approved_by=by,
        origin_ns=intent.origin_ns,
        exit=True,
        link=link,
        account=account,
    )
    opener = msgspec.structs.replace(
        base,
        order_id=str(OrderId(intent.strategy, legs[1])),
        intent_id=legs[1],
        symbol=intent.roll_to,
        action="SELL" if intent.action == "BUY" else "BUY",
        quantity=ok.open_quantity,
        exit=False,
    )
    return base, opener


@dataclass
class Leg:
    order_id: str  # the leg's order id (its children, if split, are ``<id>.<k>``)
    quantity: int
    filled: int = 0
    value: float = 0.0  # filled quantity x price, for the average
    ended: set[str] = field(default_factory=set)  # children that reached a final state
    parts: int = 1

    @property
    def done(self) -> bool:
        return len(self.ended) >= self.parts

    @property
    def avg(self) -> float:
        return self.value / self.filled if self.filled else 0.0


@dataclass
class Roll:
    strategy: str
    account: str
    exchange: str
    old: str
    new: str
    product: Product
    signed: int  # the position rolled: + long, - short (in the new contract's units)
    close: Leg
    open: Leg

    @property
    def label(self) -> str:
        side = "long" if self.signed > 0 else "short"
        return f"{self.old} -> {self.new}, {abs(self.signed)} {side}"


class RollWatch:
    """Rolls in flight, by the order ids of their legs, until each has an outcome."""

    def __init__(
        self,
        broker_net: Callable[[Key, str], int | None],
        book_net: Callable[[Key, str], int],
        emit: Callable[[wire.RiskEvent], None],
        close_old: Callable[[str, Key], None],
    ) -> None:
        self._broker_net = broker_net  # the broker's net of one position of one account
        self._book_net = book_net  # ours, over every book of that account
        self._emit = emit
        self._close_old = close_old  # a failed close leg: risk's exit manager closes it
        self.rolls: dict[str, Roll] = {}  # by intent id
        self._legs: dict[str, tuple[Roll, Leg]] = {}  # order id of each leg
        self.pending: list[Roll] = []  # both legs ended: waiting for the position book
        self.outcomes: dict[str, int] = {}

    def start(
        self, intent: wire.RollIntent, close: wire.Order, open_: wire.Order, parts: tuple[int, int]
    ) -> None:
        r = Roll(
            intent.strategy,
            close.account,
            intent.exchange,
            intent.symbol,
            intent.roll_to,
            intent.product,
            open_.quantity if open_.action == "BUY" else -open_.quantity,
            Leg(close.order_id, close.quantity, parts=parts[0]),
            Leg(open_.order_id, open_.quantity, parts=parts[1]),
        )
        self.rolls[intent.intent_id] = r
        self._legs[close.order_id] = (r, r.close)
        self._legs[open_.order_id] = (r, r.open)
        self._emit(self._event(r, "approved", f"roll {r.label}: close and open sent"))

    def _leg(self, order_id: str) -> tuple[Roll, Leg] | None:
        got = self._legs.get(order_id)
        if got is None:  # a part of a split leg
            try:
                oid = OrderId.parse(order_id)
            except ValueError:
                return None  # not one of ours in form: no leg of a roll
            if oid.child:
                got = self._legs.get(str(oid.whole))
        return got

    def on_fill(self, f: wire.Fill) -> None:
        got = self._leg(f.order_id) if self._legs else None
        if got is not None:
            got[1].filled += f.quantity
            got[1].value += f.quantity * f.price

    def on_update(self, u: wire.OrderUpdate) -> None:
        if self._legs and u.status in wire.TERMINAL_STATUSES:
            self.ended(u.order_id)

    def ended(self, order_id: str) -> None:
        """An order reached a final state (or was withdrawn before it reached the router)."""
        got = self._leg(order_id) if self._legs else None
        if got is None:
            return
        r, leg = got
        leg.ended.add(order_id)
        if r.close.done and r.open.done and r not in self.pending:
            self.pending.append(r)

    def step(self) -> None:
        """Settle the rolls whose legs have both ended (once a second, and in backtests
        after each step): the broker's book is read only then."""
        for r in list(self.pending):
            if self._settle(r):
                self.pending.remove(r)
                self._forget(r)

    def _settle(self, r: Roll) -> bool:
        closed = r.close.filled >= r.close.quantity
        opened = r.open.filled >= r.open.quantity
        if closed and opened:
            keys = [(r.exchange, r.old, r.product), (r.exchange, r.new, r.product)]
            theirs = [self._broker_net(k, r.account) for k in keys]
            if any(n is None for n in theirs):
                return False  # the book could not be read: try again next step
            ours = [self._book_net(k, r.account) for k in keys]
            spread = r.open.avg - r.close.avg
            prices = (
                f"closed {r.old} at {r.close.avg:.2f}, opened {r.new} at {r.open.avg:.2f} "
                f"(spread {spread:+.2f})"
            )
            if theirs == ours:
                self._emit(self._event(r, "confirmed", f"rolled {r.label}: {prices}", spread))
            else:
                self._emit(
                    self._event(
                        r,
                        "mismatch",
                        f"rolled {r.label} ({prices}), but the broker's book holds "
                        f"{theirs[0]} {r.old} and {theirs[1]} {r.new}, ours {ours[0]} and "
                        f"{ours[1]}",
                        spread,
                    )
                )
        elif closed:
            self._emit(
                self._event(
                    r,
                    "incomplete",
                    f"roll {r.label}: {r.old} closed at {r.close.avg:.2f} but {r.new} "
                    f"opened only {r.open.filled} of {r.open.quantity}: the rest is flat",
                )
            )
        elif opened:
            self._emit(
                self._event(
                    r,
                    "incomplete",
                    f"roll {r.label}: {r.new} opened but {r.old} closed only "
                    f"{r.close.filled} of {r.close.quantity}: closing the old contract",
                )
            )
            self._close_old(r.strategy, (r.exchange, r.old, r.product))
        else:
            self._emit(self._event(r, "failed", f"roll {r.label}: neither leg filled"))
        return True

    def _event(self, r: Roll, action: str, reason: str, value: float = 0.0) -> wire.RiskEvent:
        self.outcomes[action] = self.outcomes.get(action, 0) + 1
        return wire.RiskEvent(
            strategy=r.strategy,
            kind="roll",
            rule="roll",
            reason=reason,
            value=round(value, 2),
            action=action,
            order_ids=[r.close.order_id, r.open.order_id],
        )

    def _forget(self, r: Roll) -> None:
        for oid in (r.close.order_id, r.open.order_id):
            self._legs.pop(oid, None)
        self.rolls = {k: v for k, v in self.rolls.items() if v is not r}
