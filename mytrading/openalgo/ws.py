"""OpenAlgo WebSocket market data client (websocket-client, on its own thread).

The thread authenticates, subscribes every instrument in one bulk message, converts each
``market_data`` message into a ``Tick`` and queues it for the feed daemon's loop. Ticks
stay Python objects (same process: no encode/decode), and the daemon is woken (``wake``,
its host's ``wakeup``) once per batch, not once per tick: the thread wakes it only when
the queue was empty and the daemon had not been woken yet. The protocol (``_on_open``,
``_on_message``, ``_on_close``, ``session_ended``) is apart from the thread that runs
the connection (``_run``), so the deterministic simulation drives the same client over
its virtual WebSocket. When the
connection drops it reconnects with capped exponential backoff and jitter, authenticates
and subscribes again (OpenAlgo has no session resume). After ``alert_after`` failed
attempts in a row that span at least ``alert_after_s`` it raises an alert (logged;
``alerting`` in the feed's heartbeat): a server still starting on a loaded host fails
five quick attempts without being down.
A repeat of the last tick for a symbol (same timestamp, price, volume and quotes: the
proxy's fan-out sends higher-mode ticks to lower-mode subscribers too) is dropped and
counted. ``ping`` asks the server's time (its ``pong``'s ``server_timestamp``).

The router uses the same client with no instruments and ``order_updates`` on: on every
session it sends ``{"action": "subscribe_orders"}`` after authenticating (OpenAlgo sends
``order_update`` only to clients that did, ``websocket_proxy/server.py``), and
``pushing`` is true once the server confirmed it. The updates are queued (as dicts) for
the router's loop like ticks are for the feed's.

**Failover.** Given more than one source (one per account, in the order of
``config/accounts.toml [market_data]``), the client moves to the next source after
``failover_after`` failed attempts in a row on the current one, and while it is away from
the first it probes the sources before the current one every ``failback_s`` (connect and
authenticate, nothing subscribed); the first that answers becomes the source again. A
switch is a new session, so the feed backfills the bars of the gap, as after any
reconnect.
"""

from __future__ import annotations

import collections
import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
import websocket

from mytrading import hosttime
from mytrading.messaging import wire

log = structlog.get_logger("feed.openalgo")


def _close(ws: websocket.WebSocketApp) -> None:
    """End a socket from another thread than its reader's, and have the reader see it now.

    websocket-client's own ``close()`` does not do that from another thread. It waits up to
    3 s for the server's close frame (which the reader thread takes), then closes the file
    descriptor, which does not wake a reader blocked in ``epoll``; a reader that was busy
    with a message at that instant then waits out its select timeout. The feed took 3 s to
    stop, and supervisord stopped nothing else meanwhile. Here the close frame is sent
    without waiting, and the socket is shut down (not closed): the reader finds the end of
    the stream at its next read, whenever that is, and closes the socket itself."""
    ws.keep_running = False
    core = ws.sock
    if core is None:
        return
    with contextlib.suppress(Exception):  # the peer may be gone already
        core.send_close()
    raw = core.sock
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)


_json = msgspec.json.Decoder()  # strict UTF-8 and JSON, ~3x faster than json.loads


def tick_from(msg: dict[str, Any]) -> wire.Tick | None:
    """A Tick from one ``market_data`` message, whatever the mode and broker field names;
    None when the message does not hold a good quote."""
    try:
        return _tick(msg)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None


def _tick(msg: dict[str, Any]) -> wire.Tick | None:
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


def depth_from(msg: dict[str, Any]) -> wire.Depth | None:
    """The levels of a depth-mode ``market_data`` message; None if it has none."""
    try:
        d = msg["data"]
        book = d.get("depth") or {}
        buy, sell = book.get("buy") or [], book.get("sell") or []
        if not buy and not sell:
            return None
        return wire.Depth(
            exchange=str(msg.get("exchange")),
            symbol=str(msg.get("symbol")),
            bids=[float(x["price"]) for x in buy],
            bid_qtys=[int(x["quantity"]) for x in buy],
            asks=[float(x["price"]) for x in sell],
            ask_qtys=[int(x["quantity"]) for x in sell],
            exch_ns=int(d.get("timestamp") or d.get("ltt") or 0) * 1_000_000,
        )
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def tick_from_json(raw: bytes | str) -> wire.Tick | None:
    """A Tick from one WebSocket text frame, or None when it is not a good ``market_data``."""
    try:
        msg = _json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "market_data":
        return None
    return tick_from(msg)


@dataclass(frozen=True)
class Source:
    """One account's market-data WebSocket."""

    name: str
    url: str
    api_key: str = field(repr=False)


class FeedClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        instruments: list[tuple[str, str]],
        mode: int = 2,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        alert_after: int = 5,
        alert_after_s: float = 15.0,
        wake: Callable[[], None] | None = None,
        order_updates: bool = False,
        fallbacks: tuple[Source, ...] = (),
        failover_after: int = 2,
        failback_s: float = 15.0,
        name: str = "main",  # the account of url and api_key
        rng: random.Random | None = None,
    ) -> None:
        """``wake``: called (from the client's thread) when the queue gets its first item
        since the last ``take``; ``rng``: the reconnect jitter's (seeded in a simulation)."""
        self._wake: Callable[[], None] = wake or (lambda: None)
        self.rng = rng or random.Random()
        self.sources = (Source(name, url, api_key), *fallbacks)
        self.active = 0  # index into sources
        self.failover_after = failover_after
        self.failback_s = failback_s
        self.failovers = 0  # switches to another source, either way
        self._tries_here = 0  # failed attempts in a row on the active source
        self._switched = False  # the socket was closed to change source, not by a failure
        self.mode = mode
        # what to subscribe, (exchange, symbol) -> mode; what this session has subscribed
        self.wanted: dict[tuple[str, str], int] = dict.fromkeys(instruments, mode)
        self._subscribed: dict[tuple[str, str], int] = {}
        self._sub_lock = threading.Lock()
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.alert_after = alert_after
        self.alert_after_s = alert_after_s
        self._failing_since = 0.0  # monotonic, the outage's first failure
        self.order_updates = order_updates
        self.order_updates_seen = 0
        self.orders_subscribed = False  # this session's subscribe_orders was confirmed
        self.connected = False
        self.authenticated = False
        self.alerting = False
        self.failures_in_row = 0
        self.reconnects = 0
        self.sessions = 0  # authenticated sessions so far: a change means "reconnected"
        self.duplicates = 0
        self.bad_messages = 0
        self.errors: list[str] = []
        self._last: dict[tuple[str, str], tuple[int, float, int, float, float]] = {}
        self._ping_sent_ms = 0.0  # wall ms of the ping in flight (0: none)
        self._pong: tuple[float, float, float] | None = None  # (server, sent, received) ms
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queue: collections.deque[wire.Tick | wire.Depth | dict[str, Any]] = (
            collections.deque()
        )
        self._woken = False
        self._ws: Any = None  # the session's socket: websocket-client's, or a simulated one
        self._thread = threading.Thread(target=self._run, name="openalgo-ws", daemon=True)
        self._prober = threading.Thread(target=self._failback, name="ws-failback", daemon=True)

    @property
    def instruments(self) -> list[tuple[str, str]]:
        return list(self.wanted)

    @property
    def pushing(self) -> bool:
        """Order updates arrive as they happen (authenticated and, for order updates,
        the subscription confirmed): polling can then slow down to a repair."""
        return self.authenticated and (self.orders_subscribed or not self.order_updates)

    def set_wanted(self, wanted: dict[tuple[str, str], int]) -> None:
        """Subscribe exactly these, each in its mode (1 LTP, 2 quote, 3 depth): what is
        new is subscribed and what is gone unsubscribed now, on the live session; every
        new session subscribes the whole set."""
        self.wanted = dict(wanted)
        ws = self._ws
        if ws is not None and self.authenticated:
            self._sync(ws)

    def _sync(self, ws: websocket.WebSocketApp) -> None:
        with self._sub_lock:
            want = dict(self.wanted)
            had = self._subscribed
            gone = [k for k, m in had.items() if want.get(k) != m]
            new: dict[int, list[tuple[str, str]]] = {}
            for k, m in want.items():
                if had.get(k) != m:
                    new.setdefault(m, []).append(k)
            try:
                if gone:
                    syms = [{"symbol": s, "exchange": e, "mode": had[(e, s)]} for e, s in gone]
                    ws.send(json.dumps({"action": "unsubscribe", "symbols": syms}))
                for mode, keys in sorted(new.items()):
                    syms = [{"symbol": s, "exchange": e} for e, s in keys]
                    sub = {"action": "subscribe", "symbols": syms, "mode": mode, "depth": 5}
                    ws.send(json.dumps(sub))
            except Exception as exc:  # the session is ending: the next one subscribes all
                log.warning("subscription change not sent", reason=str(exc))
                return
            self._subscribed = want
            if gone or new:
                log.info(
                    "subscriptions",
                    total=len(want),
                    added=sum(len(v) for v in new.values()),
                    removed=len(gone),
                )

    @property
    def source(self) -> Source:
        return self.sources[self.active]

    @property
    def url(self) -> str:
        return self.source.url

    def start(self) -> None:
        self._thread.start()
        if len(self.sources) > 1:
            self._prober.start()

    def stop(self) -> None:
        self._stop.set()
        if isinstance(self._ws, websocket.WebSocketApp):
            _close(self._ws)
        if self._thread.is_alive():
            self._thread.join(timeout=3)
        if self._prober.is_alive():
            self._prober.join(timeout=3)

    # ---------------------------------------------------------------- failover

    def _switch(self, to: int, why: str) -> None:
        was = self.source.name
        with self._lock:
            self.active = to
            self._tries_here = 0
            self.failovers += 1
        log.warning("market data source changed", source=self.source.name, was=was, why=why)

    def _failback(self) -> None:
        """While away from the first source, probe the ones before the current one."""
        while not self._stop.wait(self.failback_s):
            for i in range(self.active):
                if self._probe(self.sources[i]):
                    self._switch(i, "failback: a preferred source answers again")
                    self._switched = True
                    ws = self._ws
                    if ws is not None:
                        _close(ws)  # run_forever returns; the loop connects to the new source
                    break

    @staticmethod
    def _probe(src: Source, timeout_s: float = 2.0) -> bool:
        """Connect and authenticate, subscribe nothing: does this source answer?"""
        try:
            ws = websocket.create_connection(src.url, timeout=timeout_s)
        except Exception:
            return False
        try:
            ws.send(json.dumps({"action": "authenticate", "api_key": src.api_key}))
            deadline = time.monotonic() + timeout_s  # the prober's own thread: real time
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if isinstance(msg, dict) and msg.get("type") == "auth":
                    return msg.get("status") == "success"
                if isinstance(msg, dict) and msg.get("status") == "error":
                    return False
        except Exception:
            return False
        finally:
            ws.close()
        return False

    # ------------------------------------------------------------------- thread

    def _run(self) -> None:
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
            self._stop.wait(self.session_ended())

    def session_ended(self) -> float:
        """A session is over (or a connection failed): the failover and the alert it
        leads to, and how long to wait before the next (0: connect at once)."""
        if self._switched:  # closed on purpose to fail back: connect at once
            self._switched = False
            return 0.0
        self._tries_here += 1
        if self.failures_in_row == 0:  # said once an outage; an error only after
            self._failing_since = hosttime.monotonic()
            log.warning(  # alert_after tries (a server still starting is normal)
                "market data socket down: reconnecting",
                url=self.url,
                error=self.errors[-1] if self.errors else "",
            )
        if len(self.sources) > 1 and self._tries_here >= self.failover_after:
            self._switch((self.active + 1) % len(self.sources), "failover")
        self.failures_in_row += 1
        self.reconnects += 1
        lasted = hosttime.monotonic() - self._failing_since
        if (
            self.failures_in_row >= self.alert_after
            and lasted >= self.alert_after_s
            and not self.alerting
        ):
            self.alerting = True
            log.error(
                "market data feed keeps failing",
                attempts=self.failures_in_row,
                for_s=round(lasted, 1),
                url=self.url,
            )
        delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (self.failures_in_row - 1))
        return delay * self.rng.uniform(0.5, 1.0)  # jitter: no thundering herd

    def _on_open(self, ws: websocket.WebSocketApp) -> None:
        self.connected = True
        ws.send(json.dumps({"action": "authenticate", "api_key": self.source.api_key}))

    def _on_close(self, ws: Any, code: Any, reason: Any) -> None:
        if self.connected:
            log.warning("market data socket closed", code=code, reason=reason)
        self.connected = self.authenticated = self.orders_subscribed = False

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
        elif kind == "pong":
            sent, server = self._ping_sent_ms, msg.get("server_timestamp")
            if sent and isinstance(server, int | float):
                self._pong = (float(server), sent, hosttime.time() * 1000)
            self._ping_sent_ms = 0.0
        elif kind == "subscribe_orders":
            self.orders_subscribed = msg.get("status") == "success"
            if not self.orders_subscribed:
                log.error("order updates not subscribed", message=msg.get("message"))
        elif kind == "auth" and msg.get("status") == "success":
            self.authenticated = True
            if self.order_updates:  # the real proxy pushes orders only to subscribers
                ws.send(json.dumps({"action": "subscribe_orders"}))
            self.sessions += 1
            self._tries_here = 0
            if self.alerting:
                log.warning("market data feed recovered", after=self.failures_in_row)
            self.failures_in_row = 0
            self.alerting = False
            with self._sub_lock:
                self._subscribed = {}  # a new session has nothing subscribed
            self._sync(ws)
        elif msg.get("status") == "error":
            log.error("feed server error", code=msg.get("code"), message=msg.get("message"))
            if msg.get("code") == "AUTHENTICATION_ERROR":
                ws.close()  # retry with backoff rather than sit on a useless socket

    def _on_market_data(self, msg: dict[str, Any]) -> None:
        tick = tick_from(msg)
        if tick is None:
            self.bad_messages += 1
            return
        key = (tick.exchange, tick.symbol)
        # a repeat is the same stamp, trade and quotes: an illiquid contract's quotes move
        # under its last trade's stamp, and those are news
        sig = (tick.exch_ns, tick.ltp, tick.volume, tick.bid, tick.ask)
        if self._last.get(key) == sig:
            self.duplicates += 1
            return
        self._last[key] = sig
        self._enqueue(tick)
        if self.wanted.get(key) == 3:
            depth = depth_from(msg)
            if depth is not None:
                self._enqueue(depth)

    def _enqueue(self, item: wire.Tick | wire.Depth | dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(item)
            wake = not self._woken
            self._woken = True
        if wake:
            self._wake()

    def ping(self) -> None:
        """Ask the server its time (OpenAlgo's ``ping`` action; the ``pong`` carries
        ``server_timestamp``): the host clock's offset, ``feed/timewatch.py``."""
        ws = self._ws
        if ws is None or not self.authenticated:
            return
        now = hosttime.time() * 1000
        self._ping_sent_ms = now  # before the send: the pong may come back at once
        try:
            ws.send(json.dumps({"action": "ping", "timestamp": int(now)}))
        except Exception as exc:  # a socket closing under us: the next ping tries again
            self._ping_sent_ms = 0.0
            log.debug("ping not sent", reason=str(exc))

    def take_pong(self) -> tuple[float, float, float] | None:
        """The last pong as (server ms, sent ms, received ms), once."""
        pong, self._pong = self._pong, None
        return pong

    def take(self) -> list[Any]:
        """Everything queued so far, in arrival order (called by the daemon's thread)."""
        with self._lock:
            ticks = list(self._queue)
            self._queue.clear()
            self._woken = False
        return ticks
