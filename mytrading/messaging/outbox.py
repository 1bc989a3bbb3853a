"""A bounded queue in front of a pipe whose peer may be down.

Messages go out as soon as the peer is reachable. While it is not, they wait in the
sender's own memory (never in a socket buffer towards a dead peer) and are handed back
through ``on_expired`` with a reason once they have waited ``wait_s``; a full queue
refuses at once. This is how "intents wait (bounded) or are refused with a clear
reason" works for both the engine (towards risk) and risk (towards the router).

A message that went out is not yet safe: a peer killed with ``kill -9`` loses what sat
in its socket buffer. With a ``key``, sent messages are remembered until ``ack(key)``
(the peer's answer was seen); ``redeliver()``, called when the peer restarts, sends the
unanswered ones again. The receivers drop what they already have (the router by its
journal, risk by intent id), so a message is never acted on twice. ``overdue(s)`` hands
back, once, the ones a live peer has left unanswered for ``s`` seconds (lost, or a frame
it could not read), for the sender to settle with a reason rather than wait for ever.

A message that waited may no longer be wanted when the peer comes back (risk's entry
approved a moment before a halt, while the router was down: the simulator's seed 873).
``stale``, asked of each message as it is about to go out, names why not; the message
is handed to ``on_expired`` with that reason instead of being sent. Only a change while
it waited counts: a message ``stale`` already names when it is put is what the sender
meant (risk's order that shrinks a halted book's position) and goes.

What waits is tried again every ``retry_s`` by a timer armed only while something
waits (``retry_in``: the daemon's ``after``): an idle outbox costs its loop nothing (the
three outboxes' fixed 20 ms timers were most of what a quiet stack's loops did).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from mytrading import hosttime
from mytrading.messaging import wire
from mytrading.messaging.bus import PipeOut

M = TypeVar("M", bound=wire.Msg)


class Outbox(Generic[M]):
    def __init__(
        self,
        pusher: PipeOut,
        ready: Callable[[], bool],
        wait_s: float,
        on_expired: Callable[[M, str], None],
        why_not_ready: Callable[[], str],
        capacity: int = 1000,
        key: Callable[[M], Hashable] | None = None,
        remember: int = 10_000,
        retry_in: Callable[[float, Callable[[], None]], None] | None = None,
        retry_s: float = 0.02,
        stale: Callable[[M], str | None] | None = None,
    ) -> None:
        self.pusher = pusher
        self.ready = ready
        self.wait_s = wait_s
        self.on_expired = on_expired
        self.why_not_ready = why_not_ready
        self.capacity = capacity
        # (when it was queued, the message, whether ``stale`` named it already then)
        self._q: collections.deque[tuple[float, M, bool]] = collections.deque()
        self.key = key
        self.remember = remember
        # sent and not yet answered, oldest first: (when it went out, the message)
        self.unacked: collections.OrderedDict[Hashable, tuple[float, M]] = collections.OrderedDict()
        self.redelivered = 0
        self.retry_in = retry_in
        self.retry_s = retry_s
        self._armed = False  # a retry is due
        self.stale = stale

    def __len__(self) -> int:
        return len(self._q)

    def put(self, msg: M) -> bool:
        """Queue and try to send; False (nothing queued) when the queue is full."""
        if len(self._q) >= self.capacity:
            return False
        if not self._q and self.ready() and self.pusher.send(msg):
            # Nothing waits before it and the peer took it: out at once, the common case.
            # ``stale`` is not asked: it names only a change while a message waited.
            self._sent(msg)
            return True
        self._q.append((hosttime.monotonic(), msg, self._is_stale(msg)))
        self.flush()
        return True

    def flush(self) -> None:
        """Send what the peer will take, in order; expire what waited too long."""
        ready = self.ready()
        while self._q:
            queued_at, msg, meant = self._q[0]
            why_stale = self.stale(msg) if self.stale is not None and not meant else None
            if why_stale is not None:
                self._q.popleft()
                self.on_expired(msg, why_stale)
                continue
            if ready and self.pusher.send(msg):
                self._q.popleft()
                self._sent(msg)
                continue
            if hosttime.monotonic() - queued_at > self.wait_s:
                self._q.popleft()
                why = self.why_not_ready() if not ready else "peer not accepting"
                self.on_expired(msg, f"{why} for {self.wait_s}s")
                continue
            break
        if self._q and self.retry_in is not None and not self._armed:
            self._armed = True
            self.retry_in(self.retry_s, self._retry)

    def _sent(self, msg: M) -> None:
        if self.key is not None:
            self.unacked[self.key(msg)] = (hosttime.monotonic(), msg)
            if len(self.unacked) > self.remember:
                self.unacked.popitem(last=False)

    def _is_stale(self, msg: M) -> bool:
        return self.stale is not None and self.stale(msg) is not None

    def _retry(self) -> None:
        self._armed = False
        self.flush()

    def ack(self, key: Hashable) -> None:
        """The peer answered for this message: it no longer needs redelivery."""
        self.unacked.pop(key, None)

    def unacked_messages(self) -> list[M]:
        """What went out and is not answered yet, oldest first."""
        return [m for _, m in self.unacked.values()]

    def waiting(self) -> list[M]:
        """What waits for the peer, unsent, oldest first."""
        return [m for _, m, _ in self._q]

    def take_queued(self, which: Callable[[M], bool]) -> list[M]:
        """The waiting messages ``which`` picks, taken out unsent (the sender settles them
        otherwise), oldest first."""
        taken = [m for _, m, _ in self._q if which(m)]
        if taken:
            self._q = collections.deque(e for e in self._q if not which(e[1]))
        return taken

    def redeliver(self) -> int:
        """The peer restarted: queue again, oldest first, what it never answered."""
        msgs = self.unacked_messages()
        self.unacked.clear()
        now = hosttime.monotonic()
        self._q.extendleft((now, m, self._is_stale(m)) for m in reversed(msgs))
        self.redelivered += len(msgs)
        self.flush()
        return len(msgs)

    def overdue(self, after_s: float) -> list[M]:
        """The sent messages unanswered for ``after_s`` seconds, oldest first; each is
        forgotten here (no redelivery) as it is handed back."""
        limit = hosttime.monotonic() - after_s
        out: list[M] = []
        while self.unacked:
            key, (sent_at, msg) = next(iter(self.unacked.items()))
            if sent_at > limit:
                break
            del self.unacked[key]
            out.append(msg)
        return out
