"""The command layer on a thread of its own, for a caller that lives in an event loop
(the Telegram bot): one thread owns the bus view (ZeroMQ sockets belong to the thread
that made them), takes in the bus while idle so every heartbeat stays fresh, and runs the
commands one at a time, so two operators' flattens are one after the other, never
interleaved (the second finds the first done and says so).

Nothing ends the thread quietly: a failure while it takes in the bus is logged, counted
(``errors``) and the loop goes on after a pause; a failure it cannot go on from is
logged and every command waiting, and every one submitted later, gets it as its answer
(a caller never waits for a thread that is gone).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import structlog

from mytrading.control.actions import Answer, Caller, Control, StackView
from mytrading.control.record import CommandRecord
from mytrading.control.strategyfile import StrategyFile

log = structlog.get_logger("control")

IDLE_POLL_S = 0.005  # a command waits at most this long to be taken up
REFRESH_BACKOFF_S = 0.5  # after a failed read of the bus, before the next
Job = tuple[Caller, Callable[[Control], Answer], "Future[Answer]"]


class StackThread:
    def __init__(
        self,
        make_view: Callable[[], Any],
        record_path: Any,
        strategies: Callable[[], list[str]],
        strategy_file: StrategyFile | None = None,
        reports_dir: Path | None = None,
    ) -> None:
        """``make_view`` builds the ``StackView`` (with a ``close``) on the thread."""
        self._make_view = make_view
        self._strategy_file = strategy_file
        self._reports_dir = reports_dir
        self._record_path = record_path
        self._strategies = strategies
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self.errors = 0  # failures taken in the loop (each logged), the thread going on
        self.died: BaseException | None = None  # what ended the loop: every answer then
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stack", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        self._ready.wait(timeout)
        if self.error is not None:
            raise self.error

    def submit(self, caller: Caller, fn: Callable[[Control], Answer]) -> Future[Answer]:
        fut: Future[Answer] = Future()
        with self._lock:  # the loop's end fails what is queued under the same lock
            if self.died is None:
                self._jobs.put((caller, fn, fut))
                return fut
        fut.set_exception(RuntimeError(f"the command thread has stopped: {self.died!r}"))
        return fut

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(5.0)

    def _run(self) -> None:
        try:
            view: StackView = self._make_view()
            record = CommandRecord(self._record_path)
        except BaseException as exc:  # said by start() in the caller's thread
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop(view, record)
        except BaseException as exc:
            self.died = exc
            log.critical("the command thread stopped: commands are refused", exc_info=True)
        finally:
            self._end()
            record.close()
            close = getattr(view, "close", None)
            if close is not None:
                close()

    def _loop(self, view: StackView, record: CommandRecord) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                try:
                    view.refresh(IDLE_POLL_S)  # the bus, while nothing is asked
                except Exception:
                    self.errors += 1
                    log.error("reading the bus failed; going on", errors=self.errors,
                              exc_info=True)  # fmt: skip
                    time.sleep(REFRESH_BACKOFF_S)
                continue
            if job is None:
                return
            caller, fn, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                ctl = Control(view, record, caller, self._strategies(),
                              strategy_file=self._strategy_file,
                              reports_dir=self._reports_dir)  # fmt: skip
                fut.set_result(fn(ctl))
            except Exception as exc:  # one command's bug is its answer, not the thread's end
                log.error("command failed", who=caller.who, exc_info=True)
                fut.set_exception(exc)

    def _end(self) -> None:
        """The loop is over: what waits is answered with the reason, and nothing more is
        taken."""
        with self._lock:
            self.died = self.died or RuntimeError("stopped")
            why = RuntimeError(f"the command thread has stopped: {self.died!r}")
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    return
                if job is not None and job[2].set_running_or_notify_cancel():
                    job[2].set_exception(why)
