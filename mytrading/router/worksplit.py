"""Where the router's own time per order goes, stage by stage (issue 36's figure: its own
latency less the write-ahead flush its order waited for).

Stamped on the wall clock for an order's first attempt: read off the pipe (the table's
``recv_ns``), the pump taking it, its ``sent`` record written, the journal synced (the
fdatasync itself, the disk's, is taken out), and the broker call starting. The status
detail carries each stage's median, so ``bench/latency.py`` (and an operator) sees which
part of the router's work the time is in.
"""

from __future__ import annotations

import collections
import statistics

STAGES = ("read_to_pump", "queue", "journal_write", "sync_less_flush", "hand_off")


class WorkSplit:
    def __init__(self, keep: int = 4096) -> None:
        self.work_us: collections.deque[float] = collections.deque(maxlen=keep)
        self._stages = {s: collections.deque[float](maxlen=keep) for s in STAGES}

    def add(
        self, recv_ns: int, pump: tuple[int, int, int, int], call_ns: int, flush_us: float
    ) -> None:
        """One order: ``pump`` = (pump start, records start, records written, synced), wall
        ns; ``flush_us``: the fdatasync inside the sync."""
        start, write, written, synced = pump
        self.work_us.append((call_ns - recv_ns) / 1000 - flush_us)
        for stage, us in zip(
            STAGES,
            (
                (start - recv_ns) / 1000,
                (write - start) / 1000,
                (written - write) / 1000,
                (synced - written) / 1000 - flush_us,
                (call_ns - synced) / 1000,
            ),
            strict=True,
        ):
            self._stages[stage].append(us)

    def p50(self) -> dict[str, float]:
        """Each stage's median, microseconds (empty before the first order)."""
        return {s: round(statistics.median(d), 1) for s, d in self._stages.items() if d}
