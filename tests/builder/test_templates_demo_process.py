"""Every builder template trades in the demo: ``strategy new`` writes one file per template
into a strategies directory, and the default stack (the simulator server under
supervisord) runs all seven beside each other. Each sends every one of its legs through
risk and gets them filled: the strike selectors (ATM offsets, ATM+n, premium and delta)
choose from the simulator's live chain, and a leg with a stop gets its SL-L at the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrading import wire
from mytrading.builder.spec import parse
from mytrading.builder.templates import TEMPLATES
from mytrading.bus import DAEMONS
from mytrading.settings import load_settings
from tests.procs import Watcher, run_cli, stack_env

pytestmark = pytest.mark.integration


def test_every_template_trades_in_the_demo(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    names = [f"t_{t}" for t in TEMPLATES]
    for name, template in zip(names, TEMPLATES, strict=True):
        r = run_cli(
            "strategy", "new", name, "--template", template,
            env={**tmp_env, "MT_STRATEGIES_DIR": str(strategies)},
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    env = stack_env(
        tmp_env,
        monkeypatch,
        MT_STRATEGIES_DIR=str(strategies),
        MT_STRATEGIES=",".join(names),
        MT_SIM_STOCKS="",  # the indices and their options only
    )
    legs = {n: parse(strategies / f"{n}.toml").legs for n in names}
    w = Watcher(load_settings())
    started = False
    try:
        r = run_cli("start", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        started = True
        w.wait(lambda: set(w.status) == set(DAEMONS), 30, "a heartbeat from every daemon")

        def filled() -> dict[str, set[tuple[str, str]]]:
            """(CE/PE, action) of each template's fills."""
            out: dict[str, set[tuple[str, str]]] = {n: set() for n in names}
            for _, m in w.seen:
                if isinstance(m, wire.Fill) and m.strategy in out:
                    out[m.strategy].add((m.symbol[-2:], m.action))
            return out

        want = {n: {(leg.instrument, leg.action) for leg in legs[n]} for n in names}
        w.wait(
            lambda: all(want[n] <= got for n, got in filled().items()),
            90,
            "every leg of every template filled",
        )
        w.pump(1.5)
        stats = w.status["engine"].detail["strategies"]
        for n in names:
            assert stats[n]["hook_errors"] == 0 and not stats[n]["quarantined"], stats[n]
        calendar = {
            m.symbol for _, m in w.seen if isinstance(m, wire.Fill) and m.strategy == "t_calendar"
        }
        assert len({sym[5:12] for sym in calendar}) == 2, calendar  # two expiries
        # the straddle's legs have their stops resting at the broker
        updates = [
            m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.strategy == "t_straddle"
        ]
        stops = {m.symbol for m in updates if m.action == "BUY" and m.status == "trigger pending"}
        assert {s[-2:] for s in stops} == {"CE", "PE"}, updates
        log = (load_settings().log_dir / "engine.log").read_text()
        assert "protective exit rejected" not in log
        assert log.count('"builder entered"') >= len(names), log[-3000:]
    finally:
        if started:
            run_cli("stop", env=env)
