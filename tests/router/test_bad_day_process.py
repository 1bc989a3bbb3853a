"""A broker's bad day on real processes (issue 38): the simulator server, seeded, loses the
replies of placed orders (a 502 page), answers late (past our timeout), refuses with 503
HTML (nothing placed) and garbles book reads, with its clock a minute behind or ahead of
ours. Router, risk and reconciler run as real processes; intents come as the engine's.

Every order is adopted or known absent, nothing is sent twice, our positions equal the
broker's, no strategy stays halted once its orders are resolved, and the reconciler finds
no mismatch."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.settings import Settings
from tests.procs import Watcher, cli, spawn, stop
from tests.simhelpers import FUT, KEY, WS_URL, control, post, start_server

LOT = 65
STRATEGIES = ("a", "b", "c", "d")
ROUNDS = 5


def good(host: str, what: str) -> Any:
    """A book read through the garbling: asked again until it is whole."""
    for _ in range(50):
        try:
            status, body = post(host, what, {"apikey": KEY})
        except ValueError:  # HTML or truncated JSON
            continue
        if status == 200 and isinstance(body, dict) and body.get("data") is not None:
            data = body["data"]
            if what != "orderbook" or isinstance(data, dict):
                return data
    raise AssertionError(f"no whole {what} in 50 reads")


@pytest.mark.integration
@pytest.mark.parametrize("offset_s", [-60, 60])
def test_lost_replies_on_a_broker_clock_a_minute_off(
    offset_s: int, tmp_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    anchor = str(time.time_ns())
    spec = (
        f"seed={11 + offset_s},lose_place=0.3,late_place=0.1,late_s=4,refuse_5xx=0.1,"
        f"garble_books=0.2,clock_offset_s={offset_s}"
    )
    proc, host = start_server(
        {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": str(tmp_path / "sim")},
        MT_SIM_FAULTS=spec,
        MT_CLOCK_ANCHOR_NS=anchor,
    )
    env = {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_OPENALGO_TIMEOUT_S": "2",
        "MT_OPENALGO_ABSENT_S": "4",
        "MT_RISK_ANY_HOUR": "true",
        "MT_RECON_INTERVAL_S": "2",
    }
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event.", "recon."))
    ctx = zmq.Context()
    as_engine = Pusher(ctx, settings.endpoints()["pipe.intents"], "engine", "intent")
    procs = {d: spawn(d, env) for d in ("router", "risk", "reconciler")}
    try:
        w.wait(lambda: all(d in w.status for d in procs), 30, "the daemons")
        w.wait(
            lambda: (w.status["risk"].detail.get("margin_available") or {}).get("main") is not None,
            20,
            "risk's funds figure",
        )
        sent: list[str] = []
        for k in range(ROUNDS):
            for s in STRATEGIES:
                iid = f"{s}{k}"
                intent = wire.PlaceIntent(
                    intent_id=iid, strategy=s, exchange="NFO", symbol=FUT,
                    action="BUY" if k % 2 == 0 else "SELL", quantity=LOT, product="NRML",
                )  # fmt: skip
                w.wait(lambda i=intent: as_engine.send(i), 10, "the intent pipe")
                sent.append(f"{s}.{iid}")
            w.pump(2.5)  # the risk rate limit, and a held strategy's time to resume

        def last(oid: str) -> wire.OrderUpdate | None:
            ups = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]
            return ups[-1] if ups else None

        def refused(oid: str) -> bool:  # by risk (its strategy held halted): never sent
            iid = oid.split(".", 1)[1]
            return any(
                isinstance(m, wire.RiskEvent) and m.kind == "rejected" and m.intent_id == iid
                for _, m in w.seen
            )

        final = ("complete", "rejected", "cancelled")

        def open_ones() -> list[str]:
            return [
                f"{o}:{u.status if (u := last(o)) else '-'}"
                for o in sent
                if not (((u := last(o)) is not None and u.status in final) or refused(o))
            ]

        try:
            w.wait(lambda: not open_ones(), 60, "every order final")
        except AssertionError:
            raise AssertionError(f"not final: {open_ones()}") from None
        w.wait(lambda: not w.status["router"].detail.get("unknown_orders"), 20, "none unknown")
        w.wait(
            lambda: not (w.status["risk"].detail.get("states") or {}).get("strategies"),
            20,
            "every strategy trading again",
        )
        # what the broker has: each order at most once, and ours where we say so
        rows = good(host, "orderbook")["orders"]
        assert len(rows) == len({r["orderid"] for r in rows})
        done = [o for o in sent if (u := last(o)) is not None and u.status == "complete"]
        by_broker = {last(o).broker_order_id for o in done}  # type: ignore[union-attr]
        assert len(by_broker) == len(done) and by_broker <= {r["orderid"] for r in rows}
        assert len(rows) == len(done), (len(rows), len(done))  # nothing sent twice, or lost
        fills = [m for _, m in w.seen if isinstance(m, wire.Fill)]
        ours = sum(f.quantity if f.action == "BUY" else -f.quantity for f in fills)
        theirs = sum(int(p["quantity"]) for p in good(host, "positionbook") if p["symbol"] == FUT)
        assert ours == theirs
        assert len({f.fill_id for f in fills}) == len(fills)  # each fill published once
        counts = control(host, "/_sim/counts")
        lost = counts.get("placeorder:fault_lose", 0) + counts.get("placeorder:fault_late", 0)
        assert lost >= 3, counts  # the seed gives a bad day, not a good one
        # the router's counts come with its heartbeat (once a second): the one read above
        # may predate the last adoption, which its order update already showed
        w.wait(
            lambda: w.status["router"].detail.get("recovered_after_timeout", 0) >= lost,
            5,
            "the adoptions counted in a heartbeat",
        )
        d = w.status["router"].detail
        assert d.get("recovered_after_timeout", 0) >= lost, d  # every lost reply adopted
        # a strategy halted by a lost reply resumed by itself, with an event each way
        states = collections.Counter(
            (m.strategy, m.action)
            for _, m in w.seen
            if isinstance(m, wire.RiskEvent) and m.kind == "state" and m.rule == "unknown_order"
        )
        for (strategy, action), n in states.items():
            if action == "halted":
                assert states[(strategy, "active")] == n, states
        # each unknown order's fate, on the operator's screen
        fates = w.status["router"].detail.get("unknown_fates") or []
        assert fates, "the seed gave no unknown order"
        r = cli("status", env=env)  # (exit 1: no supervisord here; the daemons are ours)
        assert "unknown orders resolved: " in r.stdout and fates[-1][0] in r.stdout, r.stdout
        w.pump(5.0)  # two reconciliations more
        assert w.status["reconciler"].detail["order_mismatches"] == 0
        assert w.status["reconciler"].detail["mismatches"] == 0
    finally:
        as_engine.sock.close(0)
        ctx.term()
        stop(list(procs.values()))
        w.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
