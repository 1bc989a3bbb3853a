"""What the bus did not deliver is taken from the router, by a real engine process reading
a router's publisher: an order that ended while a restarted engine's subscription was
being attached, and an order whose final update the bus lost, are closed from the
router's books. (A fill the bus lost, taken from the router in order when the next one
or a heartbeat shows the hole, is checked on every seed of ``main.py simulate``: the
``fills`` invariant, with the planted bug ``engine_drops_hole_fills``; and in
``tests/messaging``'s FillSequence tests.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Publisher, bind
from tests.procs import Watcher, settings_of, spawn, stop_all

FUT = "NIFTY23NOV26FUT"  # quoted by the simulator on 2026-11-20


def fill(n: int) -> wire.Fill:
    return wire.Fill(
        fill_no=n, fill_id=f"T{n}", order_id=f"o{n}", broker_order_id=f"B{n}",
        strategy="sma_crossover", exchange="NFO", symbol=FUT, product="NRML",
        action="BUY", quantity=65, price=24_000.0 + n, exch_ns=n,
    )  # fmt: skip


def heartbeat(**detail: object) -> wire.Status:
    return wire.Status(
        name="router", pid=1, state="running", started_ns=1, uptime_s=1.0, msgs_in=0,
        msgs_out=0, errors=0, gaps=0, lat_p50_us=0.0, lat_p99_us=0.0, detail=dict(detail),
    )  # fmt: skip


def resting(n: int) -> wire.Order:
    """A LIMIT buy of the strategy's, as the router holds it."""
    return wire.Order(
        order_id=f"sma_crossover.r1-{n}", intent_id=f"r1-{n}", strategy="sma_crossover",
        exchange="NFO", symbol=FUT, action="BUY", quantity=65, pricetype="LIMIT",
        product="NRML", price=24_000.0, trigger_price=0.0, approved_by="risk",
    )  # fmt: skip


def completed(order: wire.Order, broker_id: str) -> wire.WorkingOrder:
    """``order`` filled whole, as the router's books show it."""
    return wire.WorkingOrder(
        order=order, status="complete", filled_qty=65, avg_price=24_000.0,
        broker_order_id=broker_id,
    )  # fmt: skip


def open_orders(w: Watcher) -> int:
    """The strategy's open orders as the engine's heartbeat says (-1: no heartbeat yet)."""
    st = w.status.get("engine")
    return st.detail["strategies"]["sma_crossover"]["open_orders"] if st else -1


class FakeRouter:
    """The router's two doors, as the daemons reach them: its publisher and its REP
    (a flat book at the start; the day's fills on asking)."""

    def __init__(self, env: dict[str, str]) -> None:
        eps = settings_of(env).endpoints()
        self.ctx = zmq.Context()
        self.pub = Publisher(self.ctx, eps.pub("router"), "router")
        self.rep = self.ctx.socket(zmq.REP)
        self.rep.setsockopt(zmq.LINGER, 0)
        bind(self.rep, eps.endpoints["rpc.router"])
        self.fills: list[wire.Fill] = []
        self.asked: list[int] = []
        self.working: list[wire.WorkingOrder] = []  # not final, for a restarting reader
        self.day: list[wire.WorkingOrder] = []  # every order of the day, as it stands now
        self.orders_asked = 0
        self.orders_refused = 0  # "orders" questions to answer not ok
        self.fills_refused = 0  # "fills" questions not answered (a REP that times out)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.rep.poll(100):
                continue
            q = wire.decode_body(self.rep.recv())
            assert isinstance(q, wire.BrokerQuery)
            if q.kind == "fills" and self.fills_refused:
                self.fills_refused -= 1
                self.rep.send(wire.encode_body(wire.BrokerReply(ok=False, error="busy")))
                continue
            if q.kind == "fills":
                if q.since_fill_no:
                    self.asked.append(q.since_fill_no)
                reply = wire.BrokerReply(
                    ok=True,
                    fills=[f for f in self.fills if f.fill_no > q.since_fill_no],
                    last_fill_no=len(self.fills),
                )
            elif q.kind == "strategy_positions":
                reply = wire.BrokerReply(ok=True, last_fill_no=0, working=self.working)
            elif q.kind == "orders":
                self.orders_asked += 1
                if self.orders_refused:  # a router that cannot answer this time
                    self.orders_refused -= 1
                    reply = wire.BrokerReply(ok=False, error="busy")
                else:
                    reply = wire.BrokerReply(ok=True, last_fill_no=0, working=self.day)
            else:
                reply = wire.BrokerReply(ok=True, last_fill_no=0)
            self.rep.send(wire.encode_body(reply))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.rep.close(0)
        self.pub.close()
        self.ctx.term()


@pytest.mark.integration
def test_an_order_that_ended_while_the_engine_joined_is_closed_from_the_router(
    tmp_env: dict[str, str],
) -> None:
    """A restarted engine's strategy holds an order the router gave it as working; it
    completes before the engine's subscription is attached (its update reaches nobody).
    The router's first heartbeat proves the subscription live: the engine asks the
    router's books and closes the order as they have it, once; a router that cannot
    answer the first time is asked again at its next heartbeat."""
    # the periodic read of the books off: this test counts the restore's reads alone
    env = {**tmp_env, "MT_SIM_START": "2026-11-20T10:00", "MT_ORDER_CHECK_S": "0"}
    router = FakeRouter(env)
    order = resting(7)
    router.working = [wire.WorkingOrder(order=order, status="open", broker_order_id="B7")]
    router.day = [completed(order, "B7")]
    w = Watcher(settings_of(env), ("sys.status.",))
    procs = {"engine": spawn("engine", env)}

    try:
        w.wait(lambda: open_orders(w) == 1, 60, "the engine up with the order working")
        w.pump(1.5)
        assert open_orders(w) == 1  # nothing has said otherwise yet
        assert router.orders_asked == 1  # the restore's read of the day
        router.orders_refused = 1
        for _ in range(3):  # each heartbeat: the engine asks once, not again
            router.pub.publish("sys.status.router", heartbeat(last_fill_no=0))
            w.pump(0.5)
        w.wait(lambda: open_orders(w) == 0, 20, "the order closed")
        log = (Path(tmp_env["MT_LOG_DIR"]) / "engine.log").read_text()
        assert log.count("order updates missed on the bus were taken from the router") == 1
        assert router.orders_asked == 3  # refused at one beat, answered at the next, no more
        assert "sma_crossover.r1-7" in log
    finally:
        stop_all(procs.values())
        w.close()
        router.close()


@pytest.mark.integration
def test_an_order_whose_final_update_the_bus_lost_is_closed_from_the_router(
    tmp_env: dict[str, str],
) -> None:
    """A running engine's strategy holds a working order; the router's books come to show
    it complete, but its final update never reaches the engine (dropped at a full SUB
    queue). The engine reads the router's books every ``MT_ORDER_CHECK_S`` while a
    strategy holds orders open, and closes the order once two reads in a row show it
    ended (one read could race an update still on the bus), saying so once."""
    env = {**tmp_env, "MT_SIM_START": "2026-11-20T10:00", "MT_ORDER_CHECK_S": "1"}
    router = FakeRouter(env)
    order = resting(9)
    working = wire.WorkingOrder(order=order, status="open", broker_order_id="B9")
    router.working = [working]
    router.day = [working]
    w = Watcher(settings_of(env), ("sys.status.",))
    procs = {"engine": spawn("engine", env)}

    def beating(cond: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:  # the router's heartbeat, as a live router beats
            router.pub.publish("sys.status.router", heartbeat(last_fill_no=0))
            return cond()

        return check

    try:
        w.wait(beating(lambda: open_orders(w) == 1), 60, "the engine up with the order working")
        asked = router.orders_asked
        w.wait(beating(lambda: router.orders_asked >= asked + 2), 20, "two reads of the books")
        assert open_orders(w) == 1  # the books agree with the strategy: nothing to do
        router.day = [completed(order, "B9")]
        flipped = router.orders_asked
        w.wait(beating(lambda: open_orders(w) == 0), 20, "the order closed")
        assert router.orders_asked >= flipped + 2  # seen ended twice before it was closed
        w.wait(beating(lambda: w.status["engine"].detail["order_ends_recovered"] == 1), 10,
               "counted")  # fmt: skip
        log = (Path(tmp_env["MT_LOG_DIR"]) / "engine.log").read_text()
        assert log.count("order updates missed on the bus were taken from the router") == 1
        asked = router.orders_asked
        w.pump(2.5)
        assert router.orders_asked == asked  # no order open: the books are not read
    finally:
        stop_all(procs.values())
        w.close()
        router.close()
