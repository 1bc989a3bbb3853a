"""``main.py control`` on real daemons (feed, engine, risk, router on the in-process
simulated broker): pause, resume and stop a strategy and turn the kill switch, each
confirmed by risk and each idempotent; an unknown name answered with what exists; risk
down: refused, nothing changed; every command on record with who and what came of it."""

from __future__ import annotations

import json
import signal

import pytest

from mytrading.control.record import CommandRecord
from mytrading.messaging import wire
from tests.procs import Watcher, cli, settings_of, spawn, stop_all

NAME = "sma_crossover"


@pytest.mark.integration
def test_control_commands_on_a_running_stack_and_their_record(tmp_env: dict[str, str]) -> None:
    env = {
        **tmp_env,
        "MT_SIM_SPEED": "120",  # a bar every half second
        "MT_HEARTBEAT_S": "0.5",  # each command listens one beat before it answers
        "MT_STRATEGY_PARAMS": json.dumps({NAME: {"fast": 2, "slow": 3}}),
    }
    s = settings_of(env)
    w = Watcher(s, ("sys.status.", "exec.position."))
    procs = {d: spawn(d, env) for d in ("router", "risk", "engine", "feed")}

    def control(*args: str, ok: bool = True) -> dict[str, object]:
        r = cli("control", *args, "--json", env=env)
        assert (r.returncode == 0) is ok, r.stdout + r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    try:
        w.wait(lambda: set(w.status) >= {"router", "risk", "engine", "feed"}, 60, "the daemons")
        st = control("status")
        assert {"risk", "router", "engine", "feed"} <= set(st["daemons"])  # type: ignore[arg-type]

        got = control("pause", NAME)
        assert got["changed"] and "paused (confirmed by risk)" in str(got["text"])
        again = control("pause", NAME)  # idempotent: said, nothing sent
        assert not again["changed"] and "already" in str(again["text"])
        nope = control("pause", "nope", ok=False)
        assert NAME in nope["strategies"]  # type: ignore[operator]
        back = control("resume", NAME)
        assert back["changed"] and "(was HALTED: paused by cli:" in str(back["text"])

        w.wait(lambda: last_position(w) != 0, 60, f"{NAME} holding a position")
        stop = control("stop", NAME)
        assert stop["changed"], stop
        w.wait(lambda: last_position(w) == 0, 30, "its position closed by risk's exits")
        halted = control("halted")
        assert halted["states"]["strategies"][NAME] == "halted"  # type: ignore[index]
        w.wait(lambda: not w.status["risk"].detail["states"].get("stopping"), 30, "the stop done")

        assert control("kill-switch", "on")["changed"]
        assert not control("kill-switch", "on")["changed"]
        assert control("kill-switch", "off")["changed"]
        assert control("kill-switch", "sideways", ok=False)["text"].startswith(
            "the kill switch takes"
        )  # type: ignore[union-attr]

        procs["risk"].send_signal(signal.SIGTERM)
        procs["risk"].wait(timeout=10)
        w.pump(6.0)  # its last heartbeat goes stale
        down = control("pause", NAME, ok=False)
        assert down["text"] == "risk is not running: nothing was changed"
    finally:
        stop_all(p for p in procs.values() if p.poll() is None)
        w.close()

    rec = CommandRecord(s.stores.control_db)
    said = [
        (e.command, e.args.get("strategy", e.args.get("state")), e.outcome) for e in rec.recent(100)
    ][::-1]
    rec.close()
    assert said[:5] == [
        ("status", None, "done"),
        ("pause", NAME, "done"),
        ("pause", NAME, "unchanged"),
        ("pause", "nope", "refused"),
        ("resume", NAME, "done"),
    ]
    assert ("stop", NAME, "done") in said and said[-1] == ("pause", NAME, "refused")
    assert ("kill_switch", "on", "unchanged") in said
    whos = {e.who for e in CommandRecord(s.stores.control_db).recent(100)}
    assert len(whos) == 1 and next(iter(whos)).startswith("cli:")
    log = cli("control", "log", env=env)
    assert log.returncode == 0 and "pause" in log.stdout and "refused" in log.stdout


def last_position(w: Watcher) -> int:
    """The strategy's net position in the router's latest snapshot of it."""
    snaps = [m for _, m in w.seen if isinstance(m, wire.PositionSnapshot) and m.strategy == NAME]
    return sum({(m.exchange, m.symbol, m.product): m.quantity for m in snaps}.values())
