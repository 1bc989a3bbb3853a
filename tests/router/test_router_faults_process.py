"""Broker faults through the real router process and a real simulator server: 429 bursts
(retried after ``retry_after``, at most three sends), a 500 after the broker accepted and
a timeout after it accepted (found in the order book, never sent twice), the router's own
rate limit (a burst of orders stays under the broker's 10/s: no 429 at all)."""

from __future__ import annotations

import json
import signal
import time

import msgspec
import pytest
import zmq

from mytrading.messaging import bus, wire
from mytrading.messaging.bus import Pusher
from mytrading.router.worksplit import STAGES
from mytrading.settings import Settings
from tests.procs import Watcher, spawn
from tests.simhelpers import at_broker, control, order


@pytest.mark.integration
def test_router_under_broker_faults(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    host, env = sim_broker
    env = {**env, "MT_OPENALGO_TIMEOUT_S": "1.0", "MT_ROUTER_RETRY_BACKOFF_S": "0.2"}
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    router = spawn("router", env)

    def last(oid: str) -> wire.OrderUpdate | None:
        ups = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]
        return ups[-1] if ups else None

    def fault(*faults: str, hang_s: float = 0.0) -> None:
        body = {"endpoint": "placeorder", "faults": list(faults)}
        if hang_s:
            body["hang_s"] = hang_s  # type: ignore[assignment]
        control(host, "/_sim/faults", body)

    def counts() -> dict[str, int]:
        return control(host, "/_sim/counts")

    def done(oid: str, status: str = "complete", timeout: float = 15) -> wire.OrderUpdate:
        w.wait(
            lambda: (u := last(oid)) is not None and u.status == status, timeout, f"{oid} {status}"
        )
        return last(oid)  # type: ignore[return-value]

    try:
        w.wait(lambda: "router" in w.status, 20, "the router")
        # Two 429s ("10 per 1 second": each waits the second out), then the broker takes it.
        fault("429", "429")
        t0 = time.monotonic()
        w.wait(lambda: as_risk.send(order("r1", 65 * 11)), 10, "the order pipe")
        done("s.r1")
        assert time.monotonic() - t0 >= 1.9  # the broker's retry_after was respected
        assert counts()["placeorder:429"] == 2 and len(at_broker(host, 65 * 11)) == 1
        # Three 429s: three sends, then refused with the reason; nothing at the broker.
        fault("429", "429", "429")
        as_risk.send(order("r2", 65 * 12))
        u = done("s.r2", "rejected", 20)
        assert "429" in u.reason and at_broker(host, 65 * 12) == []
        assert counts()["placeorder:429"] == 5
        # The broker placed it, then answered 500: found in the order book, not re-sent.
        fault("500_after")
        as_risk.send(order("r3", 65 * 13))
        done("s.r3")
        assert len(at_broker(host, 65 * 13)) == 1
        # The broker placed it and went silent past our timeout: found, not re-sent.
        fault("hang_after", hang_s=2.0)
        as_risk.send(order("r4", 65 * 14))
        done("s.r4")
        assert len(at_broker(host, 65 * 14)) == 1
        # A burst of 25 orders: our own limit keeps the broker from ever answering 429.
        before = counts()
        t0 = time.monotonic()
        for i in range(25):  # buys and sells in turn: margin stays free
            o = order(f"b{i}", 65)
            as_risk.send(msgspec.structs.replace(o, action="SELL") if i % 2 else o)
        for i in range(25):
            done(f"s.b{i}", timeout=20)
        took = time.monotonic() - t0
        after = counts()
        assert after.get("placeorder:429", 0) == before.get("placeorder:429", 0)
        assert after["placeorder:200"] - before["placeorder:200"] == 25
        assert took >= 2.0  # ten in any one second
        # A broker book that fails behind an rpc query: a refusal with the reason, and
        # the router answers the next one.
        w.pump(1.2)
        errors = w.status["router"].errors
        control(host, "/_sim/faults", {"endpoint": "positionbook", "faults": ["500"]})
        rpc = settings.endpoints()["rpc.router"]
        bad = bus.request(ctx, rpc, wire.BrokerQuery(kind="positions"), 5000)
        assert isinstance(bad, wire.BrokerReply) and not bad.ok and "500" in bad.error
        good = bus.request(ctx, rpc, wire.BrokerQuery(kind="positions"), 5000)
        assert isinstance(good, wire.BrokerReply) and good.ok and good.positions
        w.pump(1.2)
        # one failure is a warning (the broker may still be starting; the asker asks
        # again); three in a row are one error
        assert w.status["router"].errors == errors
        control(host, "/_sim/faults", {"endpoint": "positionbook", "faults": ["500"] * 3})
        for _ in range(3):
            bad = bus.request(ctx, rpc, wire.BrokerQuery(kind="positions"), 5000)
            assert isinstance(bad, wire.BrokerReply) and not bad.ok
        w.pump(1.2)
        assert w.status["router"].errors == errors + 1
        d = w.status["router"].detail
        assert d["retries"] == 4 and d.get("unknown", 0) == 0, json.dumps(d)
        # the router's work per order (its own figure less the flush its order waited
        # for): the same orders as its own figure, each no longer than it
        assert 0 < d["work_p50_us"] <= w.status["router"].lat_p50_us + 0.1, json.dumps(d)
        # ... stage by stage, every stage of an order measured
        assert set(d["work_split_p50_us"]) == set(STAGES), json.dumps(d)
        assert all(v >= 0 for v in d["work_split_p50_us"].values()), json.dumps(d)
    finally:
        as_risk.sock.close(0)
        ctx.term()
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=10)
        w.close()


@pytest.mark.integration
def test_order_updates_arrive_over_the_websocket(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    """An order cancelled outside the stack (by hand, at the broker) reaches the strategy
    through OpenAlgo's ``order_update``, long before the 30 s order-book poll would."""
    from openalgo import api

    from tests.simhelpers import KEY

    host, env = sim_broker
    env = {**env, "MT_OPENALGO_POLL_S": "30"}
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    router = spawn("router", env)
    sdk = api(api_key=KEY, host=host)
    try:
        w.wait(lambda: "router" in w.status, 20, "the router")
        w.pump(1.0)  # the order-update socket authenticates
        ltp = sdk.quotes(symbol=order("x", 65).symbol, exchange="NFO")["data"]["ltp"]
        resting = msgspec.structs.replace(
            order("ws1", 65), pricetype="LIMIT", price=round(ltp * 0.95, 1)
        )
        w.wait(lambda: as_risk.send(resting), 10, "the order pipe")

        def last() -> wire.OrderUpdate | None:
            ups = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate)]
            return ups[-1] if ups else None

        w.wait(lambda: (u := last()) is not None and u.status == "open", 10, "resting")
        broker_id = last().broker_order_id  # type: ignore[union-attr]
        assert sdk.cancelorder(order_id=broker_id, strategy="s")["status"] == "success"
        t0 = time.monotonic()
        w.wait(lambda: last().status == "cancelled", 5, "the cancel, pushed")  # type: ignore[union-attr]
        assert time.monotonic() - t0 < 3.0
        w.pump(1.2)
        assert w.status["router"].detail["ws_updates"] >= 1
        # The socket drops and is refused for 4 s: the order book, polled every second
        # meanwhile, still brings the next hand-made cancel; then the socket is back.
        control(
            host,
            "/_sim/faults",
            {"endpoint": "placeorder", "faults": [], "drop_websockets": True, "refuse_s": 4.0},
        )
        w.wait(lambda: not w.status["router"].detail["order_ws_up"], 5, "the socket down")
        second = msgspec.structs.replace(resting, order_id="s.ws2", intent_id="ws2")
        as_risk.send(second)
        w.wait(lambda: last().order_id == "s.ws2" and last().status == "open", 10, "resting")  # type: ignore[union-attr]
        assert sdk.cancelorder(order_id=last().broker_order_id, strategy="s")["status"] == "success"  # type: ignore[union-attr]
        t0 = time.monotonic()
        w.wait(lambda: last().status == "cancelled", 5, "the cancel, polled")  # type: ignore[union-attr]
        assert time.monotonic() - t0 < 2.5
        w.wait(lambda: w.status["router"].detail["order_ws_up"], 20, "the socket back")
        assert w.status["router"].detail["order_ws_reconnects"] >= 1
    finally:
        as_risk.sock.close(0)
        ctx.term()
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=10)
        w.close()
