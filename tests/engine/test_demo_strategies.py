"""Every example strategy trades in the demo: the default stack under supervisord with all
six strategies (indices, an equity strategy on ten stocks, a stock future), warm-up from
the simulator's history, no hook failure."""

from __future__ import annotations

import json

import pytest

from mytrading import wire
from mytrading.bus import DAEMONS
from mytrading.engine.loader import discover
from mytrading.settings import PROJECT_ROOT, Settings, load_settings
from tests.procs import Watcher, cli, run_cli, stack_env

pytestmark = pytest.mark.integration

EXAMPLES = tuple(sorted(discover(PROJECT_ROOT / "strategies")))  # every strategy there


def test_every_example_strategy_trades_in_the_demo(
    tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = stack_env(
        tmp_env,
        monkeypatch,
        MT_STRATEGIES=",".join(EXAMPLES),  # 60x: 09:15 -> 09:30 (the straddle's entry) in 15 s
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
        w.pump(1.5)
        stats = w.status["engine"].detail["strategies"]
        for name in EXAMPLES:
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
        assert "protective exit rejected" not in log
        sells = {m.symbol for m in straddle if m.action == "SELL" and m.status == "complete"}
        stops = {m.symbol for m in straddle if m.action == "BUY" and m.status != "rejected"}
        assert {s[-2:] for s in sells} == {"CE", "PE"}
        assert stops == sells, (sells, stops)
        r = cli("status", env=env)
        for name in EXAMPLES:
            assert name in r.stdout
    finally:
        w.close()
        if started:
            r = run_cli("stop", env=env)
            assert r.returncode == 0, r.stdout + r.stderr
