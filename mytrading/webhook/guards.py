"""The signals server's guards, apart from the server so they can be tested alone.

* ``RateLimit``: a moving window per client (OpenAlgo's webhook limit is 100 a minute per
  client IP); a refusal says how long until the oldest request leaves the window.
* ``Duplicates``: the same alert body for the same strategy inside a window (TradingView
  sends an alert again when our answer is slow) is recognised, so it trades once.

Both keep bounded memory: old entries are dropped as time passes, and the number of
clients or bodies remembered is capped (the oldest go first).
"""

from __future__ import annotations

import collections
import hashlib
import math
from collections import OrderedDict

MAX_CLIENTS = 10_000
MAX_BODIES = 100_000


class RateLimit:
    def __init__(self, per_window: int = 100, window_s: float = 60.0) -> None:
        if per_window < 1 or window_s <= 0:
            raise ValueError("a rate limit needs at least one request in a positive window")
        self.per_window = per_window
        self.window_s = window_s
        self._seen: OrderedDict[str, collections.deque[float]] = OrderedDict()

    def check(self, client: str, now: float) -> float:
        """0.0 if the request may pass (and it is counted), else the seconds to wait."""
        q = self._seen.get(client)
        if q is None:
            q = self._seen[client] = collections.deque()
            if len(self._seen) > MAX_CLIENTS:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(client)
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.per_window:
            return max(0.001, q[0] + self.window_s - now)
        q.append(now)
        return 0.0

    @staticmethod
    def retry_after(wait_s: float) -> int:
        """Whole seconds for a 429's ``retry_after``, at least one."""
        return max(1, math.ceil(wait_s))


class Duplicates:
    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> first seen

    @staticmethod
    def key(strategy: str, body: bytes) -> str:
        """Whitespace and key order do not make an alert new; its content does."""
        import json

        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        except (ValueError, UnicodeDecodeError):
            canonical = body.decode("utf-8", "replace")
        return hashlib.sha256(f"{strategy}\n{canonical}".encode()).hexdigest()

    def seen(self, key: str, now: float) -> bool:
        """True if the same key came within the window (not counted again); else remember it."""
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if at > now - self.window_s and len(self._seen) <= MAX_BODIES:
                break
            del self._seen[oldest]
        at = self._seen.get(key)
        if at is not None and at > now - self.window_s:
            return True
        self._seen[key] = now
        return False
