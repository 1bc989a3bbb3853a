"""History calls off the event loop, paced the way OpenAlgo paces them.

OpenAlgo serves ``history`` one call at a time per process, at least 0.35 s apart
(``services/history_service.py``), so a daemon that asks for ten symbols' history in
its loop waits 3.5 s and misses its heartbeats. Here the calls run on one worker thread,
spaced ``spacing_s`` apart, and the loop collects each result from its ``Future`` when
it is done. A request already queued under the same key is not asked twice: its
``Future`` is shared (two strategies warming up on one instrument make one call).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, Protocol

HISTORY_SPACING_S = 0.35  # OpenAlgo's own spacing between history calls


class Fetcher(Protocol):
    """History calls off the loop, paced: ``PacedFetcher`` (a thread) in a process's
    shell, virtual time in the simulation (its host's ``fetcher``)."""

    calls: int

    @property
    def pending(self) -> int: ...

    def submit(self, key: Hashable, fn: Callable[[], Any]) -> Future[Any]: ...

    def close(self) -> None: ...


class PacedFetcher:
    """Runs submitted calls one by one on a worker thread, ``spacing_s`` apart."""

    def __init__(self, spacing_s: float = HISTORY_SPACING_S, name: str = "history") -> None:
        self.spacing_s = spacing_s
        self._jobs: queue.Queue[tuple[Hashable, Callable[[], Any], Future[Any]] | None] = (
            queue.Queue()
        )
        self._queued: dict[Hashable, Future[Any]] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self._last = 0.0
        self._thread = threading.Thread(target=self._work, name=f"paced-{name}", daemon=True)
        self._thread.start()

    def submit(self, key: Hashable, fn: Callable[[], Any]) -> Future[Any]:
        """``fn()``'s result (or exception) in a ``Future``; one call per key in flight."""
        with self._lock:
            fut = self._queued.get(key)
            if fut is not None and not fut.cancelled():
                return fut
            fut = Future()
            self._queued[key] = fut
        self._jobs.put((key, fn, fut))
        return fut

    @property
    def pending(self) -> int:
        """Calls queued or running."""
        with self._lock:
            return len(self._queued)

    def close(self) -> None:
        """Stop: calls still queued are cancelled (their futures say so), the one under
        way is waited for, up to 2 s (a stopping daemon does not wait out the queue)."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[2].cancel()
                with self._lock:
                    self._queued.pop(job[0], None)
        self._jobs.put(None)
        self._thread.join(timeout=2.0)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            key, fn, fut = job
            if fut.cancelled():  # given up by whoever asked (a first bar handed as it was)
                with self._lock:
                    if self._queued.get(key) is fut:
                        self._queued.pop(key, None)
                continue  # ... without the spacing: no call was made
            wait = self._last + self.spacing_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            self.calls += 1
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # delivered to whoever waits on it
                    fut.set_exception(exc)
            with self._lock:
                if self._queued.get(key) is fut:  # not a later call of the same key
                    self._queued.pop(key, None)
