"""The backtest engine over the live code: no lookahead (the cut-data proof), the live
risk rules and order helpers at work, charges from the same table as risk."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mytrading import wire
from mytrading.backtest.data import GeneratedBars
from mytrading.backtest.engine import Backtest, Spec
from mytrading.backtest.results import Results
from mytrading.engine.loader import discover
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.risk.charges import load_charges
from mytrading.settings import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"
START, END = date(2026, 10, 28), date(2026, 11, 20)


@pytest.fixture(scope="module")
def classes():
    return discover(PROJECT_ROOT / "strategies")


def run(refdata, strategies, start=START, end=END, seed=42, config=CONFIG) -> Backtest:
    source = GeneratedBars(refdata, seed, origin=start - timedelta(days=120))
    bt = Backtest(Spec(strategies, start, end, capital=5_000_000.0), refdata, config, source)
    bt.run()
    return bt


def decisions(bt: Backtest, until_ns: int) -> list[tuple]:
    orders = [
        (o["time"], o["strategy"], o["symbol"], o["action"], o["quantity"], o.get("pricetype"))
        for o in bt.results.orders.values()
        if o["time"] < until_ns
    ]
    fills = [
        (f["time"], f["strategy"], f["action"], f["quantity"], f["price"])
        for f in bt.results.fills
        if f["time"] < until_ns
    ]
    return orders + fills


def test_a_run_on_data_cut_at_t_decides_exactly_as_the_full_run_up_to_t(refdata, classes) -> None:
    """No lookahead: nothing after T can change a decision made before T."""
    strategies = [
        (classes["sma_crossover"], {"fast": 5, "slow": 20}),
        (classes["rsi_mean_reversion"], {"period": 14}),
    ]
    full = run(refdata, strategies, end=date(2026, 11, 4))
    cut = run(refdata, strategies, end=date(2026, 10, 30))
    t = max(f["time"] for f in cut.results.fills) + 1
    a, b = decisions(full, t), decisions(cut, t)
    assert len(a) > 40  # both strategies traded before the cut
    assert a == b
    assert len(decisions(full, 2**63 - 1)) > len(a)  # and the full run went on after it


class ProbeParams(StrategyParams):
    tf: str = "5m"


class Probe(BaseStrategy):
    """Records what it sees and when; brackets one entry with a stop and a target."""

    name = "probe"
    Params = ProbeParams

    def on_start(self) -> None:
        self.seen: list[tuple[int, int]] = []
        self.modes = {self.mode}
        self.ex, self.sym = self.near_future("NIFTY")
        self.subscribe_bars(self.ex, self.sym, self.params.tf)  # type: ignore[attr-defined]
        self.entered = False

    def on_bar(self, bar: wire.Bar) -> None:
        self.seen.append((bar.start_ns, self.link.now_ns()))
        if not self.entered and len(self.seen) == 3:
            self.entered = True
            self.bracket(
                self.ex,
                self.sym,
                "BUY",
                self.lot_size(self.ex, self.sym),
                stop_distance=15.0,
                stop_buffer=5.0,
                target=bar.close + 15.0,
                product="MIS",
            )


def test_bars_reach_a_strategy_only_once_closed_and_brackets_work(refdata) -> None:
    bt = run(refdata, [(Probe, {})], end=date(2026, 10, 29))
    probe = bt.runner.strategies["probe"]
    assert probe.modes == {"backtest"}
    five = 5 * 60 * 1_000_000_000
    assert probe.seen and all(now >= start + five for start, now in probe.seen)
    # 5m bars resampled from 1m: 75 a day, aligned to 09:15 as live
    assert len(probe.seen) == 2 * 75
    fills = bt.results.fills
    assert fills[0]["action"] == "BUY" and fills[0]["time"] > probe.seen[2][1] - 1
    exits = [f for f in fills if f["action"] == "SELL"]
    assert len(exits) == 1  # the stop or the target, never both (OCO)
    orders = {o["order_id"]: o for o in bt.results.orders.values()}
    placed = [o for o in orders.values() if o["op"] == "place"]
    assert sorted(o["pricetype"] for o in placed if o["action"] == "SELL") == ["LIMIT", "SL"]
    assert sorted(o["status"] for o in placed if o["action"] == "SELL") == [
        "cancelled",
        "complete",
    ]
    cancels = [o for o in orders.values() if o["op"] == "cancel"]
    assert [c["status"] for c in cancels] == ["complete"]  # the sibling, cancelled once


def test_the_live_risk_rules_apply(refdata, classes) -> None:
    bt = run(refdata, [(classes["sma_crossover"], {"fast": 5, "slow": 20})], end=date(2026, 11, 3))
    ev = bt.results.events
    rules = {(e["kind"], e["rule"]) for e in ev}
    assert ("trigger", "mis_squareoff") in rules  # 15:15 IST, by risk, every day
    assert ("exit", "mis_squareoff") in rules
    assert ("rejected", "entry_window") in rules  # no entries after 15:10
    assert not bt.results.open_positions()  # MIS: flat at every close
    # every fill is a lot multiple at a tick-rounded price
    for f in bt.results.fills:
        assert f["quantity"] % 65 == 0
        assert abs(f["price"] * 20 - round(f["price"] * 20)) < 1e-6


def test_charges_are_the_contract_notes(refdata) -> None:
    """The worked contract note of tests/risk/test_charges.py, through the results."""
    res = Results(refdata, load_charges(CONFIG), 1_000_000.0)
    res.book("s")
    day = 1_795_680_000_000_000_000  # 2026-11-20 10:10 IST
    for i, (action, price) in enumerate((("BUY", 24_500.0), ("SELL", 24_560.0)), 1):
        res.on_fill(
            wire.Fill(
                fill_no=i,
                fill_id=f"t{i}",
                order_id=f"o{i}",
                broker_order_id=f"b{i}",
                strategy="s",
                exchange="NFO",
                symbol="NIFTY29DEC26FUT",
                product="NRML",
                action=action,
                quantity=65,
                price=price,
                exch_ns=day + i * 60_000_000_000,
            )
        )
    (trade,) = res.trades()
    assert trade["gross_pnl"] == 3900.0
    assert trade["charges"] == 946.12
    assert trade["net_pnl"] == 2953.88
    assert res.charges().total == 946.12
    res.sample(day + 3 * 60_000_000_000)
    assert res.equity().iloc[-1] == pytest.approx(1_000_000.0 + 2953.88)


def test_generated_history_is_one_walk_whatever_the_window(refdata) -> None:
    """A date's bars do not depend on the window asked: warm-up and run read one walk."""
    import numpy as np

    origin = date(2026, 5, 1)
    gen = GeneratedBars(refdata, 3, origin=origin)

    def bars(start: date, end: date):
        parts = list(gen.batches("NFO", "NIFTY29DEC26FUT", start, end))
        return {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("start_ns", "close")}

    short = bars(date(2026, 11, 2), date(2026, 11, 6))
    long_ = bars(date(2026, 9, 1), date(2026, 11, 20))
    before = bars(date(2026, 1, 1), date(2026, 11, 6))  # before the origin: served from it
    i = int(np.searchsorted(long_["start_ns"], short["start_ns"][0]))
    assert len(short["close"]) == 5 * 375
    assert np.array_equal(long_["close"][i : i + len(short["close"])], short["close"])
    j = int(np.searchsorted(before["start_ns"], short["start_ns"][0]))
    assert np.array_equal(before["close"][j:], short["close"])
    ticks = short["close"] * 20
    assert np.allclose(ticks, np.round(ticks))  # on the 0.05 tick


def test_an_option_leg_without_data_is_noted_not_a_failure(refdata, classes) -> None:
    """The straddle subscribes its legs while running; the generator has no options: the
    run goes on, says which instruments had no data, and the strategy is not failing."""
    bt = run(refdata, [(classes["nifty_short_straddle"], {})], end=date(2026, 10, 29))
    (note,) = [n for n in bt.all_notes() if n.startswith("no data for")]
    assert "instrument(s) subscribed while running" in note and "not options" in note
    h = bt.runner.health["nifty_short_straddle"]
    assert h.errors == 0 and not h.quarantined


def test_a_late_reversal_closes_the_old_position(refdata, classes) -> None:
    """Always in the market on NRML: a reversal after the 15:10 entry window is not
    refused whole (which held the old position overnight); its closing part goes."""
    params = {"fast": 5, "slow": 20, "product": "NRML"}
    bt = run(refdata, [(classes["sma_crossover"], params)], end=date(2026, 11, 6))
    late = [e for e in bt.results.events if e["kind"] == "part_rejected"]
    assert late and all(e["rule"] == "entry_window" for e in late)
    fills = sorted(bt.results.fills, key=lambda f: f["time"])
    for e in late:
        pos = 0
        for f in fills:
            pos += f["quantity"] if f["action"] == "BUY" else -f["quantity"]
            if f["time"] >= e["time"]:  # the first fill after risk's word: the close
                assert pos == 0, e
                break
        else:
            raise AssertionError(f"no fill after {e}")


def test_risk_overrides_bind_in_a_backtest(refdata, classes) -> None:
    """``MT_RISK_ANY_HOUR`` (``Spec.risk_overrides``) lifts sessions and windows here as
    live: no refusal for the hour."""
    source = GeneratedBars(refdata, 42, origin=START - timedelta(days=120))
    spec = Spec(
        [(classes["sma_crossover"], {"fast": 5, "slow": 20})],
        START,
        date(2026, 11, 3),
        capital=5_000_000.0,
        risk_overrides={"any_hour": True},
    )
    bt = Backtest(spec, refdata, CONFIG, source)
    bt.run()
    hours = {"market_hours", "entry_window", "exit_window", "mis_cutoff"}
    assert bt.results.orders and not [e for e in bt.results.events if e["rule"] in hours]


class Flaky(BaseStrategy):
    """Fails on chosen bars: a failure in a row counts toward quarantine, a good bar
    between failures starts the count again (the backtest's lean bar path)."""

    name = "flaky"

    def on_start(self) -> None:
        self.ex, self.sym = self.near_future("NIFTY")
        self.subscribe_bars(self.ex, self.sym, "1m")
        self.n = 0

    def on_bar(self, bar: wire.Bar) -> None:
        self.n += 1
        if self.n in (2, 4) or self.n >= 10:
            raise RuntimeError(f"bar {self.n}")


def test_a_failing_bar_hook_in_a_backtest_counts_and_quarantines(refdata) -> None:
    bt = run(refdata, [(Flaky, {})], end=date(2026, 10, 28))
    h, strat = bt.runner.health["flaky"], bt.runner.strategies["flaky"]
    max_errors = bt.runner.max_errors
    # bars 2 and 4 failed alone; from bar 10 every bar fails until the limit in a row
    assert h.errors == 2 + max_errors and strat.n == 9 + max_errors
    assert h.quarantined.startswith(f"{max_errors} hook failures in a row")
    assert h.last_error == f"bar: RuntimeError: bar {9 + max_errors}"
    assert strat.context.origin_ns == 0  # reset after a failure too
