"""A daemon's order path rehearsed while it is idle (risk's judging, the router's journal
record): an order that comes alone after 100 ms of ticks finds that code gone from the
CPU's caches and pays several times its warm cost (docs/risk.md, docs/execution.md).

The daemon says when real work was done (``worked``) and runs this on a timer; it
rehearses only once the work has been idle for an interval, so a burst of orders is
never slowed by it. A rehearsal that raises is said once and not tried again until the
next real work: a timer every 10 ms would otherwise say the same error a hundred times a
second.
"""

from __future__ import annotations

from collections.abc import Callable

from mytrading import hosttime


class Rehearsal:
    def __init__(
        self,
        every_s: float,
        rehearse: Callable[[], bool],
        failed: Callable[[], None],
        clock: Callable[[], float] = hosttime.monotonic,
    ) -> None:
        """``rehearse``: one rehearsal, True when it had something to rehearse; ``failed``:
        called inside the ``except`` of one that raised (so ``exc_info=True`` logs it)."""
        self.every_s = every_s
        self._rehearse = rehearse
        self._failed = failed
        self._clock = clock
        self.count = 0  # rehearsals that rehearsed something (the daemon's status)
        self._worked_at = 0.0
        self._off = False

    def worked(self) -> None:
        """Real work was done now: the next rehearsal waits an interval (and one that
        failed is tried again)."""
        self._worked_at = self._clock()
        self._off = False

    def run(self) -> None:
        """The timer's: one rehearsal, if the work has been idle an interval."""
        if self._off or self._clock() - self._worked_at < self.every_s:
            return
        try:
            done = self._rehearse()
        except Exception:
            self._off = True
            self._failed()
            return
        if done:
            self.count += 1
