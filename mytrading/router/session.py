"""An account's broker session, as a state: up, or expired until a probe finds it back.

OpenAlgo revokes the broker session every day (around 03:00 IST) and on logout; from then
every call answers 403 ``Invalid openalgo apikey`` until the user logs in again. Sending
orders into that is a stream of rejections that mean nothing about the orders, so the
router keeps one ``BrokerSession`` per account: the first such answer (to an order, an
amend or the funds poll) expires it, after which orders for the account are refused
before they are sent (``SESSION_EXPIRED``), working orders are left as they are, and
``ping`` (which OpenAlgo answers only with a valid session) is tried on a backoff until it
answers. The router says each change once, as an ALERT line, and in its status, which the
monitor turns into the ``session_expired`` alert and its recovery.
"""

from __future__ import annotations

from dataclasses import dataclass

from mytrading import hosttime
from mytrading.openalgo.broker import SESSION_EXPIRED, expired_reply

__all__ = ["SESSION_EXPIRED", "BrokerSession", "expired_reply"]

PROBE_BACKOFF_S = (2.0, 5.0, 10.0, 20.0, 30.0, 60.0)  # then every 60 s


@dataclass
class BrokerSession:
    expired_at: float = 0.0  # wall time of the first expired answer; 0.0: up
    reason: str = ""
    probes: int = 0
    next_probe: float = 0.0  # hosttime.monotonic()
    expiries: int = 0  # how many times it expired since the router started

    @property
    def expired(self) -> bool:
        return self.expired_at > 0.0

    def expire(self, reason: str) -> bool:
        """Mark it expired; True the first time (the caller alerts once)."""
        if self.expired:
            return False
        self.expired_at = hosttime.time()
        self.reason = reason
        self.probes = 0
        self.expiries += 1
        self.next_probe = hosttime.monotonic() + PROBE_BACKOFF_S[0]
        return True

    def probe_due(self, now: float) -> bool:
        return self.expired and now >= self.next_probe

    def probed(self, ok: bool, now: float) -> bool:
        """Record a probe; True when the session is back."""
        if ok:
            self.expired_at, self.reason, self.probes = 0.0, "", 0
            return True
        self.probes += 1
        self.next_probe = now + PROBE_BACKOFF_S[min(self.probes, len(PROBE_BACKOFF_S) - 1)]
        return False

    def detail(self) -> dict[str, object]:
        if not self.expired:
            return {"state": "up", "expiries": self.expiries}
        return {
            "state": "expired",
            "since": round(self.expired_at, 3),
            "probes": self.probes,
            "reason": self.reason,
            "expiries": self.expiries,
        }
