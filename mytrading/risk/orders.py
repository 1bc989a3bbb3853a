"""What an approval and a post-trade trigger turn into, shared by the risk daemon and the
backtest (``backtest/risk.py``), so both send the same orders for the same decisions.

* ``approved_order``: the ``Order`` for an intent that ``rules.check`` approved;
* ``children``: the orders that go to the broker for it, each counted as working in the
  book (a new order split at the freeze quantity, a cancel for every child);
* ``plan``: the positions a trigger closes, the action reported, and the trading state
  it sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import msgspec
import structlog

from mytrading.domain.accounts import MAIN
from mytrading.domain.ids import Book, OrderId
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.limits import Limits
from mytrading.risk.margin import MarginTable
from mytrading.risk.monitor import Key, PostTrade, Trigger
from mytrading.risk.roll import RollApproval, check_roll, roll_orders
from mytrading.risk.rules import (
    Approval,
    Rejection,
    check,
    check_cancel,
    closes,
    ref_order_id,
    split,
)

log = structlog.get_logger("risk")


def approved_order(
    msg: wire.PricedIntent | wire.CancelIntent,
    ok: Approval,
    book: RiskBook,
    by: str,
    account: str = MAIN,
) -> wire.Order:
    """The order for an approved intent, at the approved (tick-rounded) prices and size:
    a new order, a modify or a cancel, as the intent's type says."""
    return wire.Order(
        order_id=str(OrderId(msg.strategy, msg.intent_id)),
        intent_id=msg.intent_id,
        strategy=msg.strategy,
        exchange=msg.exchange,
        symbol=msg.symbol,
        action=msg.action,
        quantity=ok.quantity,
        pricetype="MARKET" if isinstance(msg, wire.CancelIntent) else msg.pricetype,
        product=msg.product,
        price=ok.price,
        trigger_price=ok.trigger,
        approved_by=by,
        origin_ns=msg.origin_ns,
        op=OP[type(msg)],
        ref_order_id=ref_order_id(msg),
        # an exit only while no working exit covers it already: one approved against the
        # same position as another (a burst of webhook SELLs, the router down) is an entry,
        # cancelled by a halt (the simulator's seed 100 at 180x: three SELLs of a long 65
        # approved as exits, the kill switch then cancelled the BUYs between them, and two
        # went short after the switch)
        exit=closes(book, (msg.strategy, msg.exchange, msg.symbol), msg, ref_order_id(msg)),
        link=msg.link if isinstance(msg, wire.PlaceIntent) else None,
        account=account,
        bar_ns=msg.bar_ns,
        fill_of=msg.fill_of,
        decided_ns=msg.decided_ns,
    )


def children(
    base: wire.Order, book: RiskBook, refdata: RefData, limits: Limits
) -> list[wire.Order]:
    """The orders that go to the router for one approved order, counted as working:
    a new order split at the freeze quantity, a modify as is, a cancel for every
    child of the order it cancels. (A follower's cancels come already addressed.)"""
    key = (base.strategy, base.exchange, base.symbol)
    sign = 1 if base.action == "BUY" else -1
    if base.op == "modify":  # the working quantity becomes the new one
        book.on_approved(base.ref_order_id, key, sign * base.quantity)
        return [base]
    if base.op == "cancel":
        if Book.parse(base.strategy).follower:
            return [base]  # a follower's: the mirror addressed it to one working order
        targets = book.children(base.ref_order_id)
        if len(targets) == 1:
            cancels = [msgspec.structs.replace(base, ref_order_id=targets[0])]
        else:
            whole = OrderId.parse(base.order_id)
            cancels = [
                msgspec.structs.replace(base, order_id=str(whole.part(k)), ref_order_id=t)
                for k, t in enumerate(targets, 1)
            ]
        for c in cancels:
            book.on_cancel(c.order_id, c.ref_order_id)
        return cancels
    qtys = split(base.quantity, refdata.instrument(base.exchange, base.symbol), limits)
    orders = [base]
    if len(qtys) > 1:
        oid = OrderId.parse(base.order_id)
        orders = [
            msgspec.structs.replace(
                base, order_id=str(oid.part(k)), quantity=q, part=k, parts=len(qtys)
            )
            for k, q in enumerate(qtys, 1)
        ]
    for o in orders:
        book.on_approved(o.order_id, key, sign * o.quantity, entry=not o.exit)
    if len(orders) > 1:
        log.info("split", order=base.order_id, children=qtys)
    return orders


# what the router is asked to do for each kind of intent
OP: dict[type[wire.Msg], wire.OrderOp] = {
    wire.PlaceIntent: "place",
    wire.AmendIntent: "modify",
    wire.CancelIntent: "cancel",
}


def decide(
    msg: wire.Intent,
    book: RiskBook,
    refdata: RefData,
    limits: Limits,
    market_now: datetime,
    wall_ns: int,
    margins: MarginTable | None,
    account: str = MAIN,
    speed: float = 1.0,
    market_ns: int = -1,
) -> Rejection | Approval:
    """The rules for one intent: a roll's pair rules (``risk/roll.py``), else ``check``.

    An order that turns a position round is two orders to risk: the closing part is an
    exit, the opening part an entry. Both pass: one order goes, as asked. The opening
    part refused (after the entry window, over a cap, without the margin, with the book
    REDUCING or HALTED): the closing part alone is judged, as an exit, and goes if it
    passes (the approval names the refusal in ``refused_open``). A position is never
    held overnight because its reversal came after the entry window."""
    if isinstance(msg, wire.RollIntent):
        return check_roll(msg, book, refdata, limits, market_now, wall_ns, margins, account)
    if isinstance(msg, wire.CancelIntent):
        return check_cancel(msg, book)
    got = check(msg, book, refdata, limits, market_now, wall_ns, margins, account, speed, market_ns)
    if isinstance(got, Approval) or got.rule in WHOLE_ONLY:
        return got
    close = closing_part(msg, book.positions.get((msg.strategy, msg.exchange, msg.symbol), 0))
    if close is None:
        return got
    alone = check(close, book, refdata, limits, market_now, wall_ns, margins, account)
    if isinstance(alone, Rejection):
        return got  # the whole intent's reason: the closing part was not the problem
    return msgspec.structs.replace(alone, refused_open=got)


WHOLE_ONLY = frozenset({"duplicate_intent", "stale_intent", "not_working", "split_modify"})


def closing_part(msg: wire.PricedIntent, pos: int) -> wire.PlaceIntent | None:
    """The part of a new order that closes ``pos`` when the order turns it round (a
    sell of 130 against a long 65: a sell of 65); None for any other intent."""
    if not isinstance(msg, wire.PlaceIntent) or msg.sizing or not pos:
        return None
    signed = msg.quantity if msg.action == "BUY" else -msg.quantity
    if pos * signed >= 0 or abs(signed) <= abs(pos):
        return None
    return msgspec.structs.replace(msg, quantity=abs(pos))


def part_rejected_event(msg: wire.Intent, ok: Approval, r: Rejection) -> wire.RiskEvent:
    """The opening part of a reversal refused; its closing part (``value``) goes."""
    return wire.RiskEvent(
        strategy=msg.strategy,
        kind="part_rejected",
        rule=r.rule,
        reason=(
            f"the opening {msg.quantity - ok.quantity} of a reversal: {r.reason}; "
            f"the closing {ok.quantity} goes"
        ),
        intent_id=msg.intent_id,
        threshold=r.threshold,
        value=float(ok.quantity),
        action="close_only",
    )


def roll_children(
    msg: wire.RollIntent,
    ok: RollApproval,
    book: RiskBook,
    refdata: RefData,
    limits: Limits,
    by: str,
    account: str = MAIN,
) -> tuple[wire.Order, wire.Order, list[wire.Order], list[wire.Order]]:
    """An approved roll's two orders, and the orders that go out for each (split at the
    freeze quantity like any order, and counted as working)."""
    close, open_ = roll_orders(msg, ok, by, account)
    return (
        close,
        open_,
        children(close, book, refdata, limits),
        children(open_, book, refdata, limits),
    )


@dataclass(frozen=True)
class Plan:
    jobs: list[tuple[str, Key]]  # (book, position) to close
    action: str  # as reported in the risk event
    state: tuple[str, str] | None  # (target, state) to set: "*" halted, or a strategy reducing


def plan(t: Trigger, post: PostTrade) -> Plan:
    """A stack limit halts everything and closes every position; a strategy's P&L limit
    sets it REDUCING (no re-entry today) and closes its positions; a leg limit closes the
    leg; square-off and Supertrend exits close what they name."""
    if t.strategy == "*":
        jobs = [(s, k) for s in list(post.books) for k in post.open_keys(s)]
        return Plan(jobs, "halt_and_close_all", ("*", "halted"))
    state = None
    if t.kind in ("max_loss", "max_profit", "trailing_stop", "greek_limit"):
        state = (t.strategy, "reducing")
    action = {"leg_stop": "close_leg", "leg_target": "close_leg"}.get(t.kind, "close")
    return Plan([(t.strategy, k) for k in t.keys], action, state)


def rejected_event(
    strategy: str, intent_id: str, r: Rejection, decided_ns: int = 0, bar_ns: int = 0
) -> wire.RiskEvent:
    """A refusal; ``decided_ns``: when its intent was decided (market ns; kept in the
    event's detail, as ``{"decided_ns": ...}``): a refusal risk made after holding the
    intent (waiting for funds, for positions) is then still found at the decision;
    ``bar_ns``: the start of the bar that decided it (``"bar_ns"`` in the detail; 0: not
    a bar's decision): the day's shadow finds the refusal of a decision on that bar
    however late live made it (its bars held for a warm-up, handed at once after)."""
    said = {k: v for k, v in (("decided_ns", decided_ns), ("bar_ns", bar_ns)) if v}
    return wire.RiskEvent(
        strategy=strategy,
        kind="rejected",
        rule=r.rule,
        reason=r.reason,
        intent_id=intent_id,
        threshold=r.threshold,
        value=r.value,
        action="reject",
        detail=json.dumps(said) if said else "",
    )


def trigger_event(t: Trigger, action: str) -> wire.RiskEvent:
    return wire.RiskEvent(
        strategy=t.strategy,
        kind="trigger",
        rule=t.kind,
        reason=t.reason,
        threshold=t.threshold,
        value=t.value,
        action=action,
    )
