"""OpenAlgo WebSocket market data client (websocket-client, on its own thread).

The thread authenticates, subscribes every instrument in one bulk message, converts each
``market_data`` message into a ``Tick`` and queues it for the feed daemon's loop. Ticks
stay Python objects (same process: no encode/decode), and the daemon is woken through an
inproc ZeroMQ pipe once per batch, not once per tick: the thread sends a wake-up only
when the queue was empty and the daemon had not been woken yet. When the
connection drops it reconnects with capped exponential backoff and jitter, authenticates
and subscribes again (OpenAlgo has no session resume). After ``alert_after`` failed
attempts in a row it raises an alert (logged; ``alerting`` in the feed's heartbeat).
A repeat of the last tick for a symbol (same timestamp, price and volume: the proxy's
fan-out sends higher-mode ticks to lower-mode subscribers too) is dropped and counted.

The router uses the same client with no instruments and ``order_updates`` on: OpenAlgo
sends ``order_update`` messages to every authenticated client, and they are queued (as
dicts) for the router's loop like ticks are for the feed's.
"""

from __future__ import annotations

import collections
import json
import random
import threading
from typing import Any

import msgspec
import structlog
import websocket
import zmq

from mytrading import wire

log = structlog.get_logger("feed.openalgo")
TICK_PIPE = "inproc://feed.ticks"
_json = msgspec.json.Decoder()  # strict UTF-8 and JSON, ~3x faster than json.loads


def tick_from(msg: dict[str, Any]) -> wire.Tick | None:
    """A Tick from one ``market_data`` message, whatever the mode and broker field names."""
    d = msg.get("data")
    if not isinstance(d, dict) or "ltp" not in d:
        return None
    ltp = float(d["ltp"])
    depth = d.get("depth") or {}
    buy, sell = depth.get("buy") or [], depth.get("sell") or []
    bid = float(buy[0]["price"]) if buy else float(d.get("bid") or ltp)
    ask = float(sell[0]["price"]) if sell else float(d.get("ask") or ltp)
    ms = int(d.get("timestamp") or d.get("ltt") or 0)
    return wire.Tick(
        exchange=str(msg.get("exchange")),
        symbol=str(msg.get("symbol")),
        ltp=ltp,
        bid=bid,
        ask=ask,
        bid_qty=int(buy[0]["quantity"]) if buy else int(d.get("total_buy_quantity") or 0),
        ask_qty=int(sell[0]["quantity"]) if sell else int(d.get("total_sell_quantity") or 0),
        volume=int(d.get("volume") or 0),
        oi=int(d.get("oi") or 0),
        exch_ns=ms * 1_000_000,
    )


class FeedClient:
    def __init__(
        self,
        ctx: zmq.Context,
        url: str,
        api_key: str,
        instruments: list[tuple[str, str]],
        mode: int = 2,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        alert_after: int = 5,
        pipe: str = TICK_PIPE,
        order_updates: bool = False,
    ) -> None:
        self.ctx = ctx
        self.url = url
        self.api_key = api_key
        self.instruments = instruments
        self.mode = mode
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.alert_after = alert_after
        self.pipe = pipe
        self.order_updates = order_updates
        self.order_updates_seen = 0
        self.connected = False
        self.authenticated = False
        self.alerting = False
        self.failures_in_row = 0
        self.reconnects = 0
        self.sessions = 0  # authenticated sessions so far: a change means "reconnected"
        self.duplicates = 0
        self.bad_messages = 0
        self.errors: list[str] = []
        self._last: dict[tuple[str, str], tuple[int, float, int]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queue: collections.deque[wire.Tick | dict[str, Any]] = collections.deque()
        self._woken = False
        self._ws: websocket.WebSocketApp | None = None
        self._thread = threading.Thread(target=self._run, name="openalgo-ws", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            self._ws.close()
        self._thread.join(timeout=3)

    # ------------------------------------------------------------------- thread

    def _run(self) -> None:
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 0)  # inproc, same process: never drop a tick here
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self.pipe)
        self._push = push
        try:
            while not self._stop.is_set():
                self._ws = websocket.WebSocketApp(
                    self.url,
                    on_open=self._on_open,
                    on_message=self._on_message,
                    on_close=self._on_close,
                    on_error=self._on_error,
                )
                # UTF-8 is checked by the JSON decoder anyway; websocket-client's own
                # pure-Python check cost ~30% of the feed's CPU (bench/feed_throughput.py).
                self._ws.run_forever(ping_interval=20, ping_timeout=10, skip_utf8_validation=True)
                if self._stop.is_set():
                    break
                self.failures_in_row += 1
                self.reconnects += 1
                if self.failures_in_row >= self.alert_after and not self.alerting:
                    self.alerting = True
                    log.error(
                        "market data feed keeps failing",
                        attempts=self.failures_in_row,
                        url=self.url,
                    )
                delay = min(
                    self.backoff_cap_s, self.backoff_base_s * 2 ** (self.failures_in_row - 1)
                )
                self._stop.wait(delay * random.uniform(0.5, 1.0))  # jitter: no thundering herd
        finally:
            push.close(0)

    def _on_open(self, ws: websocket.WebSocketApp) -> None:
        self.connected = True
        ws.send(json.dumps({"action": "authenticate", "api_key": self.api_key}))

    def _on_close(self, ws: Any, code: Any, reason: Any) -> None:
        if self.connected:
            log.warning("market data socket closed", code=code, reason=reason)
        self.connected = self.authenticated = False

    def _on_error(self, ws: Any, error: Any) -> None:
        self.errors.append(str(error))
        del self.errors[:-5]

    def _on_message(self, ws: websocket.WebSocketApp, text: str | bytes) -> None:
        try:
            msg = _json.decode(text)
        except msgspec.DecodeError:
            self.bad_messages += 1
            return
        if not isinstance(msg, dict):
            self.bad_messages += 1
            return
        kind = msg.get("type")
        if kind == "market_data":
            self._on_market_data(msg)
        elif kind == "order_update" and self.order_updates:
            self.order_updates_seen += 1
            self._enqueue(msg)
        elif kind == "auth" and msg.get("status") == "success":
            self.authenticated = True
            self.sessions += 1
            if self.alerting:
                log.warning("market data feed recovered", after=self.failures_in_row)
            self.failures_in_row = 0
            self.alerting = False
            syms = [{"symbol": s, "exchange": e} for e, s in self.instruments]
            if syms:
                sub = {"action": "subscribe", "symbols": syms, "mode": self.mode, "depth": 5}
                ws.send(json.dumps(sub))
        elif msg.get("status") == "error":
            log.error("feed server error", code=msg.get("code"), message=msg.get("message"))
            if msg.get("code") == "AUTHENTICATION_ERROR":
                ws.close()  # retry with backoff rather than sit on a useless socket

    def _on_market_data(self, msg: dict[str, Any]) -> None:
        try:
            tick = tick_from(msg)
        except (TypeError, ValueError, KeyError, IndexError):
            tick = None
        if tick is None:
            self.bad_messages += 1
            return
        key = (tick.exchange, tick.symbol)
        sig = (tick.exch_ns, tick.ltp, tick.volume)
        if self._last.get(key) == sig:
            self.duplicates += 1
            return
        self._last[key] = sig
        self._enqueue(tick)

    def _enqueue(self, item: wire.Tick | dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(item)
            wake = not self._woken
            self._woken = True
        if wake:
            self._push.send(b"")

    def take(self) -> list[Any]:
        """Everything queued so far, in arrival order (called by the daemon's thread)."""
        with self._lock:
            ticks = list(self._queue)
            self._queue.clear()
            self._woken = False
        return ticks
