"""A strategy hears "no" once: entries held in the engine while risk would refuse them.

Risk is the one keeper of trading states (risk/state.py); the engine keeps a copy of what
concerns its strategies, learnt three ways: risk's state events (``state``,
``kill_switch``), a rejection naming a state's rule (``halted``, ``kill_switch``,
``reducing``), and, in the running stack, risk's heartbeat (``sync``), which also covers
an engine started after the change. While a strategy's book or the stack is HALTED or
REDUCING, its new entries (orders that do not only shrink a position) are not sent: the
first one of each episode comes back to the strategy as a rejection naming the state and
why, the rest are dropped with nothing on the bus and nothing in the logs, until the
state changes. After a rate-limit refusal its entries wait out a backoff (1 s, doubled on
each refusal in a row, at most 30 s; an order risk lets through resets it). Refusals that
come back while a backoff runs are of entries sent before it began (a burst in flight):
they neither double it nor start another episode.

Exits, protective stops, cancels and amends always go to risk, which judges them.
"""

from __future__ import annotations

from dataclasses import dataclass

STATE_RULES = {"halted": "halted", "kill_switch": "halted", "reducing": "reducing"}
RATE_RULES = frozenset({"order_rate", "order_rate_minute"})
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


@dataclass
class Backoff:
    until_ns: int
    last_s: float


class Gate:
    def __init__(self) -> None:
        self.stack = "active"
        self.stack_why = ""
        self.own: dict[str, str] = {}  # strategy -> its own state, when not active
        self.why: dict[str, str] = {}
        self.backoff: dict[str, Backoff] = {}
        self.held: dict[str, int] = {}  # strategy -> entries held since its last state change
        self.closed = False  # anything held at all: the fast path's test

    def _recount(self) -> None:
        self.closed = self.stack != "active" or bool(self.own) or bool(self.backoff)

    def state_of(self, strategy: str) -> tuple[str, str]:
        """(effective state, why): the stricter of the strategy's own and the stack's."""
        own = self.own.get(strategy, "active")
        rank = {"active": 0, "reducing": 1, "halted": 2}
        if rank[self.stack] > rank[own]:
            return self.stack, f"the stack is {self.stack.upper()}: {self.stack_why}".rstrip(": ")
        if own == "active":
            return "active", ""
        why = self.why.get(strategy, "")
        if why.startswith(f"{strategy} is "):  # risk's refusal says it already
            return own, why
        return own, f"{strategy} is {own.upper()}: {why}".rstrip(": ")

    def on_state(self, target: str, state: str, why: str) -> bool:
        """A state from risk; True when it changed what this engine holds."""
        if state not in ("active", "reducing", "halted"):
            return False
        if target in ("", "*"):
            changed = self.stack != state
            self.stack, self.stack_why = state, why if state != "active" else ""
            if changed:
                self.held.clear()
        else:
            changed = self.own.get(target, "active") != state
            if state == "active":
                self.own.pop(target, None)
                self.why.pop(target, None)
            else:
                self.own[target] = state
                self.why[target] = why
            if changed:
                self.held.pop(target, None)
        self._recount()
        return changed

    def sync(self, stack: str, strategies: dict[str, str], why: dict[str, str]) -> list[str]:
        """Risk's whole picture (its heartbeat); returns the targets that changed."""
        changed = []
        if self.on_state("*", stack, why.get("*", "")):
            changed.append("*")
        for name in set(self.own) | set(strategies):
            if self.on_state(name, strategies.get(name, "active"), why.get(name, "")):
                changed.append(name)
        return changed

    def on_reject(self, strategy: str, rule: str, reason: str, now_ns: int) -> None:
        """Risk refused one of the strategy's intents for ``rule``."""
        state = STATE_RULES.get(rule)
        if state is not None:
            target = "*" if rule == "kill_switch" else strategy
            if (self.stack if target == "*" else self.own.get(strategy, "active")) == "active":
                self.on_state(target, state, reason)
        elif rule in RATE_RULES:
            b = self.backoff.get(strategy)
            if b is not None and now_ns < b.until_ns:
                # an entry sent before this backoff began (a burst in flight as the first
                # refusal came back): the same episode, not a refusal in a row
                return
            wait = BACKOFF_FIRST_S if b is None else min(b.last_s * 2, BACKOFF_MAX_S)
            self.backoff[strategy] = Backoff(now_ns + int(wait * 1e9), wait)
            self.held.pop(strategy, None)
            self._recount()

    def on_accepted(self, strategy: str) -> None:
        """Risk let one of the strategy's orders through: any backoff is over."""
        if self.backoff.pop(strategy, None) is not None:
            self._recount()

    def holds(self, strategy: str, now_ns: int) -> str:
        """Why a new entry of ``strategy`` is not sent now ("" when it may go)."""
        state, why = self.state_of(strategy)
        if state != "active":
            return why
        b = self.backoff.get(strategy)
        if b is not None and now_ns < b.until_ns:
            return f"rate limit: entries wait {b.last_s:g}s after risk's refusal"
        return ""

    def count_held(self, strategy: str) -> int:
        """One more entry held; returns how many in this episode (1: say it)."""
        n = self.held[strategy] = self.held.get(strategy, 0) + 1
        return n
