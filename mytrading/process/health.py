"""A process's own health, for its heartbeat: CPU, memory, files, loop lag, GC pauses.

``ProcessHealth.sample()`` runs once a heartbeat and returns a small dict that goes into
``Status.detail["health"]``; everything in it is about the interval since the last
sample (CPU %, the worst loop lag, the GC pauses) or the moment (RSS, open files).

* **CPU %** of one core over the interval, from the process's own CPU times (psutil).
* **RSS** in MB, and ``rss_growing``: over the last hour of one-minute samples, the
  resident set grew in at least 90 % of the minutes and by more than ``GROWTH_MB``
  overall; a leak looks like this, a cache filling up once does not.
* **open files**: file descriptors, sockets included.
* **loop lag**: how late the event loop ran its timers (a timer due at t that ran at
  t + x lagged x): the worst and the count above ``LAG_WARN_MS``.
* **GC pauses**: ``gc.callbacks`` time every collection; the worst and the total.
* **disk**: the free space of each file system the process writes to (its state and log
  directories): a ``statvfs`` a beat; the monitor's ``disk_low`` alert reads it.
"""

from __future__ import annotations

import collections
import gc
import itertools
import os
import time
from pathlib import Path
from typing import Any

import psutil

SAMPLE_EVERY_S = 60.0  # RSS trend points
TREND_POINTS = 60  # one hour of them
GROWTH_MB = 64.0
LAG_WARN_MS = 50.0


def disk_free(paths: list[Path]) -> list[dict[str, Any]]:
    """Free space of each distinct file system under ``paths`` (the first existing
    ancestor of each): its path, free MB and free % of its size."""
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for p in paths:
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            dev = os.stat(p).st_dev
            st = os.statvfs(p)
        except OSError:
            continue
        if dev in seen:
            continue
        seen.add(dev)
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        pct = 100.0 * free / total if total else 100.0
        out.append({"path": str(p), "free_mb": round(free / 2**20, 1), "free_pct": round(pct, 1)})
    return out


class ProcessHealth:
    def __init__(self, disk_paths: list[Path] | None = None) -> None:
        self.disk_paths = disk_paths or []
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)  # the first call only starts the interval
        self.lag_max_ms = 0.0
        self.lag_warn = 0
        self.gc_count = 0
        self.gc_total_ms = 0.0
        self.gc_max_ms = 0.0
        self._gc_t0 = 0.0
        self.rss_points: collections.deque[float] = collections.deque(maxlen=TREND_POINTS + 1)
        self._next_point = 0.0
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self._gc_t0:
            ms = (time.perf_counter() - self._gc_t0) * 1000
            self._gc_t0 = 0.0
            self.gc_count += 1
            self.gc_total_ms += ms
            if ms > self.gc_max_ms:
                self.gc_max_ms = ms

    def lag(self, seconds: float) -> None:
        """The loop ran a timer ``seconds`` after it was due."""
        ms = seconds * 1000
        if ms > self.lag_max_ms:
            self.lag_max_ms = ms
        if ms > LAG_WARN_MS:
            self.lag_warn += 1

    def rss_growing(self) -> bool:
        pts = list(self.rss_points)
        if len(pts) <= TREND_POINTS:
            return False  # less than an hour seen
        ups = sum(1 for a, b in itertools.pairwise(pts) if b > a)
        return ups >= 0.9 * (len(pts) - 1) and pts[-1] - pts[0] > GROWTH_MB

    def sample(self) -> dict[str, Any]:
        """This interval's figures; the interval's worst values start again."""
        try:
            with self.proc.oneshot():
                cpu = self.proc.cpu_percent(None)
                rss_mb = self.proc.memory_info().rss / 2**20
                fds = self.proc.num_fds()
        except psutil.Error:
            return {}
        now = time.monotonic()
        if now >= self._next_point:
            self._next_point = now + SAMPLE_EVERY_S
            self.rss_points.append(rss_mb)
        out = {
            "cpu_pct": round(cpu, 1),
            "rss_mb": round(rss_mb, 1),
            "fds": fds,
            "loop_lag_max_ms": round(self.lag_max_ms, 2),
            "loop_lag_over_50ms": self.lag_warn,
            "gc_on": gc.isenabled(),  # off only while a daemon starts (process/prestart.py)
            "gc_pauses": self.gc_count,
            "gc_pause_max_ms": round(self.gc_max_ms, 2),
            "gc_pause_total_ms": round(self.gc_total_ms, 2),
            "rss_growing": self.rss_growing(),
            "disk": disk_free(self.disk_paths),
        }
        self.lag_max_ms = self.gc_max_ms = self.gc_total_ms = 0.0
        self.lag_warn = self.gc_count = 0
        return out
