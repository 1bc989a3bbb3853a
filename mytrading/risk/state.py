"""Trading states, for the whole stack and per strategy, and where they are kept.

``active``: everything risk allows passes. ``reducing``: only orders that shrink a
position pass (an exit, never an entry or a flip), counting what is working. ``halted``:
no entry passes from any source, and every working entry order of the books it covers is
cancelled at its broker; an order that only reduces a position still passes (protective
stops, targets, exits), as do cancellations. A strategy's effective state is the stricter
of its own and the stack's. The kill switch is the stack's state: on = halted, off =
active; ``flatten`` is on and also closes every position through risk's exits until the
broker's position book agrees they are flat (docs/risk.md, "Kill switch"). A strategy
*stopped* by an operator is halted and its positions closed the same way (``stopping``
until its book is flat); resuming it ends both.

Each state set carries its *why*: the reason, who set it (the operator, a limit, the
router) and when, so ``status`` can say what holds a strategy and what lifts it.

A strategy halted because one of its orders is unknown at the broker (its reply lost) is
*held* (``Hold``): it returns by itself to the state it had once every such order is
resolved (found at the broker, or certainly absent). More than ``max_unknown_halts``
of them in a day keep it halted for a person; an operator's command on the strategy
ends the hold (the operator's word stands).

The states are persisted (atomically) so a restarted risk daemon keeps them; a file that
cannot be read fails safe, to a halted stack.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from mytrading import hosttime
from mytrading.domain.ids import Book
from mytrading.domain.refdata import IST

State = Literal["active", "reducing", "halted"]
STATES: tuple[State, ...] = ("active", "reducing", "halted")
_RANK = {s: i for i, s in enumerate(STATES)}


@dataclass
class Why:
    """Why a target (a strategy, or ``*`` the stack) is in its state."""

    reason: str
    by: str = ""  # who set it: the operator's command, "risk" (a limit), "router"
    at: str = ""  # when, ISO time in IST


@dataclass
class Hold:
    """A strategy halted for its unknown orders: what it returns to once they resolve."""

    before: State  # its own state when the first of them halted it
    orders: list[str] = field(default_factory=list)  # its unknown orders, by our id
    since: str = ""
    for_person: bool = False  # too many today: it stays halted when they resolve
    # why it was in ``before`` (a limit's REDUCING, an operator's pause): given back with
    # the state, so what it returns to still says who set it and why
    before_why: Why | None = None

    def __post_init__(self) -> None:
        if isinstance(self.before_why, dict):  # read back from the file
            self.before_why = Why(**self.before_why)


class TradingStates:
    def __init__(
        self,
        stack: State = "active",
        strategies: dict[str, State] | None = None,
        flatten: bool = False,
        why: dict[str, Why] | None = None,
        holds: dict[str, Hold] | None = None,
        stopping: list[str] | None = None,
    ):
        self.stack: State = stack
        self.strategies: dict[str, State] = dict(strategies or {})
        self.flatten = flatten and stack == "halted"  # kill-switch flatten in force
        self.why: dict[str, Why] = dict(why or {})  # by target ("*": the stack)
        self.holds: dict[str, Hold] = dict(holds or {})  # by strategy
        # stopped by an operator, halted, and still closing its positions through risk's
        # exits (``main.py control stop``): until its book is flat, even after a restart
        self.stopping: set[str] = set(stopping or ()) & {
            n for n, st in self.strategies.items() if st == "halted"
        }

    def of(self, strategy: str) -> State:
        """A book's state: its own, no better than the stack's; a follower book's no
        better than its lead's either (a lead REDUCING after its max loss must not have
        its followers opened to match it: the simulator's seed 63 saw a follower sold
        short to converge on a lead position that the lead's exit was closing)."""
        own = self.strategies.get(strategy, "active")
        if "@" in strategy:
            lead = self.strategies.get(Book.parse(strategy).strategy, "active")
            own = own if _RANK[own] >= _RANK[lead] else lead
        return own if _RANK[own] > _RANK[self.stack] else self.stack

    def set(self, target: str, state: State, reason: str = "", by: str = "") -> None:
        """``target`` "" or "*" is the whole stack, else one strategy; ``reason`` and
        ``by`` are kept as its why (an active target keeps none)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        key = "*" if target in ("", "*") else target
        if key == "*":
            self.stack = state
            if state != "halted":
                self.flatten = False
        elif state == "active":
            self.strategies.pop(target, None)
            self.stopping.discard(target)
        else:
            self.strategies[target] = state
            if state != "halted":
                self.stopping.discard(target)
        if state == "active":
            self.why.pop(key, None)
        else:
            self.why[key] = Why(reason or f"set {state}", by, hosttime.now(IST).isoformat())

    def own(self, strategy: str) -> State:
        """The strategy's own state (the stack's left out)."""
        return self.strategies.get(strategy, "active")

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
        return {
            "stack": self.stack,
            "strategies": dict(self.strategies),
            "flatten": self.flatten,
            "why": {k: asdict(w) for k, w in self.why.items()},
            "holds": {k: asdict(h) for k, h in self.holds.items()},
            **({"stopping": sorted(self.stopping)} if self.stopping else {}),
        }


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
            why = {k: Why(**w) for k, w in (data.get("why") or {}).items()}
            holds = {k: Hold(**h) for k, h in (data.get("holds") or {}).items()}
            for name, h in holds.items():
                if h.before not in STATES:
                    raise ValueError(f"hold of {name}: bad state {h.before!r}")
            flatten = bool(data.get("flatten", False))
            stopping = [str(n) for n in data.get("stopping") or []]
            return TradingStates(stack, strategies, flatten, why, holds, stopping), ""
        except FileNotFoundError:
            return TradingStates(), ""
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return TradingStates("halted"), f"{self.path} is unreadable ({exc}); stack HALTED"

    def save(self, states: TradingStates, reason: str) -> None:
        body = {**states.as_dict(), "reason": reason, "at": hosttime.now(IST).isoformat()}
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
