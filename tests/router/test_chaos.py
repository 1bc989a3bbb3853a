"""Chaos on the real stack: supervisord, the simulator server, the OpenAlgo path, steady
order flow. ``kill -9`` the router, risk, the engine and the feed in turn; each is back
(a heartbeat from a new pid) and orders flow again. Then, with the kill switch on and the books
settled: the broker holds no order twice and none we do not know, every fill reached
the strategy, and broker, router, engine and risk agree on the positions.

How fast each is back is a figure, not a test: ``bench/recovery.py`` measures it on a quiet
machine against issue 6's 3 s (median 0.6-0.7 s; 1.1-1.4 s here alone). In the suite, with
two other workers' stacks on two cores, the same restarts took 3.4 s in CI: this test
only refuses a restart slow enough to be a fault (a respawn waiting on supervisord's
backoff, or a daemon stuck at start), which no load explains."""

from __future__ import annotations

import json
import os

import pytest

from mytrading import venue
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.router.journal import read
from mytrading.settings import load_settings
from tests.procs import Watcher, cli, run_cli

pytestmark = pytest.mark.integration

BACK_WITHIN_S = 10.0  # a fault, not a slow machine: the figure is bench/recovery.py's
VICTIMS = ("router", "risk", "engine", "feed")


def test_kill_9_each_daemon_during_order_flow(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from openalgo import api

    from tests.simhelpers import KEY, free_port

    rest = free_port()
    env = {
        **os.environ,
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": str(rest),
        "MT_SIM_WS_PORT": str(free_port()),
        "MT_SIM_SPEED": "120",  # a 1m bar every half second: an order most bars
        "MT_STRATEGY_PARAMS": json.dumps({"sma_crossover": {"fast": 2, "slow": 3}}),
        "MT_OPENALGO_POLL_S": "0.5",
        "MT_RECON_INTERVAL_S": "1",
    }
    for k, v in env.items():
        if k.startswith("MT_"):
            monkeypatch.setenv(k, v)
    settings = load_settings()
    w = Watcher(settings, ("sys.status.", "exec."))
    sdk = api(api_key=KEY, host=f"http://127.0.0.1:{rest}", timeout=5.0)
    started = False

    def fills() -> int:  # distinct numbers: a restarted router republishes its fills
        return len({m.fill_no for _, m in w.seen if isinstance(m, wire.Fill)})

    try:
        r = run_cli("start", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        started = True
        w.wait(lambda: set(w.status) == set(DAEMONS), 40, "a heartbeat from every daemon")
        w.wait(lambda: fills() >= 2, 60, "steady order flow")
        back: dict[str, float] = {}
        for victim in VICTIMS:
            at = fills()
            back[victim] = w.kill_9(victim)
            w.wait(lambda a=at: fills() > a, 30, f"orders flowing again after {victim}")
        print("back after kill -9 (s):", {k: round(v, 2) for k, v in back.items()})
        r = cli("kill-switch", "on", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        w.pump(3.0)  # MARKET orders fill at once; polls and snapshots catch up

        def broker_net() -> dict[str, int]:
            rows = sdk.positionbook()["data"]
            return {r["symbol"]: int(r["quantity"]) for r in rows if int(r["quantity"])}

        def router_net() -> dict[str, int]:
            snaps: dict[str, int] = {}
            for _, m in w.seen:
                if isinstance(m, wire.PositionSnapshot):
                    snaps[m.symbol] = m.quantity
            return {s: q for s, q in snaps.items() if q}

        def engine_net() -> dict[str, int]:
            st = w.status["engine"].detail["strategies"]["sma_crossover"]["positions"]
            return {k.split(":")[1]: q for k, q in st.items()}

        w.wait(
            lambda: broker_net() == router_net() == engine_net(),
            15,
            "broker, router and engine to agree on positions",
        )
        lots = sum(abs(q) for q in broker_net().values()) / 65
        w.wait(
            lambda: w.status["risk"].detail["use"].get("sma_crossover", {}).get("lots", 0) == lots,
            10,
            "risk to agree",
        )
        # No duplicate and no stranger at the broker: each of its orders is one of ours.
        rows = sdk.orderbook()["data"]["orders"]
        journal = read(venue.current(settings).dir / "router" / "journal.bin")
        ours = [jo.broker_id for jo in journal.orders.values() if jo.broker_id]
        assert len(ours) == len(set(ours))
        assert sorted(r["orderid"] for r in rows) == sorted(ours)
        assert all(jo.state != "unknown" for jo in journal.orders.values())

        # Every fill the broker made reached the strategy, once: the restarted engine's
        # snapshot held those up to its number, and it counted each one after (its beat
        # read again until it has the journal's latest fill: the strategy trades on, and
        # on a slow machine a fill journaled after the books agreed had not yet reached
        # the engine's last beat, 2 against 3 in a fresh clone's run)
        def counted() -> tuple[int, int]:
            detail = w.status["engine"].detail
            fills = read(venue.current(settings).dir / "router" / "journal.bin").fills
            after = {f.fill_no for f in fills if f.fill_no > detail["restored_fill_no"]}
            return detail["strategies"]["sma_crossover"]["fills"], len(after)

        w.wait(lambda: len(set(counted())) == 1, 10, "the engine's count of the fills")
        assert counted()[1] > 0
        assert sum(int(r.get("filled_quantity", 0)) for r in rows) == sum(
            f.quantity for f in journal.fills
        )
        w.pump(2.0)  # two more reconciliations on settled books
        recon = w.status["reconciler"].detail
        assert recon["order_mismatches"] == 0 and recon["mismatches"] == 0, recon
        slow = {k: v for k, v in back.items() if v > BACK_WITHIN_S}
        assert not slow, f"not back within {BACK_WITHIN_S}s: {slow}"
    finally:
        w.close()
        if started:
            run_cli("stop", env=env)
