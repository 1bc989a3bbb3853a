"""``main.py control`` on real daemons (router, risk, engine, feed on the in-process
simulated broker), one stack for all of it:

* pause, resume and stop a strategy and turn the kill switch, each confirmed by risk and
  each idempotent; an unknown name answered with what exists; risk down: refused,
  nothing changed; every command on record with who and what came of it;
* enabling, disabling and re-parameterising a strategy on the running engine: a bad value
  names its field and changes nothing, a parameter MT_STRATEGY_PARAMS pins is refused, a
  strategy holding a position is refused; a flat one gets its new parameters in its next
  decision (its next entry's size) and nowhere else, written to config/strategies.toml
  with the file's comments kept; a disabled strategy leaves the engine and comes back
  when enabled."""

from __future__ import annotations

import json
import shutil
import signal
import tomllib
from pathlib import Path

import pytest

from mytrading.control.record import CommandRecord
from mytrading.domain.refdata import load_refdata
from mytrading.messaging import wire
from mytrading.risk.events import read_events
from mytrading.settings import PROJECT_ROOT
from mytrading.shadow.given import given_commands
from mytrading.shadow.switches import strategy_switches
from tests.procs import Watcher, cli, settings_of, spawn, stop_all

A, B = "sma_crossover", "rsi_mean_reversion"


@pytest.mark.integration
def test_control_commands_on_a_running_stack_and_their_record(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    toml = cfg / "strategies.toml"
    env = {
        **tmp_env,
        "MT_CONFIG_DIR": str(cfg),
        "MT_STRATEGIES": f"{A},{B}",
        "MT_SIM_SPEED": "120",
        "MT_HEARTBEAT_S": "0.5",
        "MT_STRATEGY_PARAMS": json.dumps({A: {"fast": 2, "slow": 3}}),
    }
    lot = load_refdata(cfg).underlying("NIFTY").lot_size
    s = settings_of(env)
    w = Watcher(s, ("sys.status.", "exec.order."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def control(*args: str, ok: bool = True) -> dict[str, object]:
        r = cli("control", *args, "--json", env=env)
        assert (r.returncode == 0) is ok, r.stdout + r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    def engine() -> dict:  # type: ignore[type-arg]
        st = w.status.get("engine")
        return dict(st.detail.get("strategies") or {}) if st is not None else {}

    def flat(name: str) -> bool:
        row = engine().get(name) or {}
        return not row.get("positions") and not row.get("open_orders")

    try:
        w.wait(lambda: {A, B} <= set(engine()), 60, "both strategies on the engine")
        w.wait(lambda: "risk" in w.status and "router" in w.status, 30, "risk and the router")
        before = toml.read_bytes()

        # states: pause, resume (idempotent; an unknown name lists those that exist)
        # status lists the daemons it heard within its window: on a loaded machine a
        # heartbeat can miss one window (the feed's did, 2026-11-27), not every one
        every = {"risk", "router", "engine", "feed"}
        w.wait(lambda: every <= set(control("status")["daemons"]), 60, "every daemon in status")  # type: ignore[arg-type]
        got = control("pause", A)
        assert got["changed"] and "paused (confirmed by risk)" in str(got["text"])
        again = control("pause", A)  # idempotent: said, nothing sent
        assert not again["changed"] and "already" in str(again["text"])
        nope = control("pause", "nope", ok=False)
        assert A in nope["strategies"]  # type: ignore[operator]
        back = control("resume", A)
        assert back["changed"] and "(was HALTED: paused by cli:" in str(back["text"])

        pinned = control("params", A, "fast=5", ok=False)
        assert "set by MT_STRATEGY_PARAMS" in str(pinned["text"]), pinned
        bad = control("params", A, "lots=many", ok=False)
        assert str(bad["text"]).startswith("lots: "), bad
        nope = control("params", "nope", "lots=2", ok=False)
        assert A in nope["strategies"], nope  # type: ignore[operator]
        w.wait(lambda: not flat(A), 60, f"{A} holding a position")
        trades = control("trades")["trades"]  # the router's fills of the day
        assert any(t["strategy"] == A and t["quantity"] > 0 for t in trades), trades  # type: ignore[union-attr]
        held = control("params", A, "lots=2", ok=False)
        assert f"`control stop {A}`" in str(held["text"]), held
        assert toml.read_bytes() == before  # nothing written by any refusal

        # a stop closes its position through risk's exits; then the change is taken, by A
        assert control("stop", A)["changed"]
        w.wait(lambda: flat(A), 30, f"{A} flat after its stop")
        halted = control("halted")
        assert halted["states"]["strategies"][A] == "halted"  # type: ignore[index]
        w.wait(lambda: not w.status["risk"].detail["states"].get("stopping"), 30, "the stop done")
        b_params = engine()[B]["params"]
        got = control("params", A, "lots=2")
        assert got["changed"] and "confirmed by the engine" in str(got["text"]), got
        w.wait(lambda: engine()[A]["params"]["lots"] == 2, 5, "the engine's beat")
        assert engine()[B]["params"] == b_params
        table = tomllib.loads(toml.read_text())[A]
        assert table["lots"] == 2 and table["fast"] == 5  # the file's fast as it was
        assert "# SMA periods, in bars" in toml.read_text()  # the operator's comments kept
        restarted = [
            json.loads(x)
            for x in (s.log_dir / "engine.log").read_text().splitlines()
            if "restarted with new parameters" in x
        ]
        assert [r["strategy"] for r in restarted] == [A], restarted
        assert control("params", A, "lots=2")["changed"] is False  # already

        # its next decision is two lots
        w.seen.clear()
        control("resume", A)
        w.wait(
            lambda: any(isinstance(m, wire.OrderUpdate) and m.strategy == A for _, m in w.seen),
            60, f"{A}'s next order",
        )  # fmt: skip
        first = next(m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.strategy == A)
        assert first.quantity == 2 * lot, first

        # disable B (stopped first if it traded), then enable it again
        control("stop", B)
        w.wait(lambda: flat(B), 30, f"{B} flat")
        off = control("disable", B)
        assert off["changed"], off
        w.wait(lambda: B not in engine(), 5, f"{B} gone from the engine's beat")
        assert tomllib.loads(toml.read_text())[B]["enabled"] is False
        assert control("disable", B)["changed"] is False
        on = control("enable", B)
        assert on["changed"], on
        w.wait(lambda: B in engine(), 5, f"{B} back in the engine's beat")
        assert tomllib.loads(toml.read_text())[B]["enabled"] is True
        assert A in engine()

        # the kill switch, idempotent; a bad value refused
        assert control("kill-switch", "on")["changed"]
        assert not control("kill-switch", "on")["changed"]
        assert control("kill-switch", "off")["changed"]
        sideways = control("kill-switch", "sideways", ok=False)
        assert str(sideways["text"]).startswith("the kill switch takes")

        # risk down: refused, nothing changed
        procs["risk"].send_signal(signal.SIGTERM)
        procs["risk"].wait(timeout=10)
        w.pump(6.0)  # its last heartbeat goes stale
        down = control("pause", A, ok=False)
        assert down["text"] == "risk is not running: nothing was changed"
        assert control("disable", B, ok=False)["text"] == down["text"]
    finally:
        stop_all(p for p in procs.values() if p.poll() is None)
        w.close()

    rec = CommandRecord(s.stores.control_db)
    said = [
        (e.command, e.args.get("strategy", e.args.get("state")), e.outcome) for e in rec.recent(100)
    ][::-1]
    whos = {e.who for e in rec.recent(100)}
    rec.close()
    assert said[:5] == [
        ("status", None, "done"),
        ("pause", A, "done"),
        ("pause", A, "unchanged"),
        ("pause", "nope", "refused"),
        ("resume", A, "done"),
    ]
    assert ("stop", A, "done") in said and ("params", A, "done") in said
    assert ("params", A, "refused") in said and ("disable", B, "done") in said
    assert ("kill_switch", "on", "unchanged") in said and said[-1] == ("disable", B, "refused")
    assert len(whos) == 1 and next(iter(whos)).startswith("cli:")
    log = cli("control", "log", env=env)
    assert log.returncode == 0 and "pause" in log.stdout and "refused" in log.stdout
    # the day's shadow (issue 53) reads them back from risk's events as the commands that
    # took effect, each at its market moment: the pause, the resumes, the stops, the switch
    given = given_commands(read_events(s.stores.risk_db, limit=1000))
    assert [(g.command.command, g.command.value, g.target) for g in given] == [
        ("state", "halted", A),
        ("state", "active", A),
        ("stop", "", A),
        ("state", "active", A),
        ("stop", "", B),
        ("kill_switch", "on", "*"),
        ("kill_switch", "off", "*"),
    ], given
    assert given[0].command.reason.startswith("paused by cli:")
    # and the strategies' changes, the parameters' values before and after with them
    switches = strategy_switches(read_events(s.stores.risk_db, limit=1000))
    assert [(w.strategy, w.action, w.known) for w in switches if w.action != "enable"] == [
        (A, "params", True), (B, "disable", True)], switches  # fmt: skip
    assert switches[0].after == {"lots": 2} and switches[0].before["lots"] != 2, switches[0]
