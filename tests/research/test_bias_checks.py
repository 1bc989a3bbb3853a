"""``check-lookahead`` and ``check-warmup`` pointed at strategies: one that reads the
backtest's batch of closes ahead (caught, naming its first decision), one that is not
reproducible, the example strategies (clean lookahead; the RSI's warm-up too short), and
an indicator with no warm-up."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mytrading import wire
from mytrading.backtest.session import Request, prepare
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.research.checks import check_lookahead, check_warmup
from mytrading.settings import Settings
from tests.procs import cli

HERE = Path(__file__).parent
WINDOW = ("--from", "2026-11-02", "--to", "2026-11-03")


@pytest.mark.integration  # worker processes or the command line
def test_the_commands_catch_a_peek_and_pass_the_example(tmp_env: dict[str, str]) -> None:
    env = {**tmp_env, "MT_STRATEGIES_DIR": str(HERE / "strategies")}
    r = cli("backtest", "check-lookahead", "-s", "peeker", *WINDOW, env=env)
    assert r.returncode == 1, r.stderr
    said = " ".join(r.stdout.split())
    assert "LOOKAHEAD: cut at 2026-11-02 09:16" in said
    assert "peeker: place BUY 65 NIFTY23NOV26FUT MARKET" in said  # the decision, named
    ok = cli("backtest", "check-lookahead", "-s", "sma_crossover", *WINDOW, "--cuts", "5",
             env=tmp_env)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no lookahead found: 5 runs cut at a decision" in ok.stdout
    w = cli("backtest", "check-warmup", "-s", "rsi_mean_reversion", "--from", "2026-11-02",
            env=tmp_env)  # fmt: skip
    assert w.returncode == 1, w.stdout + w.stderr
    assert "declared warm-up: 42 bars of 1m" in w.stdout
    assert "rsi_mean_reversion.RSI[rsi] still moves with more warm-up" in " ".join(w.stdout.split())
    bad = cli("backtest", "check-warmup", "-s", "nope", env=tmp_env)
    assert bad.returncode == 2 and "unknown strategy" in bad.stderr


class _Params(StrategyParams):
    """The probes below take no parameters of their own."""


class _Coin(BaseStrategy[_Params]):
    """Flips a coin it never seeded: the same data, other decisions."""

    name = "coin_probe"

    def on_start(self) -> None:
        self.ex, self.sym = self.near_future("NIFTY")
        self.subscribe_bars(self.ex, self.sym, "1m")
        self.rng = random.Random()

    def on_bar(self, bar: wire.Bar) -> None:
        if not self.has_open_orders() and self.rng.random() < 0.05:
            lot = self.lot_size(self.ex, self.sym)
            self.target_position(self.ex, self.sym, lot if self.rng.random() < 0.5 else -lot)


class _Ema(BaseStrategy[_Params]):
    """An EMA of 30 bars and an SMA of 10, with 10 bars of warm-up: enough for the SMA,
    not for the EMA (NaN for its first 20 bars, then still settling)."""

    name = "ema_probe"

    def on_start(self) -> None:
        ex, sym = self.near_future("NIFTY")
        self.add_indicator("EMA", name="slow", period=30)
        self.add_indicator("SMA", name="quick", period=10)
        self.subscribe_bars(ex, sym, "1m", warmup=10)


def _prepared(settings: Settings, cls: type, day: str = "2026-11-02") -> object:
    from datetime import date

    d = date.fromisoformat(day)
    return prepare(settings, Request([cls.name], d, d, classes={cls.name: cls}))  # type: ignore[attr-defined]


def test_a_strategy_that_is_not_reproducible_is_named(settings: Settings) -> None:
    got = check_lookahead(_prepared(settings, _Coin), 5)  # type: ignore[arg-type]
    assert not got.reproducible and not got.clean
    assert got.summary().startswith("NOT REPRODUCIBLE")


def test_an_indicator_without_warm_up_is_named(settings: Settings) -> None:
    got = check_warmup(_prepared(settings, _Ema))  # type: ignore[arg-type]
    by = {d.indicator: d for d in got.drifts}
    assert by["slow"].nan_after_warmup or by["slow"].max_rel > got.tolerance
    assert not by["quick"].nan_after_warmup and by["quick"].max_rel < 1e-9  # the same SMA
    assert [d.indicator for d in got.moving] == ["slow"]
    assert "ema_probe.slow" in got.summary()
