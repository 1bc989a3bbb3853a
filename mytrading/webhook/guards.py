"""The signals server's guards, apart from the server so they can be tested alone.

* ``RateLimit``: a moving window per client (OpenAlgo's webhook limit is 100 a minute per
  client IP); a refusal says how long until the oldest request leaves the window.
* ``Duplicates``: the same alert body again for the same strategy and symbols inside a
  window (TradingView sends an alert again when our answer is slow) is recognised, so it
  trades once.

Both keep bounded memory: old entries are dropped as time passes, and the number of
clients or bodies remembered is capped (the oldest go first).
"""

from __future__ import annotations

import collections
import hashlib
import json
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
    """A retry is the same content as the last alert of its *stream* (a strategy and the
    symbols it names) within the window. BUY, SELL, BUY on one symbol is three signals,
    not a retry: the second BUY follows a different alert of its stream."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._last: OrderedDict[str, tuple[str, float]] = OrderedDict()  # stream -> (key, at)

    @staticmethod
    def key(strategy: str, body: bytes) -> str:
        """Whitespace and key order do not make an alert new; its content does."""
        try:
            canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        except (ValueError, UnicodeDecodeError):
            canonical = body.decode("utf-8", "replace")
        return hashlib.sha256(f"{strategy}\n{canonical}".encode()).hexdigest()

    def seen(self, key: str, now: float, stream: str = "") -> bool:
        """True if ``key`` is the last content of ``stream`` (default: the key itself) and
        came within the window; else it becomes the stream's last. A window of 0 never
        sees a duplicate."""
        if self.window_s <= 0:
            return False
        stream = stream or key
        while self._last:
            oldest, (_, at) = next(iter(self._last.items()))
            if at > now - self.window_s and len(self._last) <= MAX_BODIES:
                break
            del self._last[oldest]
        last = self._last.get(stream)
        if last is not None and last[0] == key and last[1] > now - self.window_s:
            return True
        self._last.pop(stream, None)
        self._last[stream] = (key, now)  # at the end: the oldest stay first
        return False

    def forget(self, stream: str) -> None:
        """The alert was not taken after all (a full queue): its retry must count."""
        self._last.pop(stream, None)
