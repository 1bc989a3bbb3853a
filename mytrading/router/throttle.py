"""The router's send queue: rate limits per request class, exits ahead of entries.

OpenAlgo limits order placement per client (``ORDER_RATE_LIMIT`` 10/s, smart orders 1/s;
openalgo-protocol.md section 5) and answers a burst with 429 and a ``retry_after``. The
router keeps under the limits itself with one token bucket per class (its capacity is
one second's worth, so a burst of ten goes at once), holds a class back for
``retry_after`` after a 429, and takes the queue in priority order: cancels and orders
that reduce a position first, then entries, each in arrival order. An item may carry a
``due`` time (a retry's backoff); it never holds up the items behind it.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

PRIORITY_EXIT = 0
PRIORITY_ENTRY = 1


@dataclass
class Bucket:
    rate: float  # per second
    tokens: float
    last: float
    paused_until: float = 0.0

    def refill(self, now: float) -> None:
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.last) * self.rate)
        self.last = now

    def ready_in(self, now: float) -> float:
        """Seconds until this bucket can send (0: now)."""
        self.refill(now)
        wait = max(0.0, self.paused_until - now)
        if self.tokens < 1.0:
            wait = max(wait, (1.0 - self.tokens) / self.rate)
        return wait


@dataclass(order=True)
class Item:
    priority: int
    seq: int
    key: str = field(compare=False)
    cls: str = field(compare=False)
    due: float = field(compare=False, default=0.0)


class Throttle:
    def __init__(self, rates: dict[str, float], now: float) -> None:
        self.buckets = {c: Bucket(r, max(r, 1.0), now) for c, r in rates.items()}
        self._heap: list[Item] = []
        self._seq = itertools.count()
        self.waited = 0  # items that could not go at once (for the status line)

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, key: str, cls: str, exit_: bool, due: float = 0.0) -> None:
        prio = PRIORITY_EXIT if exit_ else PRIORITY_ENTRY
        heapq.heappush(self._heap, Item(prio, next(self._seq), key, cls, due))

    def pause(self, cls: str, now: float, seconds: float) -> None:
        """The broker said 429: nothing of this class goes for ``seconds``."""
        b = self.buckets[cls]
        b.paused_until = max(b.paused_until, now + seconds)

    def pop_ready(self, now: float) -> Item | None:
        """The first item, in priority order, that may go now; it takes a token."""
        held: list[Item] = []
        found = None
        while self._heap:
            item = heapq.heappop(self._heap)
            if item.due <= now and self.buckets[item.cls].ready_in(now) == 0.0:
                self.buckets[item.cls].tokens -= 1.0
                found = item
                break
            held.append(item)
        for item in held:
            heapq.heappush(self._heap, item)
        if found is None and held:
            self.waited += 1
        return found

    def next_in(self, now: float) -> float | None:
        """Seconds until some queued item may go; None when the queue is empty."""
        if not self._heap:
            return None
        return min(
            max(item.due - now, self.buckets[item.cls].ready_in(now), 0.0) for item in self._heap
        )
