"""Delivery: a thread that sends what the store holds pending, channel by channel, and
retries a channel that fails with capped exponential backoff, so a channel that is down
delays its messages and loses none, and never holds up another channel or the monitor.
"""

from __future__ import annotations

import threading
import time

import structlog

from mytrading.monitor.channels import Channel, ChannelError
from mytrading.monitor.store import AlertStore

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
POLL_S = 0.2

log = structlog.get_logger("monitor")


def backoff(attempts: int, retry_after: float = 0.0) -> float:
    """Seconds before the next try after ``attempts`` failures (a receiver's own
    ``retry_after`` when it gave one)."""
    return max(retry_after, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


class Sender:
    def __init__(self, store: AlertStore, channels: list[Channel]) -> None:
        self.store = store
        self.channels = {c.name: c for c in channels}
        self.sent = 0
        self.failures = 0
        self.last_error = ""
        self._fails: dict[str, int] = {}  # failures in a row, per channel
        self._blocked: dict[str, float] = {}  # channel -> wall time of its next try
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def wake(self) -> None:
        """Something new was queued: look now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.deliver_due()
                self._wake.wait(POLL_S)
                self._wake.clear()
        finally:
            self.store.close()  # this thread's connection

    def deliver_due(self) -> int:
        """Send every delivery that is due, oldest first; returns how many went. A channel
        that fails waits out its backoff before its next try (of its oldest message), so
        its messages still arrive in order."""
        n = 0
        now = time.time()
        for d in self.store.due(now):
            ch = self.channels.get(d.channel)
            if ch is None or self._blocked.get(d.channel, 0.0) > now:
                continue
            try:
                ch.send(d.alert_id, d.severity, f"#{d.alert_id} {d.text}")
            except ChannelError as exc:
                fails = self._fails[d.channel] = self._fails.get(d.channel, 0) + 1
                self.failures += 1
                self.last_error = str(exc)
                wait = backoff(fails, exc.retry_after)
                self._blocked[d.channel] = now + wait
                self.store.failed(d.alert_id, d.channel, str(exc), now + wait)
                log.warning(
                    "alert not delivered: retrying",
                    channel=d.channel,
                    alert=d.alert_id,
                    attempt=d.attempts + 1,
                    retry_in_s=round(wait, 1),
                    reason=str(exc),
                )
                continue
            self._fails[d.channel] = 0
            self.store.sent(d.alert_id, d.channel, time.time())
            self.sent += 1
            n += 1
        return n
