"""The reconciler compares orders and trades, not only positions, against a real simulator
server: an order placed by hand at the broker is reported once, as external, naming both
sides; the stack's own orders raise nothing."""

from __future__ import annotations

import signal

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.settings import Settings
from tests.procs import Watcher, spawn
from tests.simhelpers import FUT, KEY, order


@pytest.mark.integration
def test_orders_and_trades_are_reconciled(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    from openalgo import api

    host, env = sim_broker
    env = {**env, "MT_RECON_INTERVAL_S": "0.7"}
    w = Watcher(settings, ("sys.status.", "exec.", "recon."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    procs = [spawn("router", env), spawn("reconciler", env)]
    sdk = api(api_key=KEY, host=host)

    def events() -> list[wire.ReconEvent]:
        return [m for _, m in w.seen if isinstance(m, wire.ReconEvent)]

    try:
        w.wait(lambda: {"router", "reconciler"} <= set(w.status), 20, "router and reconciler")
        w.wait(lambda: as_risk.send(order("ours", 65)), 10, "the order pipe")
        w.wait(lambda: any(isinstance(m, wire.Fill) for _, m in w.seen), 10, "our order to fill")
        w.wait(lambda: w.status["reconciler"].detail["checks"] >= 3, 10, "three checks")
        assert events() == []  # the stack's own order and fill agree with the broker
        by_hand = sdk.placeorder(
            strategy="manual",
            symbol=FUT,
            action="SELL",
            exchange="NFO",
            price_type="MARKET",
            product="NRML",
            quantity=130,
        )["orderid"]
        w.wait(lambda: any(e.kind == "order" for e in events()), 10, "the order reported")
        checks = w.status["reconciler"].detail["checks"]
        w.wait(lambda: w.status["reconciler"].detail["checks"] >= checks + 3, 10, "more checks")
        orders = [e for e in events() if e.kind == "order"]
        assert [(e.order_id, e.ours, e.broker, e.action, e.symbol) for e in orders] == [
            (by_hand, 0, 1, "external", FUT)
        ]  # once, naming both sides
        assert "not placed by this stack" in orders[0].detail
        assert not [e for e in events() if e.kind == "trade"]  # its fills are not ours to miss
        positions = [e for e in events() if e.kind == "position"]
        assert [(e.ours, e.broker, e.action) for e in positions] == [(65, -65, "external")]
        assert w.status["reconciler"].detail["order_mismatches"] == 1
    finally:
        as_risk.sock.close(0)
        ctx.term()
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=10)
        w.close()
