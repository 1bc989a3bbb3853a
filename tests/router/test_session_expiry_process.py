"""A broker session that expires mid-run (OpenAlgo's daily expiry, or a logout: every call
answers 403 "Invalid openalgo apikey"), through the real daemons and a simulator server
standing in for OpenAlgo: one CRITICAL alert, intents refused as "broker session expired"
(never as broker rejections, never sent), working orders left alone, the reconciler
paused rather than failing; when the session is back, one recovery and orders flow."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

import msgspec
import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.settings import Settings
from tests.procs import Watcher, settings_of, spawn, stop_all
from tests.simhelpers import FUT, KEY, control, order, post

STRATEGY = '''
from datetime import datetime

from mytrading.engine.strategy import BaseStrategy


class Pinger(BaseStrategy):
    """One lot of the near future bought or sold every second, at market; and, once, a
    buy limit far under the market that rests all along."""

    name = "pinger"

    def on_start(self) -> None:
        self.fut = self.near_future("NIFTY")
        self.subscribe_ticks(*self.fut)
        self.set_timer("go", 1.0)
        self.rested = False
        self.n = 0

    def on_timer(self, name: str, now: datetime) -> None:
        ltp = self.ltp(*self.fut)
        if ltp <= 0:
            return
        lot = self.lot_size(*self.fut)
        if not self.rested:
            self.rested = True
            self.buy(*self.fut, lot, pricetype="LIMIT",
                     price=self.round_price(*self.fut, ltp * 0.9), product="NRML")
        self.n += 1
        (self.buy if self.n % 2 else self.sell)(*self.fut, lot, product="NRML")
'''


def _updates(w: Watcher) -> list[wire.OrderUpdate]:
    return [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.strategy == "pinger"]


@pytest.mark.integration
def test_a_session_expired_mid_run_is_a_state_not_a_stream_of_rejections(
    sim_broker: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    host, env = sim_broker
    strategies = tmp_path / "strats"
    strategies.mkdir()
    (strategies / "pinger.py").write_text(textwrap.dedent(STRATEGY))
    env = {
        **env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "pinger",
        "MT_RISK_ANY_HOUR": "true",
        "MT_RECON_INTERVAL_S": "2",
    }
    w = Watcher(settings_of(env), ("sys.status.", "exec."))
    procs = {
        d: spawn(d, env) for d in ("router", "risk", "feed", "engine", "reconciler", "monitor")
    }

    def router() -> dict:
        return w.status["router"].detail if "router" in w.status else {}

    def placed() -> int:
        return int(control(host, "/_sim/counts").get("placeorder:200", 0))

    try:
        w.wait(lambda: len([u for u in _updates(w) if u.status == "complete"]) >= 3, 60, "fills")
        resting = [u for u in _updates(w) if u.status == "open" and u.filled_qty == 0]
        assert resting, "the resting limit order"
        control(host, "/_sim/session", {"expired": True})
        expired_at = time.monotonic()
        w.wait(lambda: bool(router().get("sessions_expired")), 15, "the session seen expired")
        seen_after_s = time.monotonic() - expired_at
        sent_then = placed()
        w.seen.clear()
        w.wait(
            lambda: len([u for u in _updates(w) if "broker session expired" in u.reason]) >= 3,
            20,
            "intents refused as session expired",
        )
        w.wait(
            lambda: (w.status["reconciler"].detail.get("last_result") or "").startswith(
                "paused: broker session expired"
            ),
            15,
            "the reconciler paused",
        )
        refused = [u for u in _updates(w) if u.status == "rejected"]
        assert refused and all("broker session expired" in u.reason for u in refused), refused
        assert placed() == sent_then  # nothing more reached the broker
        assert router().get("broker_rejected", 0) == 0
        assert router()["sessions_expired"]["main"]["state"] == "expired"
        assert not [u for u in _updates(w) if u.status == "cancelled"]  # working orders kept
        # the session is back: the probe finds it, orders flow again
        control(host, "/_sim/session", {"expired": False})
        w.wait(lambda: not router().get("sessions_expired"), 70, "the session restored")
        w.seen.clear()
        w.wait(lambda: any(u.status == "complete" for u in _updates(w)), 20, "fills again")
        assert placed() > sent_then
        w.pump(3.0)  # the monitor's recovery message
    finally:
        monitor = procs.pop("monitor")
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(timeout=10)
        stop_all(procs.values())
        w.close()
    logs = Path(env["MT_LOG_DIR"])
    router_log = (logs / "router.log").read_text()
    assert router_log.count("ALERT: broker session expired") == 1
    assert router_log.count("ALERT: broker session restored") == 1
    monitor_log = (logs / "monitor.log").read_text()
    said = [x for x in monitor_log.splitlines() if '"rule": "session_expired"' in x]
    fired = [x for x in said if '"kind": "fire"' in x]
    assert len(fired) == 1 and "[CRITICAL]" in fired[0], said  # one alert, not a stream
    assert any('"kind": "recover"' in x and "restored" in x for x in said), said
    print(f"session expiry seen by the router {seen_after_s:.1f} s after it happened")


@pytest.mark.integration
def test_an_amend_while_the_session_is_expired_is_refused_and_the_order_kept(
    sim_broker: tuple[str, dict[str, str]], settings: Settings
) -> None:
    """The router alone, as risk sends to it: a cancel sent the moment the session expires
    (answered 403 by the broker, or refused before sending once the router knows) is
    refused as "broker session expired", the working order stays working at the broker,
    a new order is not sent. (Resuming is the mid-run test's.)"""
    host, env = sim_broker
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    router = spawn("router", env)

    def last(oid: str) -> wire.OrderUpdate | None:
        ups = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]
        return ups[-1] if ups else None

    def placed() -> int:
        return int(control(host, "/_sim/counts").get("placeorder", 0))

    try:
        w.wait(lambda: "router" in w.status, 20, "the router")
        ltp = post(host, "quotes", {"apikey": KEY, "symbol": FUT, "exchange": "NFO"})[1]
        price = round(ltp["data"]["ltp"] * 0.9 / 0.05) * 0.05  # far under: it rests
        rest = msgspec.structs.replace(order("a", 65), pricetype="LIMIT", price=round(price, 2))
        w.wait(lambda: as_risk.send(rest), 10, "the order pipe")
        w.wait(lambda: (u := last("s.a")) is not None and u.status == "open", 15, "resting")
        cancel = msgspec.structs.replace(
            order("c", 65), order_id="s.c", op="cancel", ref_order_id="s.a"
        )
        control(host, "/_sim/session", {"expired": True})
        sent_then = placed()
        as_risk.send(cancel)
        w.wait(lambda: (u := last("s.c")) is not None and u.status == "rejected", 15, "refused")
        assert "broker session expired" in last("s.c").reason  # type: ignore[union-attr]
        as_risk.send(order("n", 65))
        w.wait(lambda: (u := last("s.n")) is not None and u.status == "rejected", 15, "refused")
        assert "broker session expired" in last("s.n").reason  # type: ignore[union-attr]
        assert placed() == sent_then
        assert last("s.a").status == "open"  # type: ignore[union-attr]
        code, reply = post(host, "orderbook", {"apikey": KEY})  # expired for everyone
        assert (code, reply.get("message")) == (403, "Invalid openalgo apikey")
        control(host, "/_sim/session", {"expired": False})
        rows = post(host, "orderbook", {"apikey": KEY})[1]["data"]["orders"]
        assert [r["order_status"] for r in rows if r["price"] == round(price, 2)] == ["open"]
        assert w.status["router"].detail.get("broker_rejected", 0) == 0
    finally:
        as_risk.sock.close(0)
        ctx.term()
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=10)
        w.close()
