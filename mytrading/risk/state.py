"""Trading states, for the whole stack and per strategy, and where they are kept.

``active``: everything risk allows passes. ``reducing``: only orders that shrink a
position pass (an exit, never an entry or a flip), counting what is working. ``halted``:
no entry passes from any source, and every working entry order of the books it covers is
cancelled at its broker; an order that only reduces a position still passes (protective
stops, targets, exits), as do cancellations. A strategy's effective state is the stricter
of its own and the stack's. The kill switch is the stack's state: on = halted, off =
active; ``flatten`` is on and also closes every position through risk's exits until the
broker's position book agrees they are flat (docs/risk.md, "Kill switch").

The states are persisted (atomically) so a restarted risk daemon keeps them; a file that
cannot be read fails safe, to a halted stack.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from mytrading.refdata import IST

State = Literal["active", "reducing", "halted"]
STATES: tuple[State, ...] = ("active", "reducing", "halted")
_RANK = {s: i for i, s in enumerate(STATES)}


class TradingStates:
    def __init__(
        self,
        stack: State = "active",
        strategies: dict[str, State] | None = None,
        flatten: bool = False,
    ):
        self.stack: State = stack
        self.strategies: dict[str, State] = dict(strategies or {})
        self.flatten = flatten and stack == "halted"  # kill-switch flatten in force

    def of(self, strategy: str) -> State:
        own = self.strategies.get(strategy, "active")
        return own if _RANK[own] > _RANK[self.stack] else self.stack

    def set(self, target: str, state: State) -> None:
        """``target`` "" or "*" is the whole stack, else one strategy."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        if target in ("", "*"):
            self.stack = state
            if state != "halted":
                self.flatten = False
        elif state == "active":
            self.strategies.pop(target, None)
        else:
            self.strategies[target] = state

    @property
    def any_halted(self) -> bool:
        """The stack or any one book is HALTED (its working entries must be cancelled)."""
        return self.stack == "halted" or "halted" in self.strategies.values()

    @property
    def kill_switch(self) -> bool:
        return self.stack == "halted"

    @property
    def kill_mode(self) -> str:
        """off, on, or flatten."""
        return "flatten" if self.flatten else "on" if self.stack == "halted" else "off"

    def as_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "strategies": dict(self.strategies), "flatten": self.flatten}


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[TradingStates, str]:
        """(states, problem). An unreadable file fails safe: the stack is halted."""
        try:
            data = json.loads(self.path.read_text())
            stack = data["stack"]
            strategies = data.get("strategies", {})
            if stack not in STATES or not isinstance(strategies, dict):
                raise ValueError(f"bad content {data!r}")
            for name, st in strategies.items():
                if st not in STATES:
                    raise ValueError(f"strategy {name}: bad state {st!r}")
            return TradingStates(stack, strategies, bool(data.get("flatten", False))), ""
        except FileNotFoundError:
            return TradingStates(), ""
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return TradingStates("halted"), f"{self.path} is unreadable ({exc}); stack HALTED"

    def save(self, states: TradingStates, reason: str) -> None:
        body = {**states.as_dict(), "reason": reason, "at": datetime.now(IST).isoformat()}
        write_atomic(self.path, body)


class MarksStore:
    """The day's trailing-stop peaks and fired one-shot triggers (``PostTrade.day_marks``),
    rewritten whenever they change (at most once a second)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.saved: dict[str, Any] | None = None

    def load(self) -> tuple[dict[str, Any], str]:
        """(marks, problem); no file is no marks, an unreadable one is a problem to log
        (the marks then restart from the P&L, as before they were kept)."""
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise ValueError(f"bad content {data!r}")
            return data, ""
        except FileNotFoundError:
            return {}, ""
        except (OSError, ValueError) as exc:
            return {}, f"{self.path} is unreadable ({exc})"

    def save(self, marks: dict[str, Any]) -> None:
        if marks != self.saved:
            write_atomic(self.path, marks)
            self.saved = marks


def write_atomic(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)  # atomic: a crash never leaves half a file
