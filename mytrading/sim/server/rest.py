"""The OpenAlgo-compatible REST API on aiohttp: ``POST /api/v1/<endpoint>`` with a JSON body.

Order of checks, as in OpenAlgo's flask-restx resources: the per-IP, per-endpoint rate
limit (429 with flask-limiter's body, ``{"message": "10 per 1 second"}``: no ``status``,
no ``retry_after``, no ``Retry-After`` header), a JSON body (anything else is a 500, as on the real
server), the schema (400; order endpoints phrase the errors as a Python repr string, data
endpoints as a dict), then the API key (403 ``Invalid openalgo apikey``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from aiohttp import web

from mytrading import hosttime
from mytrading.messaging import wire
from mytrading.sim.exchange import SimExchange
from mytrading.sim.replies import Reply, err, ok
from mytrading.sim.server.faults import PROXY_502, PROXY_503, FaultPlan
from mytrading.sim.server.schemas import EXCHANGES, ORDER_FAMILY, SCHEMAS, validate

log = structlog.get_logger("simserver")

ORDER_ENDPOINTS = frozenset({"placeorder", "modifyorder", "cancelorder", "splitorder"})
SMART_ENDPOINTS = frozenset({"placesmartorder"})


@dataclass(frozen=True)
class RateLimits:
    """Requests per second per client IP and endpoint (OpenAlgo's .sample.env defaults)."""

    order_per_s: int = 10
    smart_per_s: int = 10
    api_per_s: int = 50

    def for_endpoint(self, ep: str) -> int:
        if ep in ORDER_ENDPOINTS:
            return self.order_per_s
        if ep in SMART_ENDPOINTS:
            return self.smart_per_s
        return self.api_per_s


def limited(per_s: int) -> dict[str, Any]:
    """OpenAlgo's 429 on ``/api/v1``: flask-limiter's description of the limit that was
    hit, and nothing else (the ``retry_after`` handler of ``app.py`` is not reached)."""
    return {"message": f"{per_s} per 1 second"}


class MovingWindow:
    """Flask-Limiter's moving window: at most N hits in any 1-second span."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], collections.deque[float]] = collections.defaultdict(
            collections.deque
        )

    def allow(self, key: tuple[str, str], limit: int, now: float) -> bool:
        q = self.hits[key]
        while q and now - q[0] >= 1.0:
            q.popleft()
        if len(q) >= limit:
            return False
        q.append(now)
        return True


class SimServer:
    def __init__(self, exchange: SimExchange, api_key: str, limits: RateLimits) -> None:
        self.ex = exchange
        self.api_key = api_key
        self.limits = limits
        self.window = MovingWindow()
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults: dict[str, list[str]] = collections.defaultdict(list)
        self.plan = FaultPlan()  # MT_SIM_FAULTS's seeded bad days (faults.py)
        self.hang_s = 10.0
        self.delay_s = 0.0  # a broker's round trip, before every answer (benchmarks)
        # OpenAlgo spaces history calls process-wide (services/history_service.py)
        self.history_spacing_s = 0.0
        self._history_lock = asyncio.Lock()
        self._history_last = 0.0
        self.session_expired = False  # every call then answers 403, as after OpenAlgo's logout
        self.on_drop_ws: Callable[[float], Awaitable[None]] | None = None
        self.ws_sent: Callable[[], tuple[int, int]] | None = None
        self.handlers: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "ping": lambda f: ok(data={"message": "pong", "broker": "mytrading-sim"}),
            "placeorder": self.ex.place,
            "placesmartorder": self.ex.smart,
            "splitorder": self._split,
            "modifyorder": self.ex.modify,
            "cancelorder": lambda f: self.ex.cancel(f["orderid"]),
            "cancelallorder": lambda f: self.ex.cancel_all(),
            "closeposition": lambda f: self.ex.close_all(),
            "orderstatus": lambda f: self.ex.orderstatus(f["orderid"]),
            "openposition": self.ex.openposition,
            "orderbook": lambda f: self.ex.orderbook(),
            "tradebook": lambda f: self.ex.tradebook(),
            "positionbook": lambda f: self.ex.positionbook(),
            "holdings": lambda f: self.ex.holdings_book(),
            "funds": lambda f: self.ex.funds(),
            "intervals": lambda f: self.ex.intervals(),
            "history": self.ex.history,
            "optionsymbol": self.ex.optionsymbol,
            "optionchain": self.ex.optionchain,
            "margin": lambda f: self.ex.margin(f["positions"]),
            "basketorder": self._basket,
            "quotes": lambda f: self.ex.quotes(f["exchange"], f["symbol"]),
            "depth": lambda f: self.ex.depth(f["exchange"], f["symbol"]),
            "symbol": lambda f: self.ex.symbol(f["exchange"], f["symbol"]),
            "search": lambda f: self.ex.search(f["query"], f["exchange"]),
            "expiry": lambda f: self.ex.expiry(f["symbol"], f["exchange"], f["instrumenttype"]),
        }

    def app(self, faults: bool | FaultPlan = False) -> web.Application:
        if isinstance(faults, FaultPlan):
            self.plan = faults
            faults = faults.harness
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/api/v1/instruments", self.instruments)
        app.router.add_post("/api/v1/{endpoint:.+}", self.handle)
        if faults:
            app.router.add_post("/_sim/faults", self.set_faults)
            app.router.add_get("/_sim/counts", self.get_counts)
            app.router.add_post("/_sim/session", self.set_session)
            app.router.add_get("/_sim/trades_wall", self.get_trades_wall)
        return app

    async def set_faults(self, request: web.Request) -> web.Response:
        """Test harness only (MT_SIM_FAULTS): queue faults for the next calls of an endpoint.

        ``{"endpoint": "placeorder", "faults": ["500", "500_after", "hang_after", "429"]}``:
        ``500``/``429`` answer without doing anything; ``500_after`` does the work and then
        answers 500; ``hang_after`` does the work and answers only after ``hang_s``.
        """
        body = await request.json()
        self.faults[body["endpoint"]].extend(body["faults"])
        self.hang_s = float(body.get("hang_s", self.hang_s))
        if body.get("drop_websockets") and self.on_drop_ws is not None:
            await self.on_drop_ws(float(body.get("refuse_s", 0.0)))
        return web.json_response({"status": "success"})

    async def set_session(self, request: web.Request) -> web.Response:
        """Test harness only: ``{"expired": true}`` makes every call answer as OpenAlgo does
        once the broker session is revoked (its daily 03:00 expiry, or a logout): 403
        ``Invalid openalgo apikey``; ``{"expired": false}`` is the next login."""
        body = await request.json()
        self.session_expired = bool(body["expired"])
        log.warning("session " + ("expired" if self.session_expired else "restored"))
        return web.json_response({"status": "success", "expired": self.session_expired})

    async def get_trades_wall(self, request: web.Request) -> web.Response:
        """Test harness only: the wall time (ns) of each order's latest trade, the start of
        the fill latency ``bench/fill_latency.py`` measures."""
        return web.json_response(self.ex.trade_wall_ns)

    async def get_counts(self, request: web.Request) -> web.Response:
        counts = dict(self.counts)
        if self.ws_sent is not None:
            counts["ws_market_data_sent"], counts["ws_market_data_dropped"] = self.ws_sent()
        return web.json_response(counts)

    async def handle(self, request: web.Request) -> web.Response:
        ep = request.match_info["endpoint"].strip("/")
        raw = await request.read()
        fault = self.faults[ep].pop(0) if self.faults.get(ep) else ""
        self.counts[ep] += 1
        drawn = self.plan.draw(ep)
        if drawn:
            self.counts[f"{ep}:fault_{drawn}"] += 1
        if drawn == "refuse":  # a proxy in front of the broker: nothing reached it
            return web.Response(status=503, text=PROXY_503, content_type="text/html")
        if fault in ("500", "429"):
            self.counts[f"{ep}:{fault}"] += 1
            if fault == "429":
                return web.json_response(limited(self.limits.for_endpoint(ep)), status=429)
            body = {"status": "error", "message": "Internal error"}
            return web.json_response(body, status=500)
        paced = ep == "history" and self.history_spacing_s > 0
        async with self._history_lock if paced else contextlib.nullcontext():
            if paced:  # one history call at a time, spaced, for the whole server
                wait = self._history_last + self.history_spacing_s - hosttime.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._history_last = hosttime.monotonic()
            code, body = self.dispatch(ep, request.remote or "?", raw)
        self.counts[f"{ep}:{code}"] += 1
        if drawn == "lose":  # done at the broker; the reply lost on the way back
            return web.Response(status=502, text=PROXY_502, content_type="text/html")
        if drawn == "late":  # done, and answered after the client has given up
            await asyncio.sleep(self.plan.late_s)
        if drawn == "garble" and code == 200:
            status, kind, raw_body = self.plan.garbage()
            return web.Response(status=status, body=raw_body, content_type=kind)
        body = self.plan.shift(ep, body)
        if fault == "500_after":
            return web.json_response({"status": "error", "message": "Internal error"}, status=500)
        if fault == "hang_after":
            await asyncio.sleep(self.hang_s)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return web.json_response(body, status=code)

    def dispatch(self, ep: str, client: str, raw: bytes) -> Reply:
        if ep not in self.handlers and ep != "multiquotes":
            return err(404, f"The requested URL /api/v1/{ep} was not found on the server.")
        if not self.window.allow((client, ep), self.limits.for_endpoint(ep), hosttime.monotonic()):
            return 429, limited(self.limits.for_endpoint(ep))
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            log.warning("non-JSON body", endpoint=ep, client=client, size=len(raw))
            return err(500, "An unexpected error occurred")
        if ep == "multiquotes":
            return self._multiquotes(body)
        fields, errors = validate(SCHEMAS[ep], body)
        if errors:
            return err(400, str(errors) if ep in ORDER_FAMILY else errors)
        if self.session_expired or not hmac.compare_digest(str(fields["apikey"]), self.api_key):
            return err(403, "Invalid openalgo apikey")
        try:
            return self.handlers[ep](fields)
        except Exception:
            log.exception("handler failed", endpoint=ep)
            return err(500, "An unexpected error occurred")

    def _multiquotes(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return err(400, {"_schema": ["Invalid input type."]})
        unknown = {k: ["Unknown field."] for k in body if k not in ("apikey", "symbols")}
        symbols = body.get("symbols")
        if unknown or not isinstance(symbols, list) or "apikey" not in body:
            errors: dict[str, list[str]] = dict(unknown)
            if "apikey" not in body:
                errors["apikey"] = ["Missing data for required field."]
            if not isinstance(symbols, list):
                errors["symbols"] = [
                    "Missing data for required field." if symbols is None else "Not a valid list."
                ]
            return err(400, errors)
        if not hmac.compare_digest(str(body["apikey"]), self.api_key):
            return err(403, "Invalid openalgo apikey")
        results = []
        for item in symbols:
            sym = item.get("symbol") if isinstance(item, dict) else None
            exch = item.get("exchange") if isinstance(item, dict) else None
            if not isinstance(sym, str) or exch not in EXCHANGES:
                results.append({"symbol": sym, "exchange": exch, "error": "Invalid symbol entry"})
                continue
            code, q = self.ex.quotes(exch, sym)
            if code == 200:
                results.append({"symbol": sym, "exchange": exch, "data": q["data"]})
            else:
                results.append({"symbol": sym, "exchange": exch, "error": q["message"]})
        return ok(results=results)

    def _basket(self, f: dict[str, Any]) -> Reply:
        """Each order placed in turn, BUY legs before SELL legs (as OpenAlgo does)."""
        legs = [o for o in f["orders"] if isinstance(o, dict)]
        if len(legs) != len(f["orders"]) or not legs:
            return err(400, "{'orders': ['Invalid input type.']}")
        legs.sort(key=lambda o: str(o.get("action", "")).upper() != "BUY")
        results = []
        for leg in legs:
            fields, errors = validate(
                SCHEMAS["placeorder"], {"apikey": "", "strategy": f["strategy"], **leg}
            )
            if errors:
                results.append(
                    {"symbol": leg.get("symbol"), "status": "error", "message": str(errors)}
                )
                continue
            code, body = self.ex.place(fields)
            row = {"symbol": fields["symbol"], "status": body["status"]}
            row.update(
                {"orderid": body["orderid"]} if code == 200 else {"message": body["message"]}
            )
            results.append(row)
        return ok(results=results)

    async def instruments(self, request: web.Request) -> web.Response:
        """``GET /api/v1/instruments?apikey=..&exchange=..&format=json|csv``."""
        q = request.query
        if not hmac.compare_digest(q.get("apikey", ""), self.api_key):
            return web.json_response(
                {"status": "error", "message": "Invalid openalgo apikey"}, status=403
            )
        rows = self.ex.instruments(q.get("exchange"))
        if q.get("format", "json") == "csv":
            cols = list(rows[0]) if rows else []
            lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
            return web.Response(text="\n".join(lines), content_type="text/csv")
        return web.json_response({"status": "success", "data": rows})

    def _split(self, f: dict[str, Any]) -> Reply:
        total, size = f["quantity"], f.pop("splitsize")
        n = -(-total // size)
        if n > 100:
            return err(400, "Split would create more than 100 orders")
        results = []
        for i in range(n):
            qty = min(size, total - i * size)
            code, body = self.ex.place({**f, "quantity": qty})
            row = {"order_num": i + 1, "quantity": qty, "status": body["status"]}
            row.update(
                {"orderid": body["orderid"]} if code == 200 else {"message": body["message"]}
            )
            results.append(row)
        return ok(split_size=size, total_quantity=total, results=results)


async def run_market(
    ex: SimExchange,
    hz: float,
    stop: asyncio.Event,
    publish: Callable[[list[wire.Tick]], Awaitable[None]] | None = None,
) -> None:
    """Step the simulated market at ``hz``: match resting orders, stream the quotes.

    The steps keep a fixed phase to the market clock's anchor, half a period off its
    grid: the same start gives ticks at the same market times run after run (at the
    default 30x and 4/s, 3.75 s after each minute, never on a bar's boundary, where a
    tick's arrival and the clock would race to close the bar)."""
    period = 1.0 / hz
    loop = asyncio.get_running_loop()
    due = loop.time()
    anchor = getattr(getattr(ex, "clock", None), "anchor_wall_ns", 0)
    if anchor:
        since = (hosttime.time_ns() - anchor) / 1e9
        due += (period / 2 - since) % period
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), due - loop.time())
    while not stop.is_set():
        ticks = ex.step()
        if publish is not None:
            await publish(ticks)
        # Absolute deadlines: the rate does not sag by the time each step takes. When a
        # step overruns, the next starts at once rather than trying to catch up.
        due = max(due + period, loop.time())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), due - loop.time())
