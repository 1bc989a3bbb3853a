"""From an alert's instruction to intents for risk, the only way to an order: sizes in
lots become quantities, a target position becomes the difference from what is held and
working (OpenAlgo's smart-order rule), and the strategy's time windows decide whether it
may go at all.

Windows (IST, market time): an instruction that opens or grows a position is taken from
``start`` up to, not including, ``end``; one that reduces is taken from ``start`` up to,
not including, ``squareoff``. An intraday strategy is flattened at ``squareoff`` by the
stack itself (``squareoff_due``), whatever alerts arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from mytrading import domain
from mytrading.domain import Action
from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.webhook.alerts import Instruction
from mytrading.webhook.model import StrategyFields


def grows(position: int, target: int) -> bool:
    """Going from ``position`` to ``target`` opens, adds or turns round."""
    return target != 0 and (
        position == 0 or (target > 0) != (position > 0) or abs(target) > abs(position)
    )


def refusal(fields: StrategyFields, opens: bool, now: datetime) -> str:
    """Why an instruction may not go now ("" if it may)."""
    t = now.astimezone(IST).time()
    if t < fields.start:
        return f"before the strategy's start ({fields.start:%H:%M} IST)"
    if opens and t >= fields.end:
        return f"entries end at {fields.end:%H:%M} IST"
    if t >= fields.squareoff:
        return f"after the strategy's square-off ({fields.squareoff:%H:%M} IST)"
    return ""


def to_intents(
    name: str,
    instr: Instruction,
    lot_size: int,
    position: int,
    working: int,
    next_id: Callable[[], str],
    origin_ns: int = 0,
) -> tuple[list[wire.PlaceIntent], bool]:
    """(the intents, whether it opens or grows) for one instruction, given the strategy's
    position in the contract and the signed quantity still working there."""
    if instr.kind == "order":
        qty = instr.lots * lot_size
        signed = qty if instr.action == "BUY" else -qty
        opens = grows(position + working, position + working + signed)
        return [_intent(name, instr, instr.action, qty, next_id(), origin_ns)], opens
    target = instr.lots * lot_size
    diff = target - position - working
    opens = grows(position + working, target)
    if diff == 0:
        return [], opens
    action: Action = "BUY" if diff > 0 else "SELL"
    return [_intent(name, instr, action, abs(diff), next_id(), origin_ns)], opens


def _intent(
    name: str, instr: Instruction, action: Action, qty: int, intent_id: str, origin_ns: int
) -> wire.PlaceIntent:
    return wire.PlaceIntent(
        intent_id=intent_id,
        strategy=name,
        exchange=instr.exchange,
        symbol=instr.symbol,
        action=action,
        quantity=qty,
        pricetype="MARKET",
        product=instr.product,
        origin_ns=origin_ns,
    )


def squareoff_due(fields: StrategyFields, now: datetime, done_on: date | None) -> bool:
    """An intraday strategy is flattened once a day, at or after its square-off time (after
    a restart past that time too: ``done_on`` is the last day it was done)."""
    local = now.astimezone(IST)
    return fields.intraday and local.time() >= fields.squareoff and done_on != local.date()


def flatten(
    name: str,
    positions: dict[tuple[str, str, str], int],
    next_id: Callable[[], str],
) -> list[wire.PlaceIntent]:
    """An intent closing each open position (exchange, symbol, product) at market."""
    out = []
    for (ex, sym, product), qty in sorted(positions.items()):
        if qty:
            out.append(
                wire.PlaceIntent(
                    intent_id=next_id(),
                    strategy=name,
                    exchange=ex,
                    symbol=sym,
                    action="SELL" if qty > 0 else "BUY",
                    quantity=abs(qty),
                    pricetype="MARKET",
                    product=domain.product(product),
                )
            )
    return out
