"""The monitor's HTTP side (aiohttp on its own thread, loopback by default, read-only):

* ``/metrics``: Prometheus text format (``metrics.py``);
* ``/``: the dashboard, one page (``dashboard.html``) that fills itself from
* ``/events``: server-sent events, the latest snapshot as JSON once a second;
* ``/api/state``: the same snapshot once, for scripts and tests.

The dashboard changes nothing. The control API (``/api/v1/...``) and its page
(``/control``) are ``control/api.py``'s, on the same server: a change there needs a
control token. Every request passes ``web/guard.py``: its Host must be one of the
monitor's names, and with the monitor's token (required off loopback) it must carry it
(the API takes a control token instead); every answer carries a CSP (a page's own inline
script and style by hash, nothing from elsewhere) and may not be framed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from mytrading.control.api import PAGE as CONTROL_PAGE
from mytrading.control.api import ControlApi
from mytrading.web.guard import API_CSP, page_csp, protect
from mytrading.web.shed import ShedLimits
from mytrading.web.thread import HttpThread

PAGE = Path(__file__).with_name("dashboard.html")
PUSH_EVERY_S = 1.0


class MonitorServer(HttpThread):
    def __init__(
        self,
        host: str,
        port: int,
        snap: Callable[[], dict[str, Any]],
        registry: CollectorRegistry,
        names: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"}),
        token: str = "",
        limits: ShedLimits | None = None,
        api: ControlApi | None = None,
    ) -> None:
        super().__init__(host, port, "monitor-http", limits)
        self._snap = snap
        self._registry = registry
        self._names, self._token = names, token
        self.api = api
        self._csp = {
            "/": page_csp(PAGE.read_text()),
            "/control": page_csp(CONTROL_PAGE.read_text()),
        }
        self.clients = 0
        self.refused = 0

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/metrics", self._metrics)
        if self.api is not None:
            self.api.add_routes(app)
        return protect(
            app,
            self._names,
            self._token,
            csp=lambda r: self._csp.get(r.path, API_CSP),
            refused=self._refuse,
            own_auth=self.api.own_auth if self.api is not None else None,
        )

    def _refuse(self, _why: str) -> None:
        self.refused += 1

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
            pass  # the browser went away: nothing to clean up but the count
        finally:
            self.clients -= 1
        return resp
