"""An intent that reaches risk before the fill it was decided on is judged on that fill.

A bracket's stop leaves the engine the instant its entry's fill arrives; risk reads its
intent pipe before the bus, where the same fill may still wait behind ticks (or be on
its way). Judged on the position before the fill, the stop is an entry, and an entry is
refused where the strategy is halted (or its limits are full): CI's demo run once saw
the straddle's stop so refused, and the engine close the leg at market. The intent names
the fills its sender had booked (``fills_seen``); risk books as far first, from the bus
or, when the fill is not on it yet, from the router.

The real risk daemon reads a stand-in router (``FakeRouter``: its publisher and its REP);
the test holds the entry's fill at the router, unpublished, and sends the stop."""

from __future__ import annotations

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher, bind
from tests.engine.test_fill_hole_process import FakeRouter, heartbeat
from tests.procs import Watcher, settings_of, spawn, stop_all

FUT = "NIFTY23NOV26FUT"  # quoted by the simulator on 2026-11-20
NAME = "s"


def sold(n: int) -> wire.Fill:
    return wire.Fill(
        fill_no=n, fill_id=f"T{n}", order_id=f"{NAME}.e{n}", broker_order_id=f"B{n}",
        strategy=NAME, exchange="NFO", symbol=FUT, product="NRML",
        action="SELL", quantity=65, price=24_000.0, exch_ns=n,
    )  # fmt: skip


def stop_for(n: int, seen: int, qty: int = 65) -> wire.PlaceIntent:
    """The protective stop-loss buy of fill ``n``, as the engine sends it."""
    return wire.PlaceIntent(
        intent_id=f"stop{n}", strategy=NAME, exchange="NFO", symbol=FUT, action="BUY",
        quantity=qty, product="NRML", pricetype="SL", price=24_110.0, trigger_price=24_100.0,
        link=wire.OrderLink(protective=True, protects=f"T{n}"), fills_seen=seen,
    )  # fmt: skip


@pytest.mark.integration
def test_a_stop_sent_before_risk_has_its_entrys_fill_is_judged_as_the_exit_it_is(
    tmp_env: dict[str, str],
) -> None:
    env = {**tmp_env, "MT_SIM_START": "2026-11-20T10:00"}
    eps = settings_of(env).endpoints()
    router = FakeRouter(env)
    orders = router.ctx.socket(zmq.PULL)  # the router's order pipe: what risk approved
    orders.setsockopt(zmq.LINGER, 0)
    bind(orders, eps["pipe.orders"])
    engine = Pusher(router.ctx, eps["pipe.intents"], "engine", "intent")
    cli = Pusher(router.ctx, eps["pipe.commands"], "cli", "command")
    w = Watcher(settings_of(env), ("sys.status.", "risk.event."))
    procs = {"risk": spawn("risk", env)}

    def risk() -> dict[str, object]:
        # the router's heartbeat (without its last fill number: risk must not learn of
        # the fill from it) keeps it "up" for risk, which sends it orders only then
        router.pub.publish("sys.status.router", heartbeat())
        st = w.status.get("risk")
        return st.detail if st is not None else {}

    def approved(timeout_s: float) -> wire.Msg | None:
        for _ in range(int(timeout_s / 0.25)):
            risk()
            if orders.poll(250):
                return wire.decode(orders.recv())[1]
        return None

    def state() -> object:
        states = risk().get("states")
        return states.get("strategies", {}).get(NAME) if isinstance(states, dict) else None

    try:
        w.wait(lambda: bool(risk()), 60, "risk up")
        # halted: no entry passes, an order that only shrinks the position does
        halt = wire.Command(command="state", value="halted", target=NAME, issued_by="test")
        w.wait(lambda: cli.send(halt) and state() == "halted", 10, f"{NAME} halted")

        router.fills.append(sold(1))  # filled at the router, not (yet) on the bus
        # (the engine's pipe may still be connecting when risk is up: False is "not
        # queued", so trying again sends it once; a fresh clone's CI run saw False here)
        w.wait(lambda: engine.send(stop_for(1, seen=1)), 10, "the intent pipe")
        order = approved(10)
        refused = [m for _, m in w.seen if isinstance(m, wire.RiskEvent) and m.kind == "rejected"]
        assert order is not None, f"the stop was not approved: {refused}"
        assert isinstance(order, wire.Order) and order.intent_id == "stop1"
        assert order.action == "BUY" and order.pricetype == "SL" and order.quantity == 65
        w.wait(lambda: risk().get("fills_fetched") == 1, 10, "the fill taken from the router")

        # The fill published now, late, is not booked a second time: a buy of two lots
        # turns the one-lot short round, and only its closing lot passes while halted (on
        # a short booked twice it would all pass; on none, none of it).
        router.pub.publish(f"exec.fill.{NAME}", sold(1))
        w.pump(1.0)
        assert engine.send(stop_for(2, seen=1, qty=130))
        order = approved(10)
        assert isinstance(order, wire.Order) and order.intent_id == "stop2", order
        assert order.quantity == 65

        def said() -> list[tuple[str, str]]:
            return [
                (m.kind, m.rule)
                for _, m in w.seen
                if isinstance(m, wire.RiskEvent) and m.intent_id == "stop2"
            ]

        w.wait(lambda: bool(said()), 10, "risk's word on the two-lot buy")
        assert said() == [("part_rejected", "halted")]
        assert risk()["fills_fetched"] == 1
    finally:
        stop_all(procs.values())
        w.close()
        engine.close()
        cli.close()
        orders.close(0)
        router.close()
