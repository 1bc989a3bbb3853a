"""The order-state machine: every state an order of ours can be in, the moves allowed
between them, and what an ``OrderUpdate`` says of each.

``new``: durable, never handed to the broker; ``sent``: handed over, no answer yet (it may
or may not exist there); ``unknown``: it may or may not be at the broker and is never sent
again; the rest as the broker reports them (``partial``: open with a part filled). The
values are what the router's journal file holds.

A move not in ``ALLOWED`` asked by our own code is a bug (``IllegalMoveError``); a broker
reporting one (``complete`` back to ``open``) is refused by the tracker and said by its
caller. A split order (risk cut it into child orders) has one status for the whole,
``whole_status``, which the engine's and the signals daemon's books both read.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import cast

from mytrading.messaging import wire

# the reason an order cancelled before it left the router's queue ends with, followed by
# the id of the order that cancelled it (risk's own: ``<book>.risk-...``); the day's shadow
# reads it to say live's order never reached the broker
UNSENT = "cancelled before it was sent by "


class OrderState(enum.StrEnum):
    NEW = "new"
    SENT = "sent"
    OPEN = "open"
    TRIGGER_PENDING = "trigger pending"
    PARTIAL = "partial"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    @classmethod
    def read(cls, value: str) -> OrderState:
        """A state as a journal record holds it; one this version does not know (a newer
        release's) is read as ``unknown``: never sent again, and said."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


S = OrderState
FINAL_STATES: frozenset[OrderState] = frozenset({S.COMPLETE, S.CANCELLED, S.REJECTED})
WORKING_STATES: frozenset[OrderState] = frozenset({S.OPEN, S.TRIGGER_PENDING, S.PARTIAL})
# what a broker may report an order as (``openalgo/broker.broker_state`` maps to these)
BROKER_STATES: frozenset[OrderState] = WORKING_STATES | FINAL_STATES

# The moves an order's state may make; every state may also be kept again as it is (with
# more filled, a new reason, a modified order).
ALLOWED: dict[OrderState, frozenset[OrderState]] = {
    # never handed over: sent, or ended here (refused before sending, cancelled unsent;
    # an amend that cancelled an unsent order is complete)
    S.NEW: frozenset({S.SENT, S.REJECTED, S.CANCELLED, S.COMPLETE}),
    # handed over: what the broker answers, unknown, or back to new (certainly not sent:
    # it is queued again)
    S.SENT: BROKER_STATES | {S.UNKNOWN, S.NEW},
    S.OPEN: BROKER_STATES | {S.UNKNOWN},
    S.TRIGGER_PENDING: BROKER_STATES | {S.UNKNOWN},
    S.PARTIAL: BROKER_STATES | {S.UNKNOWN},
    # found at the broker (adopted), or given up on by it
    S.UNKNOWN: BROKER_STATES,
    S.COMPLETE: frozenset(),
    S.CANCELLED: frozenset({S.COMPLETE}),  # a fill that raced the cancel: the broker's word
    S.REJECTED: frozenset(),
}


class IllegalMoveError(ValueError):
    """A change of state no order can make."""


def may_move(old: OrderState, new: OrderState) -> bool:
    return new == old or new in ALLOWED[old]


# state -> the status an ``OrderUpdate`` carries: partial and sent say open, the rest
# their own value (one lookup: every update of every order asks it)
_PUBLISHED: dict[OrderState, wire.OrderStatus] = {
    s: "open" if s in (S.PARTIAL, S.SENT) else cast(wire.OrderStatus, s.value) for s in S
}


def published(state: OrderState) -> wire.OrderStatus:
    """The status an ``OrderUpdate`` carries for a state."""
    return _PUBLISHED[state]


def is_final(status: str) -> bool:
    """An update's status (or a state's value) says the order is over."""
    return status in wire.TERMINAL_STATUSES


def whole_status(statuses: Iterable[str], parts: int, filled: int) -> wire.OrderStatus:
    """The status of an order risk split into ``parts`` child orders, from the children's
    latest statuses (those heard of so far) and the quantity filled across them: final
    once every child is, ``complete`` only if every child completed (else ``cancelled``
    with something filled or a child cancelled, ``rejected`` otherwise); while not final,
    ``open`` if any child rests at the broker, else the first working child's status."""
    states = list(statuses)
    if len(states) >= parts and all(is_final(s) for s in states):
        if all(s == "complete" for s in states):
            return "complete"
        return "cancelled" if "cancelled" in states or filled else "rejected"
    if "open" in states:
        return "open"
    return wire.order_status(next((s for s in states if not is_final(s)), "open"))
