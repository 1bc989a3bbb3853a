"""A daemon's own work on the order path: from reading the message that caused an order
to handing the order to the next pipe (issue 52's latency hunt: the engine's and risk's
work was the stretch no figure covered, so a slower stack could not say where).

The engine times a tick it read to the first intent that tick caused; risk an intent it
read to the first order it approved for it. Each cause is armed as it is read and
disarmed by its first send, so a send a timer or a later message causes is not counted
against it. Wall nanoseconds, the host's clock (``hosttime``). The figure, a median of
the latest sends, goes in the daemon's status detail (``bench/latency.py`` prints it).
"""

from __future__ import annotations

import collections
import statistics

from mytrading import hosttime


class OwnWork:
    def __init__(self, keep: int = 4096) -> None:
        self.us: collections.deque[float] = collections.deque(maxlen=keep)
        self._cause: object = None
        self._read_ns = 0

    def read(self, cause: object, read_ns: int) -> None:
        """A message that may cause a send was read at ``read_ns``; ``cause`` names it (a
        tick's stamp, an intent's id) as the send will."""
        self._cause = cause
        self._read_ns = read_ns

    def sent(self, cause: object) -> None:
        """A send caused by ``cause`` went: timed if it is the armed cause's first."""
        if cause is None or cause != self._cause:
            return
        self._cause = None
        self.us.append((hosttime.time_ns() - self._read_ns) / 1000)

    def p50_us(self) -> float | None:
        """The median of the latest sends' own work, microseconds; None before the first."""
        return round(statistics.median(self.us), 1) if self.us else None
