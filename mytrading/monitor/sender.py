"""Delivery: a thread that sends what the store holds pending, channel by channel, and
retries a channel that fails with capped exponential backoff, so a channel that is down
delays its messages and loses none, and never holds up another channel or the monitor.

Nothing a channel does can stop the thread: a failure that is not the receiver's answer
(a bug, a URL the HTTP library refuses) is caught like any other, logged by its type only
(its text may hold the URL, and the URL a secret), and a channel that cannot work as
configured is disabled with the reason in the monitor's status while the others go on.
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
        self.disabled: dict[str, str] = {}  # channel -> why it cannot work as configured
        self.loop_errors = 0  # turns of the thread that failed (and were survived)
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
                try:
                    self.deliver_due()
                except Exception as exc:  # the store, a bug: never the end of delivery
                    self.loop_errors += 1
                    self.last_error = f"sender: {type(exc).__name__}"
                    log.error("alert sender turn failed; going on", error=type(exc).__name__)
                    self._stop.wait(1.0)
                self._wake.wait(POLL_S)
                self._wake.clear()
        finally:
            self.store.close()  # this thread's connection

    def states(self) -> dict[str, str]:
        """Each channel's state for status: ok, retrying (and why), or DISABLED (and why)."""
        now = time.time()
        out = {}
        for name in self.channels:
            if name in self.disabled:
                out[name] = f"DISABLED: {self.disabled[name]}"
            elif self._fails.get(name):
                wait = max(0.0, self._blocked.get(name, now) - now)
                out[name] = f"retrying: {self._fails[name]} failures, next in {wait:.0f}s"
            else:
                out[name] = "ok"
        return out

    def deliver_due(self) -> int:
        """Send every delivery that is due, oldest first; returns how many went. A channel
        that fails waits out its backoff before its next try (of its oldest message), so
        its messages still arrive in order."""
        n = 0
        now = time.time()
        for d in self.store.due(now):
            ch = self.channels.get(d.channel)
            if ch is None or d.channel in self.disabled or self._blocked.get(d.channel, 0) > now:
                continue
            try:
                ch.send(d.alert_id, d.severity, f"#{d.alert_id} {d.text}")
            except Exception as raw:
                exc = (
                    raw
                    if isinstance(raw, ChannelError)
                    else ChannelError(f"{d.channel}: failed ({type(raw).__name__})")
                )
                if exc.fatal:
                    self.disabled[d.channel] = str(exc)
                    self.failures += 1
                    self.last_error = str(exc)
                    log.error("alert channel disabled: fix its setting and restart the monitor",
                              channel=d.channel, reason=str(exc))  # fmt: skip
                    continue
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
