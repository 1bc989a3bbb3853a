"""Confirmations of a command that flattens or halts everything (a stop, the kill switch):
asked with a button that is good once, for a while (60 s), and only for the person who
asked. A press by anyone else is refused and leaves the button good for its owner; a press
after its time, or a second press, is refused and does nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pending:
    user: int
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    until: float = 0.0


class Confirmations:
    def __init__(self, good_for_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.good_for_s = good_for_s
        self.clock = clock
        self._pending: dict[str, Pending] = {}

    def ask(self, user: int, command: str, args: dict[str, Any]) -> str:
        """A one-time key for the button (Telegram allows 64 bytes of callback data)."""
        self._drop_old()
        key = secrets.token_urlsafe(12)
        self._pending[key] = Pending(user, command, dict(args), self.clock() + self.good_for_s)
        return key

    def take(self, key: str, user: int) -> Pending | str:
        """The command to carry out, or why not."""
        p = self._pending.get(key)
        if p is None:
            return "this confirmation was already used, or is unknown"
        if p.user != user:
            return "only the person who asked can confirm this"
        del self._pending[key]
        if self.clock() > p.until:
            return f"this confirmation expired ({self.good_for_s:g} s): nothing was changed"
        return p

    def __len__(self) -> int:
        return len(self._pending)

    def _drop_old(self) -> None:
        # kept a while past their time, so a late press says "expired", not "unknown"
        now = self.clock()
        for k in [k for k, p in self._pending.items() if now > p.until + 3600]:
            del self._pending[k]
