"""OpenAlgo's WebSocket proxy protocol (docs/openalgo.md §4) on aiohttp.

Text frames of JSON. The action is read from ``action`` or else ``type``. A client must
authenticate within the grace period or the socket is closed with 4401 "auth timeout".
Errors carry no ``type``: ``{"status":"error","code":...,"message":...}``, and the socket
stays open. Quotes go out as ``market_data`` in each mode a client subscribed the symbol
with (subscribed in Quote and Depth, it gets both streams, like the real proxy, whose
per-mode subscriptions each receive the ticks); an unsubscribe names the mode it ends
(default Quote). Order changes go as ``order_update`` only to the clients that sent
``{"action": "subscribe_orders"}`` (answered ``{"type": "subscribe_orders", "status":
"success"}``), as the real proxy sends them (``websocket_proxy/server.py``,
``subscribe_orders_client``): a client that forgets to subscribe hears of no order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import hmac
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from aiohttp import WSMsgType, web

from mytrading import hosttime
from mytrading.messaging import wire
from mytrading.sim.exchange import SimExchange
from mytrading.sim.server.feedfaults import FeedPlan

log = structlog.get_logger("simserver.ws")
BROKER = "mytrading-sim"
MODES = {"1": 1, "2": 2, "3": 3, "LTP": 1, "QUOTE": 2, "DEPTH": 3}
MODE_LABEL = {1: "LTP", 2: "Quote", 3: "Depth"}
MAX_QUEUE = 1024
DELIVER_SLICE = MAX_QUEUE // 4  # ticks queued for every client before the senders run
_encode = msgspec.json.encode  # UTF-8 JSON bytes, several times faster than json.dumps


def _error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "code": code, "message": message}


@dataclass(eq=False)  # identity hashing: clients live in a set
class Client:
    ws: web.WebSocketResponse
    authed: bool = False
    orders: bool = False  # subscribed to order updates (subscribe_orders)
    # (exchange, symbol) -> the modes subscribed (1 LTP, 2 Quote, 3 Depth)
    subs: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    sent: int = 0
    # Outgoing market data, bounded (1,024, as OpenAlgo's WS_MAX_QUEUE): a slow client
    # loses the ticks that find its queue full (counted) and never stalls the market or
    # other clients.
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUE))


class FeedServer:
    def __init__(
        self,
        ex: SimExchange,
        api_key: str,
        auth_grace_s: float = 15.0,
        plan: FeedPlan | None = None,
    ) -> None:
        self.ex = ex
        self.plan = plan or FeedPlan()  # how late and messy the feed is (feedfaults.py)
        # (due, order, ticks): a heap of what the feed's plan holds back, a step's ticks
        # together (and a reordered tick alone)
        self._held: list[tuple[float, int, list[wire.Tick]]] = []
        self._order = itertools.count()
        self._deliverer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._started = hosttime.monotonic()
        self.api_key = api_key
        self.auth_grace_s = auth_grace_s
        self.clients: set[Client] = set()
        self._day_open: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.refuse_until = 0.0
        self.sent_total = 0
        self.dropped_total = 0
        ex.listeners.append(self._order_update)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.handle)
        app.router.add_get("/ws", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        if hosttime.monotonic() < self.refuse_until:  # fault injection: an outage
            await ws.close(code=1013, message=b"try again later")
            return ws
        client = Client(ws)
        self.clients.add(client)
        sender = asyncio.create_task(self._sender(client))
        grace = asyncio.get_running_loop().call_later(
            self.auth_grace_s,
            lambda: (
                None
                if client.authed
                else asyncio.ensure_future(ws.close(code=4401, message=b"auth timeout"))
            ),
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = self.on_text(client, msg.data)
                    if reply is not None:
                        await ws.send_json(reply)
                elif msg.type == WSMsgType.BINARY:
                    await ws.send_json(_error("INVALID_JSON", "Binary frames are not supported"))
        finally:
            grace.cancel()
            sender.cancel()
            self.clients.discard(client)
            self._watch()
        return ws

    def _watch(self) -> None:
        """Tell the exchange what its clients subscribed: the options it quotes."""
        self.ex.subscribed = {k for c in self.clients for k in c.subs}

    async def _sender(self, c: Client) -> None:
        """Deliver one client's market data from its queue, at its own pace."""
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            while not c.ws.closed:
                data = await c.queue.get()
                await c.ws.send_frame(data, WSMsgType.TEXT)  # UTF-8 JSON, sent as text
                c.sent += 1
                self.sent_total += 1

    def on_text(self, c: Client, text: str) -> dict[str, Any] | None:
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            return _error("INVALID_JSON", "Invalid JSON message")
        if not isinstance(msg, dict):
            return _error("INVALID_JSON", "Message must be a JSON object")
        action = msg.get("action") or msg.get("type")
        if action == "authenticate":
            key = msg.get("api_key") or msg.get("apikey") or ""
            if not hmac.compare_digest(str(key), self.api_key):
                return _error("AUTHENTICATION_ERROR", "Invalid API key")
            c.authed = True
            return {
                "type": "auth",
                "status": "success",
                "message": "Authentication successful",
                "broker": BROKER,
                "user_id": "sim",
                "supported_features": {"ltp": True, "quote": True, "depth": True},
            }
        if action == "ping":
            return {
                "type": "pong",
                "status": "success",
                "server_timestamp": self.plan.pong_ms(hosttime.time() * 1000),
            }
        if not c.authed:
            return _error("NOT_AUTHENTICATED", "Please authenticate first")
        if action == "subscribe":
            reply = self._subscribe(c, msg)
            self._watch()
            return reply
        if action == "unsubscribe":
            reply = self._unsubscribe(c, msg)
            self._watch()
            return reply
        if action == "unsubscribe_all":
            c.subs.clear()
            self._watch()
            return {"type": "unsubscribe", "status": "success", "message": "Unsubscribed from all"}
        if action in ("subscribe_orders", "unsubscribe_orders"):
            c.orders = action == "subscribe_orders"
            reply = {
                "type": action,
                "status": "success",
                "message": "Subscribed to order updates"
                if c.orders
                else "Unsubscribed from order updates",
            }
            if msg.get("request_id") is not None:
                reply["request_id"] = msg["request_id"]
            return reply
        if action == "get_broker_info":
            return {"type": "broker_info", "status": "success", "broker": BROKER}
        return _error("INVALID_ACTION", f"Unsupported action: {action}")

    def _entries(self, msg: dict[str, Any]) -> list[dict[str, Any]] | None:
        if isinstance(msg.get("symbols"), list):
            return msg["symbols"]
        if "symbol" in msg and "exchange" in msg:
            return [{"symbol": msg["symbol"], "exchange": msg["exchange"]}]
        return None

    def _subscribe(self, c: Client, msg: dict[str, Any]) -> dict[str, Any]:
        mode = MODES.get(str(msg.get("mode", 2)).upper())
        if mode is None:
            return _error("INVALID_MODE", f"Invalid mode: {msg.get('mode')}")
        entries = self._entries(msg)
        if entries is None:
            return _error("INVALID_PARAMETERS", "symbols (or symbol and exchange) required")
        subs, failed = [], 0
        for e in entries:
            sym, exch = (
                (str(e.get("symbol")), str(e.get("exchange"))) if isinstance(e, dict) else ("", "")
            )
            known = bool(sym) and ((exch, sym) in self.ex.last or self.ex.market.listed(exch, sym))
            if known:
                c.subs.setdefault((exch, sym), set()).add(mode)
            failed += not known
            subs.append(
                {
                    "symbol": sym,
                    "exchange": exch,
                    "status": "success" if known else "error",
                    "mode": MODE_LABEL[mode],
                    "depth": int(msg.get("depth", 5)),
                    "broker": BROKER,
                    **({} if known else {"message": f"Symbol {sym} not found on {exch}"}),
                }
            )
        return {
            "type": "subscribe",
            "status": "success" if not failed else ("partial" if failed < len(subs) else "error"),
            "subscriptions": subs,
            "message": "Subscription processing complete",
            "broker": BROKER,
        }

    def _unsubscribe(self, c: Client, msg: dict[str, Any]) -> dict[str, Any]:
        entries = self._entries(msg)
        if entries is None:
            return _error("INVALID_PARAMETERS", "symbols (or symbol and exchange) required")
        ok, failed = [], []
        for e in entries:
            key = (e.get("exchange"), e.get("symbol")) if isinstance(e, dict) else None
            # The per-entry mode, else the message's, else Quote (the real server's default).
            mode = MODES.get(str(e.get("mode", msg.get("mode", 2)) if key else "").upper())
            modes = c.subs.get(key) if key else None  # type: ignore[arg-type]  # key: not None
            if modes is not None and mode in modes:
                modes.discard(mode)
                if not modes:
                    del c.subs[key]  # type: ignore[arg-type]  # modes: so key is set
                ok.append({"symbol": key[1], "exchange": key[0], "mode": MODE_LABEL[mode]})
            else:
                failed.append(e)
        status = "success" if not failed else ("partial" if ok else "error")
        return {"type": "unsubscribe", "status": status, "successful": ok, "failed": failed}

    async def drop_all(self, refuse_s: float = 0.0) -> None:
        """Close every client connection, and refuse new ones for ``refuse_s`` (faults)."""
        self.refuse_until = hosttime.monotonic() + refuse_s
        for c in list(self.clients):
            await c.ws.close(code=1011, message=b"server dropped the connection")

    # --------------------------------------------------------------- broadcast

    def payload(self, t: wire.Tick, mode: int) -> dict[str, Any]:
        tick = self.ex.refdata.instrument(t.exchange, t.symbol).tick_size if mode == 3 else 0.0
        return market_data(t, mode, self._day_open, tick)

    async def broadcast(self, ticks: list[wire.Tick]) -> None:
        """Stamp the market's ticks as the broker would and send them, at once or when
        the feed's plan lets them go (delay, jitter, reorder, stall: ``feedfaults.py``)."""
        plan = self.plan
        if plan.restamps:
            ticks = [plan.stamp(t) for t in ticks]
        if plan.immediate:
            await self.deliver(ticks)
            return
        now = asyncio.get_running_loop().time()
        due = now + plan.batch_delay_wall_s(hosttime.monotonic() - self._started)
        late = plan.reordered(len(ticks))
        if late:
            for i in late:
                extra = plan.reorder_wall_s()
                heapq.heappush(self._held, (due + extra, next(self._order), [ticks[i]]))
            gone = set(late)
            ticks = [t for i, t in enumerate(ticks) if i not in gone]
        heapq.heappush(self._held, (due, next(self._order), ticks))
        if self._deliverer is None or self._deliverer.done():
            self._deliverer = asyncio.create_task(self._deliver_held())
        self._wake.set()
        await asyncio.sleep(0)

    async def _deliver_held(self) -> None:
        """Send the held ticks as each falls due, in the order they fall due."""
        loop = asyncio.get_running_loop()
        held = self._held
        while True:
            self._wake.clear()
            now = loop.time()
            due: list[wire.Tick] = []
            while held and held[0][0] <= now:
                due += heapq.heappop(held)[2]
            if due:
                await self.deliver(due)
                continue
            wait = held[0][0] - now if held else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def deliver(self, ticks: list[wire.Tick]) -> None:
        """Queue each subscribed tick for each client; never waits on a client. A step's
        ticks go in slices of ``DELIVER_SLICE``, the senders let run between them: the
        market steps every instrument at once, and 2,041 instruments' ticks put in one go
        overflowed a client's queue (1,024) that was keeping up (bench/scale.py: half of
        every step dropped, the feed at 6 % of a core). A client that falls behind still
        loses what finds its queue full."""
        for i in range(0, len(ticks), DELIVER_SLICE):
            part = ticks[i : i + DELIVER_SLICE]
            for c in list(self.clients):
                if not c.authed or not c.subs or c.ws.closed:
                    continue
                for t in part:
                    for mode in c.subs.get((t.exchange, t.symbol), ()):
                        try:
                            c.queue.put_nowait(_encode(self.payload(t, mode)))
                        except asyncio.QueueFull:
                            self.dropped_total += 1
            await asyncio.sleep(0)  # let the senders run

    def _order_update(self, update: dict[str, Any]) -> None:
        for c in list(self.clients):
            if c.authed and c.orders and not c.ws.closed:
                task = asyncio.ensure_future(self._send_quietly(c, update))
                self._tasks.add(task)  # keep a reference until it is done
                task.add_done_callback(self._tasks.discard)

    async def _send_quietly(self, c: Client, msg: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await c.ws.send_json(msg)


def market_data(
    t: wire.Tick, mode: int, day_open: dict[tuple[str, str], float], tick: float
) -> dict[str, Any]:
    """One ``market_data`` message as OpenAlgo sends it in ``mode`` (1 LTP, 2 quote, 3
    depth with five levels ``tick`` apart); ``day_open`` keeps each symbol's first price."""
    ms = t.exch_ns // 1_000_000
    data: dict[str, Any] = {"ltp": t.ltp, "ltt": ms, "timestamp": ms}
    if mode >= 2:
        o = day_open.setdefault((t.exchange, t.symbol), t.ltp)
        data.update(
            open=o,
            high=t.ltp,
            low=t.ltp,
            close=o,
            volume=t.volume,
            last_quantity=0,
            last_trade_quantity=0,
            average_price=t.ltp,
            avg_trade_price=t.ltp,
            total_buy_quantity=t.bid_qty,
            total_sell_quantity=t.ask_qty,
            change=round(t.ltp - o, 2),
            change_percent=round((t.ltp - o) / o * 100, 4),
            bid=t.bid,
            ask=t.ask,
            oi=t.oi,
        )
    if mode == 3:
        data["depth"] = {
            "buy": [
                {"price": round(t.bid - i * tick, 2), "quantity": t.bid_qty, "orders": 1}
                for i in range(5)
            ],
            "sell": [
                {"price": round(t.ask + i * tick, 2), "quantity": t.ask_qty, "orders": 1}
                for i in range(5)
            ],
        }
    return {
        "type": "market_data",
        "symbol": t.symbol,
        "exchange": t.exchange,
        "mode": mode,
        "broker": BROKER,
        "data": data,
    }
