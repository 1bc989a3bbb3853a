"""Every example strategy trades in the demo: the default stack under supervisord with all
seven strategies (indices, an equity strategy on ten stocks, a stock future, a builder
iron condor), warm-up from the simulator's history, no hook failure; and beside them a
builder file of every template, each filling every one of its legs (the strike selectors
choosing from the simulator's live chain, the stops resting at the broker)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mytrading.builder.spec import parse
from mytrading.builder.templates import TEMPLATES, render
from mytrading.engine.loader import discover
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.settings import PROJECT_ROOT, Settings, load_settings
from tests.procs import Watcher, cli, run_cli, stack_env

pytestmark = pytest.mark.integration

EXAMPLES = tuple(sorted(discover(PROJECT_ROOT / "strategies")))  # every strategy there


def test_every_example_strategy_trades_in_the_demo(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the examples, and beside them a builder file of every template (each checked as a
    # user's file is): one stack runs them all
    strategies = tmp_path / "strategies"
    shutil.copytree(PROJECT_ROOT / "strategies", strategies)
    templates = [f"t_{t}" for t in TEMPLATES]
    for name, template in zip(templates, TEMPLATES, strict=True):
        (strategies / f"{name}.toml").write_text(render(name, template))
    legs = {n: parse(strategies / f"{n}.toml", underlyings={"NIFTY"}).legs for n in templates}
    env = stack_env(
        tmp_env,
        monkeypatch,
        MT_STRATEGIES_DIR=str(strategies),
        # 60x: 09:15 -> 09:30 (the straddle's and the templates' entry) in 15 s
        MT_STRATEGIES=",".join((*EXAMPLES, *templates)),
        MT_SIM_STOCKS="*",  # the demo's stocks and their futures
        # RSI bands nearer the middle so that it trades within the test's minute; the
        # other strategies run on their config/strategies.toml defaults
        MT_STRATEGY_PARAMS=json.dumps(
            {"rsi_mean_reversion": {"oversold": 42, "overbought": 58, "exit_level": 50}}
        ),
    )
    default = Settings.model_fields["strategies"].default_factory()  # type: ignore[misc]
    assert set(default) == set(EXAMPLES)  # `run` starts every example
    w = Watcher(load_settings())
    started = False
    try:
        r = run_cli("start", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        started = True
        w.wait(lambda: set(w.status) == set(DAEMONS), 30, "a heartbeat from every daemon")

        def traded() -> set[str]:
            return {m.strategy for _, m in w.seen if isinstance(m, wire.Fill)}

        w.wait(lambda: traded() >= set(EXAMPLES), 60, f"fills from all of {EXAMPLES}")

        def legs_filled() -> dict[str, set[tuple[str, str]]]:
            """(CE/PE, action) of each template's fills."""
            out: dict[str, set[tuple[str, str]]] = {n: set() for n in templates}
            for _, m in w.seen:
                if isinstance(m, wire.Fill) and m.strategy in out:
                    out[m.strategy].add((m.symbol[-2:], m.action))
            return out

        want = {n: {(leg.instrument, leg.action) for leg in legs[n]} for n in templates}
        w.wait(
            lambda: all(want[n] <= got for n, got in legs_filled().items()),
            60,
            "every leg of every builder template filled",
        )
        w.pump(1.5)
        stats = w.status["engine"].detail["strategies"]
        for name in (*EXAMPLES, *templates):
            assert stats[name]["hook_errors"] == 0 and not stats[name]["quarantined"], stats
            assert stats[name]["hook_latency"], name  # timed on the status topic
        log = (load_settings().log_dir / "engine.log").read_text()
        for name in ("sma_crossover", "rsi_mean_reversion", "supertrend_trend"):
            assert f'"strategy": "{name}"' in log and "warmed up" in log
        # ten stocks traded intraday (MIS), the stock future in lots of its own (SBIN 750)
        fills = [m for _, m in w.seen if isinstance(m, wire.Fill)]
        equities = {f.symbol for f in fills if f.strategy == "equity_momentum"}
        assert all(
            f.exchange == "NSE" and f.product == "MIS"
            for f in fills
            if f.strategy == "equity_momentum"
        )
        assert len(equities) >= 3, equities  # several of its ten stocks within the minute
        sbin = [f for f in fills if f.strategy == "stock_futures_trend"]
        assert all(f.symbol.startswith("SBIN") and f.quantity % 750 == 0 for f in sbin), sbin
        warm = [ln for ln in log.splitlines() if "warmed up" in ln]
        assert all('"bars": 0' not in ln for ln in warm), warm  # history had past sessions
        # The straddle sold both legs, and each fill got its protective SL-L buy.
        straddle = [
            m
            for _, m in w.seen
            if isinstance(m, wire.OrderUpdate) and m.strategy == "nifty_short_straddle"
        ]
        unprotected = [ln for ln in log.splitlines() if "protective exit rejected" in ln]
        assert not unprotected, unprotected  # each line names the strategy, symbol and reason
        sells = {m.symbol for m in straddle if m.action == "SELL" and m.status == "complete"}
        stops = {m.symbol for m in straddle if m.action == "BUY" and m.status != "rejected"}
        assert {s[-2:] for s in sells} == {"CE", "PE"}
        assert stops == sells, (sells, stops)
        calendar = {
            m.symbol for _, m in w.seen if isinstance(m, wire.Fill) and m.strategy == "t_calendar"
        }
        assert len({sym[5:12] for sym in calendar}) == 2, calendar  # two expiries
        builder_stops = {
            m.symbol
            for _, m in w.seen
            if isinstance(m, wire.OrderUpdate)
            and m.strategy == "t_straddle"
            and m.action == "BUY"
            and m.status == "trigger pending"
        }
        assert {s[-2:] for s in builder_stops} == {"CE", "PE"}  # its legs' stops rest
        assert log.count('"builder entered"') >= len(templates) + 1  # and nifty_iron_condor
        r = cli("status", env=env)
        for name in EXAMPLES:
            assert name in r.stdout
    finally:
        w.close()
        if started:
            r = run_cli("stop", env=env)
            assert r.returncode == 0, r.stdout + r.stderr
