"""An aiohttp application on a thread and event loop of its own, for a daemon whose loop
must never wait on HTTP (the signals daemon's webhook server, the monitor's dashboard and
metrics). ``start`` returns once it listens or has failed (``error``, for the daemon's
status); ``stop`` ends the loop and joins the thread. A subclass builds its app in
``make_app`` (on the server's thread: anything thread-bound it makes stays there) and
releases what it made in ``closed``."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod

from aiohttp import web

from mytrading.web.shed import Shed, ShedLimits, ShedSite
from mytrading.web.shed import runner as shed_runner


class HttpThread(ABC):
    def __init__(
        self, host: str, port: int, thread_name: str, limits: ShedLimits | None = None
    ) -> None:
        self.host, self.port = host, port
        self.shed = Shed(limits or ShedLimits())  # slow clients shed (httpshed.py)
        self.listening = False
        self.error = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    @abstractmethod
    def make_app(self) -> web.Application:
        """The application to serve, built on the server's thread."""

    def closed(self) -> None:  # noqa: B027 - an optional hook: most servers hold nothing
        """After the server stopped, on its thread: release what ``make_app`` made."""

    def start(self, timeout: float = 5.0) -> None:
        """Start the thread and wait until it listens or has failed (``error``)."""
        self._thread.start()
        self._started.wait(timeout)

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner: web.AppRunner | None = None
        try:
            runner = shed_runner(self.make_app(), self.shed.limits)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(ShedSite(runner, self.host, self.port, self.shed).start())
            self.listening = True
        except Exception as exc:  # reported through the daemon's status
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._started.set()
        if self.listening:
            loop.run_forever()
        if runner is not None:
            loop.run_until_complete(runner.cleanup())
        self.closed()
        loop.close()
        self.listening = False
