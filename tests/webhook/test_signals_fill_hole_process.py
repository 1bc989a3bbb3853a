"""The signals daemon takes fills through ``FillSequence`` as the engine and risk do: a fill
the bus never delivered to it is asked of the router when the next one shows the hole, and
the day's last one, never published, is taken when the router's heartbeat names it. The
real daemon reads a stand-in router's publisher (``FakeRouter``: its publisher and its REP,
the router's two doors) and its webhook strategy's book must come to hold every fill.

Before this, the daemon booked fills with its own "above the last number" check: fill 2,
missed on the bus, was never asked for, and the strategy's position stayed short of it."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from mytrading.messaging import wire
from mytrading.webhook.model import StrategyFields
from mytrading.webhook.store import WebhookStore
from tests.engine.test_fill_hole_process import FakeRouter, heartbeat
from tests.procs import Watcher, settings_of, spawn, stop_all

FUT = "NIFTY23NOV26FUT"  # quoted by the simulator on 2026-11-20
NAME = "tv_hole"


def fill(n: int) -> wire.Fill:
    return wire.Fill(
        fill_no=n, fill_id=f"T{n}", order_id=f"{NAME}.w{n}", broker_order_id=f"B{n}",
        strategy=NAME, exchange="NFO", symbol=FUT, product="NRML",
        action="BUY", quantity=65, price=24_000.0 + n, exch_ns=n,
    )  # fmt: skip


@pytest.mark.integration
def test_a_fill_the_signals_daemon_missed_is_taken_from_the_router(
    tmp_env: dict[str, str],
) -> None:
    env = {**tmp_env, "MT_SIM_START": "2026-11-20T10:00"}
    store = WebhookStore(settings_of(env).stores.webhook_db)
    store.create(StrategyFields(name=NAME))
    store.close()
    router = FakeRouter(env)
    w = Watcher(settings_of(env), ("sys.status.",))
    procs = {"signals": spawn("signals", env)}

    def booked() -> int:
        st = w.status.get("signals")
        return st.detail["strategies"][NAME]["fills"] if st else -1

    try:
        w.wait(lambda: booked() == 0, 60, "the signals daemon up")
        router.fills.append(fill(1))

        def fill_1_taken() -> bool:  # a SUB joins a moment after connecting
            router.pub.publish(f"exec.fill.{NAME}", fill(1))
            return booked() == 1

        w.wait(fill_1_taken, 30, "fill 1 booked")
        router.fills += [fill(2), fill(3)]  # fill 2 kept by the router, never published
        router.pub.publish(f"exec.fill.{NAME}", fill(3))
        w.wait(lambda: booked() == 3, 20, "fills 2 and 3 booked")
        assert router.asked == [1]  # asked once, from fill 1
        assert w.status["signals"].detail["fills_recovered"] == 1
        router.fills.append(fill(4))  # the day's last: no later fill shows the hole
        w.pump(1.5)
        assert booked() == 3
        router.pub.publish("sys.status.router", heartbeat(last_fill_no=4))
        w.wait(lambda: booked() == 4, 20, "fill 4 booked late")
        assert w.status["signals"].detail["fills_recovered"] == 2
        assert w.status["signals"].detail["strategies"][NAME]["held"] == {f"NFO:{FUT}:NRML": 260}
        lines = [
            msgspec.json.decode(x)
            for x in (Path(tmp_env["MT_LOG_DIR"]) / "signals.log").read_bytes().splitlines()
        ]
        took = [d["fill_nos"] for d in lines if d["event"].startswith("fills missed on the bus")]
        assert took == [[2], [4]]
        # a republished earlier fill is skipped, not booked twice
        router.pub.publish(f"exec.fill.{NAME}", fill(2))
        w.pump(1.0)
        assert booked() == 4
    finally:
        stop_all(procs.values())
        w.close()
        router.close()
