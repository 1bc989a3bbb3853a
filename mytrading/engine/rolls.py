"""Futures roll-over on the engine's side: when a strategy's future is due to roll, the
roll order, the two orders it becomes, and moving the strategy's data to the new month.

A strategy with ``roll_days`` > 0 (its params; 0, the default, never rolls) holds the
near future until ``roll_days`` trading days before its expiry. From then on (checked
every ``CHECK_S`` of market time, and at once after a start or restart):

* a position in that future is rolled: one ``wire.RollIntent`` (``BaseStrategy.roll``)
  that risk approves or refuses as a pair (``risk/roll.py``); the engine follows the two
  orders risk makes of it (``<intent>~1`` closes, ``<intent>~2`` opens) like any others;
* its subscriptions on the old contract move to the new one, the indicators fed by them
  are rebuilt from the new contract's history (the warm-up the strategy asked for), and
  ``on_roll(old, new, ok)`` tells the strategy, which moves its own references;
* ``future(u, "near")`` names the next month, so new entries go there.

Nothing rolls twice: a roll waits while the strategy has orders working in either
contract (after an engine restart mid-roll, the legs come back as working orders), risk
refuses a roll of a position that is already rolling, and a refused or failed roll is
tried again only after ``RETRY_S``.
"""

from __future__ import annotations

from datetime import date, timedelta

from mytrading.domain import Action
from mytrading.domain.ids import roll_leg, roll_of
from mytrading.domain.refdata import RefData, RefDataError, future_symbol
from mytrading.engine.parts import OpenOrder, Parts, PendingRoll
from mytrading.messaging import wire

NS = 1_000_000_000
CHECK_S = 30  # market seconds between checks
RETRY_S = 300  # a roll that did not happen is tried again after this long


def due(refdata: RefData, exchange: str, symbol: str, today: date, roll_days: int) -> bool:
    """A future whose expiry is ``roll_days`` trading days away or less (never for 0)."""
    if roll_days <= 0:
        return False
    try:
        inst = refdata.instrument(exchange, symbol)
    except RefDataError:
        return False
    if inst.kind != "FUT" or inst.expiry is None:
        return False
    return refdata.calendar.trading_days_left(exchange, today, inst.expiry) <= roll_days


def next_contract(refdata: RefData, exchange: str, symbol: str, today: date, roll_days: int) -> str:
    """The first monthly future after ``symbol`` that is not itself due to roll."""
    inst = refdata.instrument(exchange, symbol)
    u = refdata.underlying(inst.underlying)
    expiry = inst.expiry
    assert expiry is not None
    for _ in range(3):
        expiry = refdata.calendar.near_future_expiry(u, expiry + timedelta(days=1))
        sym = future_symbol(inst.underlying, expiry)
        if not due(refdata, exchange, sym, today, roll_days):
            return sym
    raise RefDataError(f"no listed month after {symbol} outside {roll_days} days of expiry")


class Rolls:
    """The strategy's side (a part of ``StrategyContext``, like ``Brackets``: it uses the
    context's ``position``, ``working``, ``send`` and order book, and names no type
    above it): ``roll`` and the legs' fate."""

    def __init__(self, ctx: Parts) -> None:
        self.ctx = ctx

    def roll(self, exchange: str, symbol: str, to: str = "") -> str:
        """Roll the whole position in the future ``symbol`` into ``to`` (default: the
        next month outside the roll window): one intent, approved or refused by risk as
        a pair; the same lots, the same direction, the position's product. Returns the
        roll's intent id ("" if it could not be sent)."""
        pos = self.ctx.position(exchange, symbol)
        if pos == 0:
            raise ValueError(f"roll {symbol}: there is no position to roll")
        new = to or next_contract(
            self.ctx.refdata,
            exchange,
            symbol,
            self.ctx.today(),
            max(1, self.ctx.strategy.params.roll_days),
        )
        if self.ctx.working(exchange, symbol) or self.ctx.working(exchange, new):
            raise ValueError(f"roll {symbol}: orders are working in {symbol} or {new}")
        product = self.ctx.products.get((exchange, symbol), "NRML")
        sides: tuple[Action, Action] = ("SELL", "BUY") if pos > 0 else ("BUY", "SELL")
        close, open_ = sides
        rid = self.ctx.send(
            wire.RollIntent(
                intent_id="",
                strategy=self.ctx.name,
                exchange=exchange,
                symbol=symbol,
                action=close,
                quantity=abs(pos),
                product=product,
                origin_ns=self.ctx.origin_ns,
                roll_to=new,
            )
        )
        if not rid:
            return ""
        lots = abs(pos) // self.ctx.lot_size(exchange, symbol)
        legs = (roll_leg(rid, 1), roll_leg(rid, 2))
        for leg, sym, action, qty in (
            (legs[0], symbol, close, abs(pos)),
            (legs[1], new, open_, lots * self.ctx.lot_size(exchange, new)),
        ):
            self.ctx.open_orders[leg] = OpenOrder(
                "", leg, exchange, sym, action, qty, "new", product=product
            )
        self.ctx.rolls[rid] = PendingRoll((exchange, symbol), (exchange, new), legs)
        self.ctx.log.info("roll sent", old=symbol, new=new, qty=pos, intent=rid)
        return rid

    def roll_leg_ended(self, intent_id: str, status: str) -> None:
        rid = roll_of(intent_id)
        r = self.ctx.rolls.get(rid)
        if r is None or intent_id not in r.legs:
            return
        r.ended[intent_id] = status
        if len(r.ended) == 2:
            del self.ctx.rolls[rid]
            self.ctx.rolls_ended.append(r)

    def roll_refused(self, rid: str) -> list[str]:
        """Risk (or the engine) refused the roll as a whole: both legs end, unsent."""
        r = self.ctx.rolls.get(rid)
        return [leg for leg in r.legs if leg in self.ctx.open_orders] if r else []
