"""The strategies' changes through the day (enabled, disabled, new parameters), to give
the shadow at the same moments.

The command layer (``control enable|disable|params``) writes config/strategies.toml and
gives risk a command; risk says it to the engine, which takes it up at once (a strategy
made again with new parameters, warmed up from history as at a start), and keeps it on
its record: an event of kind ``control``, rule ``strategy``, its action the change and,
for new parameters, its ``detail`` the values before and after (JSON). The shadow starts
each strategy with the parameters in force at the open: those of config/strategies.toml
now, with the day's changes undone from the last to the first; and makes each change at
its moment, as the engine did (``Backtest``'s ``StrategyChange``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mytrading.backtest.loop import StrategyChange
from mytrading.domain.refdata import IST
from mytrading.engine.strategy import BaseStrategy
from mytrading.shadow.given import event_ns

ACTIONS = ("enable", "disable", "params")


@dataclass(frozen=True)
class Switch:
    """One change of a strategy, as the engine took it up live."""

    at_ns: int  # market time
    strategy: str
    action: str  # enable | disable | params
    before: dict[str, Any] = field(default_factory=dict)  # params: the changed keys' old
    after: dict[str, Any] = field(default_factory=dict)  # ... and new values
    known: bool = True  # params: the values were recorded (an earlier release did not)

    def row(self) -> dict[str, Any]:
        return {
            "at": datetime.fromtimestamp(self.at_ns / 1e9, IST).strftime("%H:%M:%S"),
            "strategy": self.strategy,
            "action": self.action,
            **({"before": self.before, "after": self.after} if self.action == "params" else {}),
        }


def strategy_switches(rows: Iterable[tuple[Any, ...]]) -> list[Switch]:
    """The strategy changes of risk's event rows (``risk.events.read_events``), oldest
    first."""
    out: list[Switch] = []
    for row in rows:
        market, strategy, kind, rule, action = row[0], row[1], row[2], row[3], row[6]
        if kind != "control" or rule != "strategy" or action not in ACTIONS:
            continue
        at_ns = event_ns(market)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        known = True
        if action == "params":
            try:
                got = json.loads(row[9] if len(row) > 9 and row[9] else "")
                before, after = dict(got["before"]), dict(got["after"])
            except (ValueError, KeyError, TypeError):
                known = False
        out.append(Switch(at_ns, strategy, action, before, after, known))
    out.sort(key=lambda w: w.at_ns)
    return out


@dataclass
class Plan:
    """What the shadow runs: each strategy at the open (its parameters, or not running),
    and the changes at their moments."""

    at_open: list[tuple[type[BaseStrategy], dict[str, Any]]]
    changes: list[tuple[int, StrategyChange]]
    notes: list[str]


def plan(now: Iterable[tuple[type[BaseStrategy], dict[str, Any]]], switches: list[Switch]) -> Plan:
    """From the strategies as they are now (their parameters in force: config now) and
    the day's switches, the strategies at the open and each change."""
    at_open: list[tuple[type[BaseStrategy], dict[str, Any]]] = []
    changes: list[tuple[int, StrategyChange]] = []
    notes: list[str] = []
    for cls, params in now:
        mine = [w for w in switches if w.strategy == cls.name]
        unknown = [w for w in mine if w.action == "params" and not w.known]
        if unknown:
            at = ", ".join(w.row()["at"] for w in unknown)
            notes.append(f"{cls.name}: parameter change(s) at {at} have no record of their "
                         "values (made by an earlier release): the shadow runs on the "
                         "parameters in force now through the day")  # fmt: skip
            mine = [w for w in mine if w.known]
        # backwards from now to the open
        running = not (mine and mine[-1].action == "disable")
        p = dict(params)
        for w in reversed(mine):
            if w.action == "params":
                p = _with(p, w.before)
            else:
                running = w.action == "disable"  # before a disable it ran; before an enable not
        if running:
            at_open.append((cls, dict(p)))
        # forwards: each change with the parameters after it
        for w in mine:
            if w.action == "params":
                p = _with(p, w.after)
                changes.append((w.at_ns, StrategyChange(cls, dict(p))))
            elif w.action == "enable":
                changes.append((w.at_ns, StrategyChange(cls, dict(p))))
            else:
                changes.append((w.at_ns, StrategyChange(cls, None)))
    return Plan(at_open, changes, notes)


def _with(params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``params`` with ``values`` set (a None: the key unset, its default in force)."""
    out = dict(params)
    for k, v in values.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out
