"""The HTTP control API under the monitor's server (``/api/v1/...``), and the control page.

Every action calls the one command layer (``control/actions.py``) as the command line
does, so the two cannot disagree. The API's defences, besides the server's own (loopback
unless allowed, the Host check, a CSP, no framing; ``web/guard.py``):

* **Tokens.** A change needs a control token (``main.py control token new NAME``) in
  ``Authorization: Bearer`` or ``X-Control-Token``, even on loopback; a read takes a token
  too, or whatever the dashboard takes (nothing on loopback, the monitor's token off it).
  A missing, wrong or revoked token gets 401 and is recorded.
* **CSRF.** A change must be JSON (``Content-Type: application/json``: a form on another
  site cannot send it without the browser asking first, which this server never allows)
  carrying the token in a header (a browser never adds it by itself), and a request whose
  ``Origin`` is another site is refused.
* **A rate per token**, ``RATE_PER_MIN`` changes and reads a minute; over it, 429.

The commands run one at a time on one worker thread (which owns the command pipe's
socket): two operators flattening at once produce one flatten and one "already".
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zmq
from aiohttp import web

from mytrading.control.actions import Answer, Caller, Control
from mytrading.control.record import CommandRecord
from mytrading.control.strategyfile import StrategyFile
from mytrading.control.tokens import Tokens
from mytrading.messaging import bus, wire
from mytrading.messaging.bus import Pusher
from mytrading.messaging.catchup import fetch_fills_since
from mytrading.web.guard import authorized

PAGE = Path(__file__).with_name("control.html")
RATE_PER_MIN = 60
RECORDED_REFUSALS = 30  # refusals recorded a minute from one address; the rest counted
ACTIONS = ("pause", "resume", "stop", "enable", "disable")  # POST strategies/{name}/...
STATUS = {  # a refusal's HTTP status
    "bad_value": 400,
    "unknown": 404,
    "risk_down": 503,
    "pipe_full": 503,
    "router_down": 503,
    "engine_down": 503,
    "holds": 409,
    "unconfirmed": 504,
}


class BeatsView:
    """The stack as the monitor sees it (its ``View``, filled by its loop from the bus),
    and risk's command pipe, used from the API's one worker thread."""

    def __init__(
        self,
        beats: Callable[[], dict[str, tuple[wire.Status, float]]],
        positions: Callable[[], list[wire.PositionSnapshot]],
        ctx: zmq.Context[Any],
        commands_endpoint: str,
        fresh_s: float,
        router_endpoint: str,
    ) -> None:
        self._beats = beats
        self._positions = positions
        self._ctx = ctx  # the daemon's (thread-safe; on tcp its sockets are CURVE clients)
        self._endpoint = commands_endpoint
        self._router = router_endpoint
        self.fresh_s = fresh_s
        self._pusher: Pusher | None = None  # made, used and closed on the worker thread

    def daemons(self) -> dict[str, wire.Status]:
        now = time.monotonic()
        return {n: st for n, (st, at) in self._beats().items() if now - at < self.fresh_s}

    def positions(self) -> list[wire.PositionSnapshot]:
        return self._positions()

    def fills(self) -> list[wire.Fill] | None:
        return fetch_fills_since(bus.asking(self._ctx, self._router), 0)

    def send(self, cmd: wire.Command) -> bool:
        if self._pusher is None:
            self._pusher = Pusher(self._ctx, self._endpoint, "monitor", "command")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # a PUSH may not be connected at once
            if self._pusher.send(cmd):
                return True
            time.sleep(0.01)
        return False

    def refresh(self, seconds: float) -> None:
        time.sleep(seconds)  # the monitor's loop takes the bus in meanwhile

    def close(self) -> None:
        if self._pusher is not None:
            self._pusher.sock.close(0)


class ControlApi:
    def __init__(
        self,
        view: BeatsView,
        control_db: Path,
        strategies: Callable[[], list[str]],
        names: frozenset[str],
        monitor_token: str = "",
        rate_per_min: int = RATE_PER_MIN,
        strategy_file: StrategyFile | None = None,
        reports_dir: Path | None = None,
    ) -> None:
        """``strategy_file``: where enable, disable and parameters are written;
        ``reports_dir``: the end-of-day reports (``/api/v1/shadow``)."""
        self.strategy_file = strategy_file
        self.reports_dir = reports_dir
        self.view = view
        self.strategies = strategies
        self.names = names
        self.monitor_token = monitor_token
        self.rate_per_min = rate_per_min
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control")
        # opened once: each thread that writes (the loop, the worker) keeps a connection
        self.record = CommandRecord(control_db)
        self.db = control_db
        self._calls: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self.refused = collections.Counter[str]()
        self._refusals: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/control", self._page)
        r.add_get("/api/v1/openapi.json", self._openapi)
        r.add_get("/api/v1/status", self._read("status"))
        r.add_get("/api/v1/strategies", self._strategies)
        for what in ("pnl", "positions", "trades", "halted", "schedule", "shadow"):
            r.add_get(f"/api/v1/{what}", self._read(what))
        r.add_get("/api/v1/control-log", self._log)
        r.add_post("/api/v1/strategies/{name}/{action}", self._strategy_action)
        r.add_post("/api/v1/kill-switch", self._kill_switch)
        r.add_put("/api/v1/strategies/{name}/params", self._params)

    @staticmethod
    def own_auth(request: web.Request) -> bool:
        """The API authenticates its own requests (a control token, or the dashboard's)."""
        return request.path.startswith("/api/v1/") and request.path != "/api/v1/openapi.json"

    def close(self) -> None:
        for done in (self.view.close, self.record.close):  # the worker's socket, connection
            self.worker.submit(done)
        self.worker.shutdown(wait=True)

    # ---------------------------------------------------------------- doors

    def _token(self, request: web.Request) -> str:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip().startswith("mt_"):
            return value.strip()
        return request.headers.get("X-Control-Token", "").strip()

    async def _caller(self, request: web.Request, change: bool) -> Caller | web.Response:
        """Who asks, or the refusal: 401 without a token in force (a read may do with the
        dashboard's own door), 403 for a change that could be a forgery, 429 over the rate."""
        origin = request.remote or ""
        token = self._token(request)
        name = self._tokens_check(token) if token else None
        if name is None:
            dashboard = not self.monitor_token or authorized(
                request.headers.get("Authorization", ""), self.monitor_token
            )
            if change or token or not dashboard:
                why = "a token in force is required" if not token else "token unknown or revoked"
                await self._refuse(request, "unauthorized", why)
                return _json({"ok": False, "text": why}, 401)
            return Caller("api:dashboard", "api", origin)
        if change:
            forged = self._forged(request)
            if forged:
                await self._refuse(request, f"api:{name}", forged)
                return _json({"ok": False, "text": forged}, 403)
        calls = self._calls[name]
        now = time.monotonic()
        while calls and now - calls[0] > 60:
            calls.popleft()
        if len(calls) >= self.rate_per_min:
            await self._refuse(request, f"api:{name}", "rate limit")
            return _json({"ok": False, "text": f"more than {self.rate_per_min} a minute"}, 429)
        calls.append(now)
        return Caller(f"api:{name}", "api", origin)

    def _forged(self, request: web.Request) -> str:
        if request.content_type != "application/json":
            return "a change is a JSON request (Content-Type: application/json)"
        origin = request.headers.get("Origin")
        if origin is not None:
            host = (urllib.parse.urlsplit(origin).hostname or "").lower()
            if host not in self.names:
                return f"a change from another site ({origin}) is refused"
        return ""

    def _tokens_check(self, token: str) -> str | None:
        """On a connection of its own each time: a kept one missed a token made by another
        process a moment before (its first request refused, tried), so a revoke or a new
        token is seen at the next request for certain."""
        tokens = Tokens(self.db)
        try:
            return tokens.check(token)
        finally:
            tokens.close()

    async def _refuse(self, request: web.Request, who: str, why: str) -> None:
        """Counted, and recorded at once (a refusal never waits behind a command): at most
        ``RECORDED_REFUSALS`` a minute from one address, so a flood fills no disk."""
        self.refused[why] += 1
        seen = self._refusals[request.remote or ""]
        now = time.monotonic()
        while seen and now - seen[0] > 60:
            seen.popleft()
        if len(seen) >= RECORDED_REFUSALS:
            self.refused["not recorded (flood)"] += 1
            return
        seen.append(now)
        self.record.add(who, "api", request.remote or "", f"{request.method} {request.path}", {},
                        "refused", why)  # fmt: skip

    async def _run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn)

    def _control(self, caller: Caller) -> Control:
        """The command layer for one request: the API's reads are a page's polling, not
        kept in the record; its changes and refusals are."""
        return Control(self.view, self.record, caller, self.strategies(), record_reads=False,
                       strategy_file=self.strategy_file, reports_dir=self.reports_dir)  # fmt: skip

    async def _do(self, caller: Caller, call: Callable[[Control], Answer]) -> web.Response:
        a: Answer = await self._run(lambda: call(self._control(caller)))
        body = {"ok": a.ok, "changed": a.changed, "outcome": a.outcome, "text": a.text, **a.data}
        return _json(body, 200 if a.ok else STATUS.get(a.refusal, 400))

    # -------------------------------------------------------------- handlers

    def _read(self, what: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            caller = await self._caller(request, change=False)
            if isinstance(caller, web.Response):
                return caller
            return await self._do(caller, lambda c: getattr(c, what)())

        return handler

    async def _strategies(self, request: web.Request) -> web.Response:
        """Each strategy: its state (with why), P&L and open positions."""
        caller = await self._caller(request, change=False)
        if isinstance(caller, web.Response):
            return caller
        return await self._do(caller, lambda c: c.strategies_overview())

    async def _log(self, request: web.Request) -> web.Response:
        caller = await self._caller(request, change=False)
        if isinstance(caller, web.Response):
            return caller
        try:
            n = max(1, min(500, int(request.query.get("n", "50"))))
        except ValueError:
            return _json({"ok": False, "text": "n is a number"}, 400)

        commands = await self._run(lambda: [e.__dict__ for e in self.record.recent(n)])
        return _json({"ok": True, "commands": commands}, 200)

    async def _strategy_action(self, request: web.Request) -> web.Response:
        caller = await self._caller(request, change=True)
        if isinstance(caller, web.Response):
            return caller
        name, action = request.match_info["name"], request.match_info["action"]
        if action not in ACTIONS:
            return _json({"ok": False, "text": f"{action!r}: one of {', '.join(ACTIONS)}"}, 404)
        reason = await _reason(request)
        return await self._do(caller, lambda c: getattr(c, action)(name, reason))

    async def _params(self, request: web.Request) -> web.Response:
        """``{"params": {"fast": 8}, "reason": "..."}``: new parameters for a running
        strategy, checked as ``config check`` checks them."""
        caller = await self._caller(request, change=True)
        if isinstance(caller, web.Response):
            return caller
        body = await _body(request) or {}
        params = body.get("params")
        if not isinstance(params, dict) or not params:
            return _json({"ok": False, "text": 'a JSON body: {"params": {"NAME": VALUE}}'}, 400)
        name, reason = request.match_info["name"], str(body.get("reason") or "")
        return await self._do(caller, lambda c: c.set_params(name, params, reason))

    async def _kill_switch(self, request: web.Request) -> web.Response:
        caller = await self._caller(request, change=True)
        if isinstance(caller, web.Response):
            return caller
        body = await _body(request)
        if body is None:
            return _json({"ok": False, "text": 'a JSON body: {"state": "on"|"off"|"flatten"}'}, 400)
        state, reason = str(body.get("state", "")), str(body.get("reason", ""))
        return await self._do(caller, lambda c: c.kill_switch(state, reason))

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def _openapi(self, request: web.Request) -> web.Response:
        return _json(OPENAPI, 200)


async def _body(request: web.Request) -> dict[str, Any] | None:
    """The request's JSON object (None: no body, not JSON, or not an object)."""
    if not request.can_read_body:
        return None
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def _reason(request: web.Request) -> str:
    return str((await _body(request) or {}).get("reason", ""))


def _json(body: Any, status: int) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))


_ANSWER = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "changed": {"type": "boolean"},
        "outcome": {"type": "string", "enum": ["done", "unchanged", "refused", "unconfirmed"]},
        "text": {"type": "string"},
    },
}
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}, {"controlToken": []}]
_CHANGE_ANSWERS = {
    "200": {
        "description": "done, or nothing to do",
        "content": {"application/json": {"schema": _ANSWER}},
    },
    "400": {"description": "a bad value"},
    "401": {"description": "no token in force (recorded)"},
    "403": {"description": "not JSON, or from another site"},
    "404": {"description": "no such strategy (the answer lists those that exist)"},
    "429": {"description": "over the token's rate"},
    "503": {"description": "risk is not running: nothing was changed"},
    "504": {"description": "risk did not confirm in time"},
}


def _change(summary: str) -> dict[str, Any]:
    return {"summary": summary, "security": _AUTH, "responses": _CHANGE_ANSWERS}


def _read(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "responses": {"200": {"description": "the answer"}, "401": {"description": "no token"}},
    }


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "mytrading control API", "version": "1"},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "controlToken": {"type": "apiKey", "in": "header", "name": "X-Control-Token"},
        }
    },
    "paths": {
        "/api/v1/status": {"get": _read("the daemons, the stack's state, the funds")},
        "/api/v1/strategies": {"get": _read("each strategy: state and why, P&L, positions")},
        "/api/v1/pnl": {"get": _read("gross, charges and net per strategy and for the stack")},
        "/api/v1/positions": {"get": _read("open positions per strategy")},
        "/api/v1/trades": {"get": _read("today's fills, as the router numbers them")},
        "/api/v1/halted": {"get": _read("risk's trading states with why, who and when")},
        "/api/v1/schedule": {"get": _read("today's plan of each scheduled strategy")},
        "/api/v1/shadow": {
            "get": _read("the latest day's live trading against its own backtest, by cause")
        },
        "/api/v1/control-log": {
            "get": {
                **_read("the command record, newest first"),
                "parameters": [{"name": "n", "in": "query", "schema": {"type": "integer"}}],
            }
        },
        **{
            f"/api/v1/strategies/{{name}}/{action}": {
                "post": {
                    **_change(what),
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"reason": {"type": "string"}},
                                }
                            }
                        }
                    },
                }
            }
            for action, what in (
                ("pause", "no new entries; exits and protective orders keep working"),
                ("resume", "active again (also after a halt by risk or the router)"),
                ("stop", "paused, and its positions closed by risk's exits"),
                ("enable", "started on the running engine; enabled = true written"),
                ("disable", "stopped on the running engine (flat only); enabled = false written"),
            )
        },
        "/api/v1/strategies/{name}/params": {
            "put": {
                **_change("new parameters, checked, written, taken up by the engine (flat only)"),
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["params"],
                                "properties": {
                                    "params": {"type": "object"},
                                    "reason": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            }
        },
        "/api/v1/kill-switch": {
            "post": {
                **_change("the kill switch: on, off, or flatten"),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["state"],
                                "properties": {
                                    "state": {"type": "string", "enum": ["on", "off", "flatten"]},
                                    "reason": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            }
        },
    },
}
