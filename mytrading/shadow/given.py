"""What the operator gave the strategies live through the day, to give the shadow too.

Risk records every trading state an operator's command set (``risk/core.py``
``on_command``: a pause, a resume, a stop, the kill switch) as an event of kind ``state``
or ``kill_switch`` with the rule ``trading_state``, at the market moment it took effect.
Those are read back here as the commands that set them, so the day's shadow can give
each to its own risk at the same moment (``Backtest(commands=...)``). States risk set by
itself (a limit's halt, a schedule, an order unknown at the broker) are not among them:
the shadow's risk, on the same files, sets its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mytrading.domain.refdata import IST
from mytrading.messaging import wire

STATES = ("active", "reducing", "halted")
KILL = ("on", "off", "flatten")


@dataclass(frozen=True)
class Given:
    """One operator's command as it took effect live."""

    at_ns: int  # market time
    command: wire.Command

    @property
    def target(self) -> str:
        """The strategy it was for, or "*" for the whole stack."""
        return self.command.target or "*"

    def applies_to(self, strategy: str) -> bool:
        return self.target in ("*", strategy)

    def row(self) -> dict[str, Any]:
        c = self.command
        what = "stop" if c.command == "stop" else f"{c.command.replace('_', ' ')} {c.value}"
        return {
            "at": datetime.fromtimestamp(self.at_ns / 1e9, IST).strftime("%H:%M:%S"),
            "target": self.target,
            "what": what,
            "reason": c.reason,
        }


def event_ns(market: str) -> int:
    """Market ns of a risk event row's market time (``read_events``: ``%Y-%m-%d
    %H:%M:%S``, IST)."""
    return (
        int(datetime.strptime(market, "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST).timestamp()) * 10**9
    )


def hms(ns: int) -> str:
    """Market ns as IST clock time, ``HH:MM:SS``."""
    return datetime.fromtimestamp(ns / 1e9, IST).strftime("%H:%M:%S")


def given_commands(rows: Iterable[tuple[Any, ...]]) -> list[Given]:
    """The operator's commands of risk's event rows (``risk.events.read_events``: market
    time as ``%Y-%m-%d %H:%M:%S``, strategy, kind, rule, threshold, value, action,
    reason, order ids), oldest first. A row of another kind or rule is not one; an
    action no command sets is skipped (a newer risk's, say), never guessed."""
    out: list[Given] = []
    for row in rows:
        market, strategy, kind, rule, action, reason = (
            row[0], row[1], row[2], row[3], row[6], row[7] or "")  # fmt: skip
        if rule != "trading_state" or kind not in ("state", "kill_switch"):
            continue
        at_ns = event_ns(market)
        target = "" if strategy in ("", "*") else strategy
        if kind == "kill_switch" and action in KILL:
            cmd = wire.Command("kill_switch", action, reason=reason)
        elif kind == "state" and action == "stop" and target:
            cmd = wire.Command("stop", "", reason=reason, target=target)
        elif kind == "state" and action in STATES:
            cmd = wire.Command("state", action, reason=reason, target=target)
        else:
            continue
        out.append(Given(at_ns, cmd))
    out.sort(key=lambda g: g.at_ns)
    return out
