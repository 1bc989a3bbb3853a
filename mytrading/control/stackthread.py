"""The command layer on a thread of its own, for a caller that lives in an event loop
(the Telegram bot): one thread owns the bus view (ZeroMQ sockets belong to the thread
that made them), takes in the bus while idle so every heartbeat stays fresh, and runs the
commands one at a time, so two operators' flattens are one after the other, never
interleaved (the second finds the first done and says so).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import structlog

from mytrading.control.actions import Answer, Caller, Control, StackView
from mytrading.control.record import CommandRecord
from mytrading.control.strategyfile import StrategyFile

log = structlog.get_logger("control")

IDLE_POLL_S = 0.005  # a command waits at most this long to be taken up
Job = tuple[Caller, Callable[[Control], Answer], "Future[Answer]"]


class StackThread:
    def __init__(
        self,
        make_view: Callable[[], Any],
        record_path: Any,
        strategies: Callable[[], list[str]],
        strategy_file: StrategyFile | None = None,
    ) -> None:
        """``make_view`` builds the ``StackView`` (with a ``close``) on the thread."""
        self._make_view = make_view
        self._strategy_file = strategy_file
        self._record_path = record_path
        self._strategies = strategies
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stack", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        self._ready.wait(timeout)
        if self.error is not None:
            raise self.error

    def submit(self, caller: Caller, fn: Callable[[Control], Answer]) -> Future[Answer]:
        fut: Future[Answer] = Future()
        self._jobs.put((caller, fn, fut))
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
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    view.refresh(IDLE_POLL_S)  # the bus, while nothing is asked
                    continue
                if job is None:
                    return
                caller, fn, fut = job
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    ctl = Control(view, record, caller, self._strategies(),
                                  strategy_file=self._strategy_file)  # fmt: skip
                    fut.set_result(fn(ctl))
                except Exception as exc:  # one command's bug is its answer, not the thread's end
                    log.error("command failed", who=caller.who, exc_info=True)
                    fut.set_exception(exc)
        finally:
            record.close()
            close = getattr(view, "close", None)
            if close is not None:
                close()
