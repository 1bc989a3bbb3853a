"""Live orders whose placement reply was lost: unknown at the broker until the router
found them there (adopted) or knew them absent, read back from risk's events.

The router says an order unknown to risk, which halts its strategy until the order's
fate is known (``risk/core.py`` ``_unknown``); risk keeps both moments as events of rule
``unknown_order`` naming the order. The shadow's broker never loses a reply, so what the
halt kept live from doing is one-sided there, and a matched trade whose order was lost
and adopted is named so (its fill was the broker's all along; only its news came late).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mytrading.domain.ids import OrderId
from mytrading.shadow.given import event_ns, hms

RULE = "unknown_order"


@dataclass(frozen=True)
class Lost:
    order_id: str
    since_ns: int  # market ns risk halted the strategy for it
    until_ns: int = 0  # market ns its fate was known (0: not that day)
    fate: str = ""  # the router's words: found at the broker as ..., or certainly absent


def lost_replies(rows: Iterable[tuple[Any, ...]]) -> dict[str, Lost]:
    """The day's lost replies by our order id, from risk's event rows
    (``risk.events.read_events``: market time, strategy, kind, rule, threshold, value,
    action, reason, order ids, ...), in any order."""
    marks = sorted(
        (event_ns(r[0]), str(r[6]), str(r[7] or ""), list(r[8] or ()))
        for r in rows
        if r[2] == "state" and r[3] == RULE
    )
    out: dict[str, Lost] = {}
    for ns, action, reason, oids in marks:
        for oid in oids:
            got = out.get(oid)
            if action == "halted" and got is None:
                out[oid] = Lost(oid, ns)
            elif action != "halted" and got is not None and not got.until_ns:
                fate = reason.removeprefix(f"order {oid} ").removesuffix(": resumed by itself")
                out[oid] = Lost(oid, got.since_ns, ns, fate)
    return out


def lost_cause(lost: dict[str, Lost], strategy: str, intent_id: str) -> str:
    """A live trade's lost reply, said ("" when none of its orders lost one; a split
    order's children are each an order of the intent: ``domain/ids.py``)."""
    for oid, got in lost.items():
        if _ours(oid, strategy) == intent_id:
            until = (
                f"until {hms(got.until_ns)} ({got.fate or 'resolved'})"
                if got.until_ns
                else "past the day's end"
            )
            return f"its reply lost live: unknown at the broker from {hms(got.since_ns)} {until}"
    return ""


def _ours(oid: str, strategy: str) -> str:
    """The intent of one of ``strategy``'s own orders (a follower's copy: "")."""
    try:
        got = OrderId.parse(oid)
    except ValueError:
        return ""
    return got.intent if got.strategy == strategy and not got.account else ""


def lost_while(
    lost: dict[str, Lost], sent: dict[str, int], strategy: str, at_ns: int, end_ns: int
) -> str:
    """A one-sided decision of ``strategy`` at ``at_ns`` made while one of its live
    orders was lost: from the order's hand-over to the broker (``sent``: market ns by
    intent) until its fate was known (the day's ``end_ns`` if never). Live's strategy
    waited on that order's news, then was halted for it, while the shadow's knew at once."""
    for oid, got in lost.items():
        intent = _ours(oid, strategy)
        if not intent:
            continue
        start = min(sent.get(intent, got.since_ns), got.since_ns)
        until = got.until_ns or end_ns
        if start <= at_ns <= until:
            return (
                f"live's order {oid} had its reply lost (sent {hms(start)}, unknown at the "
                f"broker from {hms(got.since_ns)}"
                + (f" until {hms(got.until_ns)})" if got.until_ns else " to the day's end)")
            )
    return ""
