"""Reads of a broker that did not connect, counted into outages: the router's own reads of
each account's broker and the reconciler's checks through it follow one rule.

A failure is a warning (the reader asks again); the ``in_a_row``-th in a row for a key is
the error, said once per outage (a good read ends it; the next failure starts a new one).
A broker that starts with the stack (the embedded simulator, under supervisord at the same
moment) may answer seconds after its readers: until an account's broker has answered,
failures in a reader's first ``grace_s`` are warnings, so a broker down at start is said
once the grace has passed, one that answered before at once. No clock of its own: the
caller gives its uptime.
"""

from __future__ import annotations

from collections.abc import Hashable

START_GRACE_S = 15.0  # 6 s for the simulator to answer in a full local run (three stacks)


class Outages:
    def __init__(self, grace_s: float = START_GRACE_S, in_a_row: int = 3) -> None:
        self.grace_s = grace_s
        self.in_a_row = in_a_row
        self.failures: dict[Hashable, int] = {}  # key -> failures in a row
        self.said: set[Hashable] = set()  # outages counted as an error already
        self.answered: set[str] = set()  # accounts whose broker has answered since the start

    def failed(self, key: Hashable, account: str, uptime_s: float) -> tuple[int, bool, bool]:
        """A failure of ``key`` (on ``account``'s broker): (failures in a row, whether to
        say it as an error now, whether the start's grace held it to a warning)."""
        n = self.failures[key] = self.failures.get(key, 0) + 1
        if n == 1:
            self.said.discard(key)  # a good read came between: a new outage
        starting = account not in self.answered and uptime_s < self.grace_s
        error = n >= self.in_a_row and not starting and key not in self.said
        if error:
            self.said.add(key)
        return n, error, starting

    def ok(self, key: Hashable, account: str) -> None:
        """A good read of ``key``: its outage is over, and ``account``'s broker answered."""
        self.failures.pop(key, None)
        self.answered.add(account)
