"""The whole stack under real supervisord in a temp dir: it trades, reconciles and stops clean."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.process.supervise import alive
from mytrading.settings import load_settings
from tests.procs import Watcher, cli, config_copy, loose_files, run_cli, stack_env

pytestmark = pytest.mark.integration


def _no_max_loss(tmp_env: dict[str, str]) -> Path:
    """A copy of config/ whose sma_crossover has no daily max loss."""
    out = config_copy(tmp_env, "config-nomaxloss")
    risk = out / "risk.toml"
    text = risk.read_text()
    head, sep, rest = text.partition("[strategies.sma_crossover]\nmax_loss = 12000.0")
    assert sep, "config/risk.toml's sma_crossover max_loss moved: update this test"
    risk.write_text(head + "[strategies.sma_crossover]\nmax_loss = 0.0" + rest)
    return out


def test_stack_trades_reconciles_and_stops_clean(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default path: the simulator server. sma_crossover without its daily max loss:
    # the market's walk may take 12,000 rupees from it in the minutes this test trades,
    # and risk would set it REDUCING itself before the operator's command below does
    env = stack_env(tmp_env, monkeypatch, MT_CONFIG_DIR=str(_no_max_loss(tmp_env)))
    settings = load_settings()
    w = Watcher(settings)
    pids: set[int] = set()
    started = False
    try:
        r = run_cli("start", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        started = True
        w.wait(lambda: set(w.status) == set(DAEMONS), 30, "a heartbeat from every daemon")
        # let it trade: a few fills, and the broker's margin per lot polled for them
        w.wait(
            lambda: (
                sum(1 for _, m in w.seen if isinstance(m, wire.Fill)) >= 3
                and any(
                    k.startswith("NFO:NIFTY")
                    for k in w.status["risk"].detail.get("broker_margin", {})
                )
            ),
            25,
            "three fills and the broker's margin for them",
        )
        w.pump(1.5)  # every daemon's next heartbeat counts what was seen so far
        pids = {st.pid for _, st in w.seen if isinstance(st, wire.Status)}

        # It really ran the OpenAlgo path: WebSocket market data, REST orders.
        feed, router = w.status["feed"].detail, w.status["router"].detail
        assert feed["source"] == "openalgo" and feed["connected"] is True, feed
        assert not feed["coverage_alert"], feed["coverage"]
        assert router["broker"] == "openalgo", router
        # the broker's margin per lot (OpenAlgo ``margin``) reached risk for what was traded
        assert any(k.startswith("NFO:NIFTY") for k in w.status["risk"].detail["broker_margin"])

        for d in DAEMONS:
            st = w.status[d]
            assert st.state == "running", (d, st.state, st.peers_down)
            assert st.errors == 0, (d, st.errors, _error_lines(tmp_env, d))
            assert st.gaps == 0, (d, st.gaps)
            # the collector, off while the daemon started (process/prestart.py), is back on
            assert st.detail["health"]["gc_on"] is True, d

        msgs = [m for _, m in w.seen]
        fills = [m for m in msgs if isinstance(m, wire.Fill)]
        updates = [m for m in msgs if isinstance(m, wire.OrderUpdate)]
        rejections = [m for m in msgs if isinstance(m, wire.RiskEvent) and m.kind == "rejected"]
        assert fills, "the example strategy never filled"
        assert not rejections, rejections
        risk_beat = w.status["risk"]
        risk = risk_beat.detail
        # every fill published before risk's last heartbeat was approved before it
        assert risk["approved"] >= len({f.order_id for f in fills if f.ts < risk_beat.ts})
        # between intents risk judged its last order again, sending nothing (MT_RISK_REHEARSE_MS)
        assert risk["rehearsals"] > 0, risk
        assert router["rehearsals"] > 0, router  # ... and the router its journal record
        complete = {u.order_id for u in updates if u.status == "complete"}
        assert {f.order_id for f in fills} <= complete
        assert [f.fill_no for f in fills] == list(range(1, len(fills) + 1))  # none missed
        assert all(f.strategy == "sma_crossover" for f in fills)

        # One order per sent id: never twice (an "open" with a fill is a partial fill).
        sent = [u.order_id for u in updates if u.status == "open" and not u.filled_qty]
        assert len(sent) == len(set(sent))

        # Positions agree: fills on the bus, the engine's view, the router's snapshot.
        net: dict[str, int] = {}
        for f in fills:
            net[f.symbol] = net.get(f.symbol, 0) + (
                f.quantity if f.action == "BUY" else -f.quantity
            )
        w.pump(2.5)  # fresh heartbeats and a reconciliation after the last fill we saw
        last_fill = max(f.fill_no for _, f in w.seen if isinstance(f, wire.Fill))
        eng = w.status["engine"].detail["strategies"]["sma_crossover"]
        snaps = {m.symbol: m.quantity for _, m in w.seen if isinstance(m, wire.PositionSnapshot)}
        rec = w.status["reconciler"].detail
        assert rec["checks"] >= 3 and rec["mismatches"] == 0, rec
        assert rec["fills_seen"] >= len(fills)
        assert not [m for _, m in w.seen if isinstance(m, wire.ReconEvent)]
        if last_fill == len(fills):  # no fill landed between the two samples
            assert {k.split(":")[1]: v for k, v in eng["positions"].items()} == {
                s: q for s, q in net.items() if q
            }
            assert {s: q for s, q in snaps.items() if q} == {s: q for s, q in net.items() if q}

        # Operator commands against the running stack.
        r = cli("status", env=env)
        assert r.returncode == 0, r.stderr
        for d in DAEMONS:
            assert d in r.stdout
        assert r.stdout.count("RUNNING") == len(DAEMONS) + 1  # + the simulator server
        assert "symbols fresh within 5 s" in r.stdout
        assert "sma_crossover" in r.stdout

        assert cli("kill-switch", "on", "--reason", "test", env=env).returncode == 0
        # a strategy hears "no" once: against the kill switch its entries stay in the
        # engine (a bar a second here), and risk says a refusal once per rule a minute
        ks_from = len(w.seen)
        w.pump(6.0)
        refused = [m for _, m in w.seen[ks_from:]
                   if isinstance(m, wire.RiskEvent) and m.kind == "rejected"]  # fmt: skip
        assert len(refused) <= 2, refused
        said = (settings.log_dir / "risk.log").read_text().count('"rule": "kill_switch"')
        assert said <= 1, said
        r = cli("status", env=env)  # by what, when, and what lifts it
        ks = next(line for line in r.stdout.splitlines() if line.startswith("KILL SWITCH ON"))
        assert "test (by " in ks and "`main.py kill-switch off` resumes" in ks, ks
        old_risk = w.status["risk"].pid
        r = cli("restart", "risk", env=env)
        assert r.returncode == 0, r.stderr
        w.wait(lambda: w.status["risk"].pid != old_risk, 15, "risk restarted")
        assert w.status["risk"].detail["kill_switch"] is True  # persisted across the restart
        old_router = w.status["router"].pid
        assert cli("restart", "router", env=env).returncode == 0  # its journal is compacted
        w.wait(lambda: w.status["router"].pid != old_router, 15, "router restarted")
        assert cli("kill-switch", "off", env=env).returncode == 0
        r = cli("risk", "state", "reducing", "--strategy", "sma_crossover", env=env)
        assert r.returncode == 0 and "sma_crossover REDUCING (confirmed" in r.stdout, r.stderr
        r = cli("risk", env=env)
        assert r.returncode == 0 and "stack: ACTIVE" in r.stdout, r.stderr
        assert "sma_crossover: REDUCING" in r.stdout and "max_order_lots" in r.stdout
        # one truth on screen: status shows the state risk holds, and why
        w.pump(1.2)
        r = cli("status", env=env)
        row = next(line for line in r.stdout.splitlines() if line.startswith("sma_crossover "))
        assert "REDUCING" in row and "risk state active --strategy sma_crossover" in row, row
        assert cli("risk", "state", "paused", env=env).returncode == 2
        r = cli("risk", "state", "active", "--strategy", "sma_crossover", env=env)
        assert r.returncode == 0, r.stderr
        pids |= {st.pid for _, st in w.seen if isinstance(st, wire.Status)}

        logs = cli("logs", "router", "-n", "200", env=env)
        assert "fill" in logs.stdout and "order sent" in logs.stdout
        # What an operator tails: order actions, not a line per HTTP request (at INFO);
        # and a clean run (restarts included) has no error line to find
        for d in ("router", "risk", "reconciler", "feed", "engine"):
            text = (settings.log_dir / f"{d}.log").read_text()
            assert "HTTP Request" not in text and "httpx" not in text, d
        for d in (*DAEMONS, "simserver"):
            errors = [line for line in (settings.log_dir / f"{d}.log").read_text().splitlines()
                      if '"level": "error"' in line or '"level": "critical"' in line]  # fmt: skip
            assert errors == [], (d, errors[:3])
            # each line once: the daemon's own file, not also supervisor's console copy
            console = settings.log_dir / f"{d}.console.log"
            assert not console.exists() or '"event"' not in console.read_text(), d
    finally:
        w.close()
        if started:
            r = run_cli("stop", env=env)
            assert r.returncode == 0, r.stdout + r.stderr
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    assert pids and not [p for p in pids if alive(p)], "stop left processes behind"
    for d in (*DAEMONS, "simserver"):  # a clean stop logs no error either (the signals
        # daemon's last beat once read its closed store: one error at every stop)
        errors = [line for line in (settings.log_dir / f"{d}.log").read_text().splitlines()
                  if '"level": "error"' in line or '"level": "critical"' in line]  # fmt: skip
        assert errors == [], (d, errors[:3])
    # everything the run wrote (state, journal through a compaction, databases, logs) is
    # the user's alone: files 0600, directories 0700
    tmp = Path(tmp_env["MT_STATE_DIR"]).parent
    assert loose_files(tmp / "state", tmp / "logs", tmp / "data", tmp_env["MT_RUN_DIR"]) == []
    assert not os.path.exists(os.path.join(tmp_env["MT_RUN_DIR"], "supervisord.pid"))


def _error_lines(env: dict[str, str], daemon: str) -> list[str]:
    """A daemon's logged errors, for a failure's message: the count alone says nothing."""
    log = Path(env["MT_LOG_DIR"]) / f"{daemon}.log"
    if not log.exists():
        return [f"no {log}"]
    lines = log.read_text(errors="replace").splitlines()
    return [ln[:300] for ln in lines if '"level": "error"' in ln or '"critical"' in ln][-5:]
