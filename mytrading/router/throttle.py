"""The router's send queue: rate limits per request class, exits ahead of entries.

OpenAlgo limits order placement per client (``ORDER_RATE_LIMIT`` 10/s, smart orders 1/s;
docs/openalgo.md §5) and answers a burst with 429 and a ``retry_after``. The
router keeps under the limits itself with a sliding one-second window per class (at
most ``rate`` sends in any second, the strictest reading of the server's limiter: a token
bucket of one second's capacity would let twice the rate through in some second, and the
simulator, like OpenAlgo, answers that with 429), holds a class back for
``retry_after`` after a 429, and takes the queue in priority order: cancels and orders
that reduce a position first, then entries, each in arrival order. An item may carry a
``due`` time (a retry's backoff); it never holds up the items behind it.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
from dataclasses import dataclass, field

PRIORITY_EXIT = 0
PRIORITY_ENTRY = 1


WINDOW_S = 1.0


@dataclass
class Window:
    """At most ``rate`` sends in any ``WINDOW_S`` (a fractional rate: one per 1/rate s)."""

    rate: float  # per second
    sent: collections.deque[float] = field(default_factory=collections.deque)
    paused_until: float = 0.0

    @property
    def per_window(self) -> int:
        return max(1, math.floor(self.rate * WINDOW_S))

    @property
    def span(self) -> float:
        return WINDOW_S if self.rate >= 1.0 else 1.0 / self.rate

    def ready_in(self, now: float) -> float:
        """Seconds until this class can send (0: now)."""
        while self.sent and now - self.sent[0] >= self.span:
            self.sent.popleft()
        wait = max(0.0, self.paused_until - now)
        if len(self.sent) >= self.per_window:
            wait = max(wait, self.sent[0] + self.span - now)
        return wait

    def take(self, now: float) -> None:
        self.sent.append(now)

    def restamp(self, n: int, now: float) -> None:
        """The last ``n`` sends went out by ``now``: count them from then (the server
        counts when a request arrives, and a batch's requests go one after another)."""
        for i in range(1, min(n, len(self.sent)) + 1):
            self.sent[-i] = now


@dataclass(order=True)
class Item:
    priority: int
    seq: int
    key: str = field(compare=False)
    cls: str = field(compare=False)
    due: float = field(compare=False, default=0.0)


class Throttle:
    def __init__(self, rates: dict[str, float], now: float) -> None:
        self.buckets = {c: Window(r) for c, r in rates.items()}
        self._heap: list[Item] = []
        self._seq = itertools.count()

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
        """The first item, in priority order, that may go now; it counts as sent."""
        held: list[Item] = []
        found = None
        while self._heap:
            item = heapq.heappop(self._heap)
            if item.due <= now and self.buckets[item.cls].ready_in(now) == 0.0:
                self.buckets[item.cls].take(now)
                found = item
                break
            held.append(item)
        for item in held:
            heapq.heappush(self._heap, item)
        return found

    def restamp(self, cls: str, n: int, now: float) -> None:
        self.buckets[cls].restamp(n, now)

    def next_in(self, now: float) -> float | None:
        """Seconds until some queued item may go; None when the queue is empty."""
        if not self._heap:
            return None
        return min(
            max(item.due - now, self.buckets[item.cls].ready_in(now), 0.0) for item in self._heap
        )
