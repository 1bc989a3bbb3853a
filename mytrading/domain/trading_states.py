"""How a trading state reads to a person, from what risk publishes (its heartbeat's
``states``: ``risk/state.py``'s ``TradingStates.as_dict``): the state, why, who set it and
when, and the command that lifts it. One wording for ``status``, ``main.py risk``, the
dashboard and the monitor's alerts, so they never disagree."""

from __future__ import annotations

from typing import Any

_RANK = {"active": 0, "reducing": 1, "halted": 2}
SCHEDULE = "schedule"  # who risk names for a state a strategy's schedule set


def set_by(states: dict[str, Any], name: str) -> str:
    """Who set a strategy's state, as risk keeps it ("" for none)."""
    return str(((states.get("why") or {}).get(name) or {}).get("by", ""))


def effective(states: dict[str, Any], strategy: str) -> str:
    """The strategy's state as risk applies it: the stricter of its own and the stack's."""
    own = str((states.get("strategies") or {}).get(strategy, "active"))
    stack = str(states.get("stack", "active"))
    return own if _RANK.get(own, 0) >= _RANK.get(stack, 0) else stack


def why_of(states: dict[str, Any], target: str) -> str:
    """The reason, who and when of one target's state (``*``: the stack), as one phrase."""
    w = (states.get("why") or {}).get(target) or {}
    reason = str(w.get("reason") or "no reason given")
    by, at = str(w.get("by") or ""), str(w.get("at") or "")
    who = f"by {by}" if by else ""
    when = f"at {at[:16].replace('T', ' ')}" if at else ""
    return reason + (f" ({', '.join(x for x in (who, when) if x)})" if who or when else "")


def resume_command(states: dict[str, Any], strategy: str) -> str:
    """What lifts a strategy's state ("" when it is active): by itself for a hold on
    unknown orders, else the operator's command."""
    state = effective(states, strategy)
    if state == "active":
        return ""
    own = str((states.get("strategies") or {}).get(strategy, "active"))
    if _RANK.get(own, 0) < _RANK.get(state, 0):  # the stack decides
        return (
            "`main.py kill-switch off`"
            if str(states.get("stack")) == "halted"
            else "`main.py risk state active`"
        )
    hold = (states.get("holds") or {}).get(strategy)
    if hold and not hold.get("for_person"):
        return f"resumes by itself when {', '.join(hold.get('orders') or [])} is resolved"
    if set_by(states, strategy) == SCHEDULE:
        return (
            f"armed by its schedule at its next start (`main.py control resume {strategy}` "
            "trades now)"
        )
    return f"`main.py risk state active --strategy {strategy}`"


def describe(states: dict[str, Any], strategy: str) -> str:
    """``trading``, or e.g. ``HALTED: order x unknown ... (by router, at ...); resumes by
    itself when x is resolved``."""
    state = effective(states, strategy)
    if state == "active":
        return "trading"
    own = str((states.get("strategies") or {}).get(strategy, "active"))
    target = strategy if own == state else "*"
    head = state.upper() if target == strategy else f"{state.upper()} (the stack)"
    return f"{head}: {why_of(states, target)}; {resume_command(states, strategy)}"


def stack_line(states: dict[str, Any]) -> str:
    """The stack's state in one line ("" when it is active)."""
    stack = str(states.get("stack", "active"))
    if stack == "active":
        return ""
    cmd = "`main.py kill-switch off`" if stack == "halted" else "`main.py risk state active`"
    return f"STACK {stack.upper()}: {why_of(states, '*')}; {cmd} resumes it"
