"""The monitor's HTTP side (aiohttp on its own thread, loopback by default, read-only):

* ``/metrics``: Prometheus text format (``metrics.py``);
* ``/``: the dashboard, one page (``dashboard.html``) that fills itself from
* ``/events``: server-sent events, the latest snapshot as JSON once a second;
* ``/api/state``: the same snapshot once, for scripts and tests.

Nothing here changes anything: there is no POST route.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

PAGE = Path(__file__).with_name("dashboard.html")
PUSH_EVERY_S = 1.0


class MonitorServer:
    def __init__(
        self,
        host: str,
        port: int,
        snap: Callable[[], dict[str, Any]],
        registry: CollectorRegistry,
    ) -> None:
        self.host, self.port = host, port
        self._snap = snap
        self._registry = registry
        self.listening = False
        self.error = ""
        self.clients = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-http", daemon=True)

    def start(self, timeout: float = 5.0) -> None:
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
            app = web.Application()
            app.router.add_get("/", self._page)
            app.router.add_get("/events", self._events)
            app.router.add_get("/api/state", self._state)
            app.router.add_get("/metrics", self._metrics)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, self.host, self.port).start())
            self.listening = True
        except Exception as exc:  # reported through the daemon's status
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._started.set()
        if self.listening:
            loop.run_forever()
        if runner is not None:
            loop.run_until_complete(runner.cleanup())
        loop.close()
        self.listening = False

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self._snap())

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(
            None, generate_latest, self._registry
        )
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        self.clients += 1
        try:
            while True:
                await resp.write(f"data: {json.dumps(self._snap())}\n\n".encode())
                await asyncio.sleep(PUSH_EVERY_S)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.clients -= 1
        return resp
