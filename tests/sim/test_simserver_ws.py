"""The simulator's WebSocket feed: the official SDK's feed client, then the raw protocol."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import websocket

from tests.sim.test_simserver_contract import sdk, server  # noqa: F401
from tests.simhelpers import FUT, KEY, WS_URL

pytestmark = pytest.mark.integration  # real processes or servers


def collect(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        time.sleep(0.05)


def test_sdk_feed_ltp_quote_depth(server: str) -> None:  # noqa: F811
    from openalgo import api

    client = api(api_key=KEY, host=server, ws_url=WS_URL[server])
    assert client.connect() is True
    got: dict[int, list[dict[str, Any]]] = {1: [], 2: [], 3: []}
    inst = [{"exchange": "NFO", "symbol": FUT}]
    idx = [{"exchange": "NSE_INDEX", "symbol": "NIFTY"}]
    try:
        client.subscribe_ltp(idx, on_data_received=lambda m: got[1].append(m))
        client.subscribe_quote(inst, on_data_received=lambda m: got[2].append(m))
        client.subscribe_depth(
            [{"exchange": "NFO", "symbol": "NIFTY23NOV2624500CE"}],
            on_data_received=lambda m: got[3].append(m),
        )
        collect(lambda: all(len(v) >= 3 for v in got.values()))
        assert all(len(v) >= 3 for v in got.values()), {k: len(v) for k, v in got.items()}
        assert got[1][-1]["symbol"] == "NIFTY" and got[1][-1]["data"]["ltp"] > 0
        q = got[2][-1]["data"]
        assert q["ltp"] > 0 and q["open"] > 0 and q["timestamp"] > 1.7e12
        d = got[3][-1]
        assert d["mode"] == 3
        ltp = client.get_ltp()
        assert ltp  # the SDK's cache filled from our messages
    finally:
        client.disconnect()


class Raw:
    """A plain websocket-client connection, reading replies on a thread."""

    def __init__(self, url: str) -> None:
        self.msgs: list[dict[str, Any]] = []
        self.closed: tuple[int | None, str | None] | None = None
        self.ws = websocket.WebSocketApp(
            url,
            on_message=lambda ws, m: self.msgs.append(json.loads(m)),
            on_close=lambda ws, code, reason: setattr(self, "closed", (code, reason)),
        )
        self.t = threading.Thread(target=self.ws.run_forever, daemon=True)
        self.t.start()
        collect(lambda: self.ws.sock is not None and self.ws.sock.connected)

    def send(self, obj: Any) -> dict[str, Any]:
        """Send ``obj`` and return the server's reply to it: the first message after it
        that is not market data (ticks of a stream already subscribed may come first)."""
        n = len(self.msgs)
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

        def replies() -> list[dict[str, Any]]:
            return [m for m in self.msgs[n:] if m.get("type") != "market_data"]

        collect(lambda: bool(replies()))
        return replies()[0]

    def close(self) -> None:
        self.ws.close()


def test_protocol_errors_keep_the_socket_open(server: str) -> None:  # noqa: F811
    r = Raw(WS_URL[server])
    try:
        assert r.send({"action": "subscribe", "symbol": FUT, "exchange": "NFO"}) == {
            "status": "error",
            "code": "NOT_AUTHENTICATED",
            "message": "Please authenticate first",
        }
        assert (
            r.send({"action": "authenticate", "api_key": "wrong"})["code"] == "AUTHENTICATION_ERROR"
        )
        assert r.send("{not json")["code"] == "INVALID_JSON"
        assert r.send("[1, 2]")["code"] == "INVALID_JSON"
        pong = r.send({"action": "ping", "timestamp": 1})
        assert pong["type"] == "pong" and pong["server_timestamp"] > 0
        auth = r.send({"type": "authenticate", "apikey": KEY})  # 'type' and 'apikey' work too
        assert auth["type"] == "auth" and auth["status"] == "success"
        assert r.send({"action": "fly"})["code"] == "INVALID_ACTION"
        assert r.send({"action": "subscribe", "symbols": [], "mode": 9})["code"] == "INVALID_MODE"
        assert r.send({"action": "subscribe"})["code"] == "INVALID_PARAMETERS"
        ack = r.send(
            {
                "action": "subscribe",
                "mode": "LTP",
                "symbols": [
                    {"symbol": FUT, "exchange": "NFO"},
                    {"symbol": "NOPE", "exchange": "NFO"},
                ],
            }
        )
        assert ack["type"] == "subscribe" and ack["status"] == "partial"
        assert [s["status"] for s in ack["subscriptions"]] == ["success", "error"]
        assert ack["subscriptions"][0]["mode"] == "LTP"
        collect(lambda: any(m.get("type") == "market_data" for m in r.msgs))
        md = next(m for m in r.msgs if m.get("type") == "market_data")
        assert (
            md["symbol"] == FUT
            and md["mode"] == 1
            and set(md["data"]) >= {"ltp", "ltt", "timestamp"}
        )
        un = r.send(
            {"action": "unsubscribe", "symbols": [{"symbol": FUT, "exchange": "NFO", "mode": 1}]}
        )
        assert un["type"] == "unsubscribe" and un["status"] == "success"
        assert r.closed is None  # every error above left the socket open
    finally:
        r.close()


def test_one_symbol_in_quote_and_depth_gets_both_streams(server: str) -> None:  # noqa: F811
    """Like the real proxy (its subscriptions are per symbol *and* mode): depth for a
    symbol already streamed as quotes adds a stream, it does not replace one; and an
    unsubscribe ends only the mode it names."""
    r = Raw(WS_URL[server])

    def modes_since(n: int) -> set[int]:
        return {m["mode"] for m in r.msgs[n:] if m.get("type") == "market_data"}

    try:
        r.send({"action": "authenticate", "api_key": KEY})
        for mode in ("Quote", "Depth"):
            ack = r.send({"action": "subscribe", "mode": mode, "symbol": FUT, "exchange": "NFO"})
            assert ack["status"] == "success", ack
        n = len(r.msgs)
        collect(lambda: modes_since(n) == {2, 3})
        assert modes_since(n) == {2, 3}
        later = [m for m in r.msgs[n:] if m.get("type") == "market_data"]
        assert all(("depth" in m["data"]) == (m["mode"] == 3) for m in later)
        assert all(m["data"]["bid"] > 0 for m in later)  # a quote stream carries quote fields

        un = r.send({"action": "unsubscribe", "symbols": [{"symbol": FUT, "exchange": "NFO"}]})
        assert un["status"] == "success" and un["successful"][0]["mode"] == "Quote", un
        time.sleep(0.3)  # ticks queued before the unsubscribe may still arrive
        n = len(r.msgs)
        collect(lambda: len([m for m in r.msgs[n:] if m.get("type") == "market_data"]) >= 5)
        assert modes_since(n) == {3}  # depth goes on alone
    finally:
        r.close()


def test_no_authentication_closes_with_4401(server: str) -> None:  # noqa: F811
    r = Raw(WS_URL[server])
    collect(lambda: r.closed is not None, timeout=5)
    assert r.closed is not None and r.closed[0] == 4401 and r.closed[1] == "auth timeout"


def test_order_updates_arrive_only_after_subscribe_orders(server: str, sdk: Any) -> None:  # noqa: F811
    """As the real proxy (websocket_proxy/server.py, subscribe_orders_client): an
    authenticated client that did not subscribe hears of no order; one that did gets each
    change, and the subscription is confirmed."""
    r = Raw(WS_URL[server])
    try:
        r.send({"action": "authenticate", "api_key": KEY})
        first = sdk.placeorder(strategy="ws", symbol=FUT, action="BUY", exchange="NFO", quantity=65)
        time.sleep(0.5)
        assert not [m for m in r.msgs if m.get("type") == "order_update"]
        sdk.placeorder(strategy="ws", symbol=FUT, action="SELL", exchange="NFO", quantity=65)
        ack = r.send({"action": "subscribe_orders", "request_id": "o1"})
        assert ack == {
            "type": "subscribe_orders",
            "status": "success",
            "message": "Subscribed to order updates",
            "request_id": "o1",
        }, ack
        assert first["status"] == "success"
        res = sdk.placeorder(strategy="ws", symbol=FUT, action="BUY", exchange="NFO", quantity=65)
        oid = res["orderid"]
        collect(
            lambda: any(
                m.get("order_status") == "complete" and m.get("orderid") == oid for m in r.msgs
            )
        )
        ups = [m for m in r.msgs if m.get("type") == "order_update" and m["orderid"] == oid]
        assert [u["order_status"] for u in ups] == ["open", "complete"]
        done = ups[-1]
        assert (
            done["filled_quantity"] == 65
            and done["pending_quantity"] == 0
            and done["average_price"] > 0
        )
        sdk.placeorder(strategy="ws", symbol=FUT, action="SELL", exchange="NFO", quantity=65)
    finally:
        r.close()


@pytest.mark.parametrize("frame", [b"\x00\xff", "x" * 100_000])
def test_garbage_frames_do_not_kill_the_server(server: str, frame: Any) -> None:  # noqa: F811
    r = Raw(WS_URL[server])
    try:
        if isinstance(frame, bytes):
            n = len(r.msgs)
            r.ws.send(frame, opcode=websocket.ABNF.OPCODE_BINARY)
            collect(lambda: len(r.msgs) > n)
            assert r.msgs[-1]["code"] == "INVALID_JSON"
        else:
            assert r.send(frame)["code"] == "INVALID_JSON"
        assert r.send({"action": "ping"})["type"] == "pong"
    finally:
        r.close()


def test_a_client_that_stops_reading_never_stalls_the_others(tmp_path: Any) -> None:
    import signal

    from tests.simhelpers import control, start_server

    proc, host = start_server(
        {"MT_LOG_DIR": str(tmp_path / "logs"), "MT_STATE_DIR": str(tmp_path / "s")},
        MT_SIM_FAULTS="true",
        MT_SIM_TICK_HZ="200",
        MT_SIM_STRIKES="10",
    )
    syms = [
        {"symbol": s, "exchange": "NFO"}
        for s in (FUT, "NIFTY23NOV2624500CE", "NIFTY23NOV2624500PE")
    ]
    stuck = websocket.create_connection(WS_URL[host], timeout=5)
    good = Raw(WS_URL[host])
    try:
        stuck.send(json.dumps({"action": "authenticate", "api_key": KEY}))
        stuck.recv()  # the auth reply; after the subscribe it never reads again
        every = control(host, f"/api/v1/instruments?apikey={KEY}")["data"]
        # the index, futures and the near strip (listed first), as many as the stack's
        # feed takes; all ~4,000 listed options at 200 steps a second would be a load test
        everything = [{"symbol": r["symbol"], "exchange": r["exchange"]} for r in every[:120]]
        stuck.send(json.dumps({"action": "subscribe", "mode": 3, "symbols": everything}))
        good.send({"action": "authenticate", "api_key": KEY})
        good.send({"action": "subscribe", "mode": 1, "symbols": syms})
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and control(host, "/_sim/counts").get("ws_market_data_dropped", 0) == 0
        ):
            time.sleep(0.2)
        assert (
            control(host, "/_sim/counts")["ws_market_data_dropped"] > 0
        )  # the stuck one lost ticks
        n = sum(1 for m in good.msgs if m.get("type") == "market_data")
        time.sleep(1.0)
        m = sum(1 for m in good.msgs if m.get("type") == "market_data")
        assert m - n > 100, (n, m)  # the reading client kept getting ~600 ticks/s throughout
    finally:
        good.close()
        stuck.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_market_data_json_round_trips_and_bad_frames_give_no_tick() -> None:
    """What the in-process venue hands the feed (``sim.server.ws.market_data``, as JSON)
    reads back through the WebSocket's parser as the same tick, to the millisecond; a
    frame that is not good market data gives None (the feed counts it, ``bad_quotes``)."""
    import msgspec

    from mytrading.messaging import wire
    from mytrading.openalgo.ws import tick_from_json
    from mytrading.sim.server.ws import market_data

    t = wire.Tick(
        exchange="NFO",
        symbol=FUT,
        ltp=24_010.5,
        bid=24_010.0,
        ask=24_011.0,
        bid_qty=650,
        ask_qty=325,
        volume=1_300,
        oi=9_750,
        exch_ns=1_795_406_400_123_456_789,
    )
    for mode in (2, 3):
        raw = msgspec.json.encode(market_data(t, mode, {}, 0.05))
        got = tick_from_json(raw)
        assert got == msgspec.structs.replace(t, exch_ns=1_795_406_400_123_000_000), mode
    for bad in (
        b"not json",
        b"[1, 2]",
        b'{"type": "order_update", "orderid": "1"}',
        b'{"type": "market_data", "symbol": "X", "exchange": "NFO", "data": {}}',
        b'{"type": "market_data", "symbol": "X", "exchange": "NFO", "data": {"ltp": "x"}}',
        b"\xff\xfe",
        # depth of the wrong shape (it used to raise inside the WebSocket thread)
        b'{"type": "market_data", "symbol": "X", "exchange": "NFO",'
        b' "data": {"ltp": 1, "depth": [1]}}',
    ):
        assert tick_from_json(bad) is None, bad


def test_a_reading_client_of_thousands_of_instruments_loses_no_tick(tmp_path: Any) -> None:
    """A desk's feed: 2,041 instruments quoted (four index chains of 101 strikes, every
    stock with its own), all ticking in one market step, to a client that keeps up. The
    step's ticks go to its queue (1,024) in slices, the sender running between them: none
    is dropped (all of one step put at once dropped half of every step, bench/scale.py)."""
    from tests.simhelpers import control, start_server

    proc, host = start_server(
        {"MT_LOG_DIR": str(tmp_path / "logs"), "MT_STATE_DIR": str(tmp_path / "s")},
        MT_SIM_FAULTS="true",
        MT_SIM_TICK_HZ="1",
        MT_SIM_UNDERLYINGS="NIFTY,BANKNIFTY,FINNIFTY,SENSEX",
        MT_SIM_STRIKES="50",
        MT_SIM_STOCKS="*",
        MT_SIM_STOCK_STRIKES="14",
        MT_SIM_FEED_DELAY_S="0",
        MT_SIM_FEED_JITTER_S="0",
    )
    client = Raw(WS_URL[host])
    try:
        every = control(host, f"/api/v1/instruments?apikey={KEY}")["data"]
        client.send({"action": "authenticate", "api_key": KEY})
        symbols = [{"symbol": r["symbol"], "exchange": r["exchange"]} for r in every]
        client.send({"action": "subscribe", "mode": 1, "symbols": symbols})
        ticks = lambda: sum(1 for m in list(client.msgs) if m.get("type") == "market_data")  # noqa: E731
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and ticks() < 3 * 2041:  # three steps at least
            time.sleep(0.2)
        counts = control(host, "/_sim/counts")
        assert counts["ws_market_data_sent"] >= 3 * 2041, counts
        assert counts["ws_market_data_dropped"] == 0, counts
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
