"""The backtest engine over the live code: no lookahead (the cut-data proof), the live
risk rules and order helpers at work, charges from the same table as risk."""

from __future__ import annotations

import collections
from datetime import date, datetime, time, timedelta

import pytest

from mytrading.backtest.data import GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.backtest.results import Results
from mytrading.engine.loader import discover
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.messaging import wire
from mytrading.risk.charges import load_charges
from mytrading.risk.config import risk_files
from mytrading.settings import PROJECT_ROOT
from tests.conftest import interpreted_only

CONFIG = PROJECT_ROOT / "config"
START, END = date(2026, 10, 28), date(2026, 11, 20)


@pytest.fixture(scope="module")
def classes():
    return discover(PROJECT_ROOT / "strategies")


def run(refdata, strategies, start=START, end=END, seed=42, config=CONFIG) -> Backtest:
    source = GeneratedBars(refdata, seed, origin=start - timedelta(days=120))
    bt = Backtest(
        Spec(strategies, start, end, capital=5_000_000.0), refdata, risk_files(config, {}), source
    )
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


def test_a_sweeps_kept_walk_serves_any_window_without_walking_again(refdata) -> None:
    """A sweep worker's source keeps the whole walk: a window before the last one read is
    served from it (no walk from the origin again), with the bars a fresh source makes."""
    import numpy as np

    from mytrading.backtest import data

    origin, sym = date(2025, 1, 1), "NIFTY29DEC26FUT"
    kept = GeneratedBars(refdata, 5, origin=origin, keep_all=True)
    late = list(kept.batches("NFO", sym, date(2026, 6, 1), date(2026, 8, 31)))
    made: list[int] = []
    extend = data._IndexPath.extend

    def counted(self) -> None:
        made.append(1)
        extend(self)

    early = date(2025, 3, 3), date(2025, 4, 30)
    try:
        data._IndexPath.extend = counted  # type: ignore[method-assign]
        again = list(kept.batches("NFO", sym, *early))
        assert made == []  # nothing walked again
        fresh = list(GeneratedBars(refdata, 5, origin=origin).batches("NFO", sym, *early))
        assert made  # a fresh source walks (the count can see it)
        # the default keeps the last chunks only: behind them, a walk from the origin
        limited = GeneratedBars(refdata, 5, origin=origin)
        list(limited.batches("NFO", sym, date(2026, 6, 1), date(2026, 8, 31)))
        made.clear()
        list(limited.batches("NFO", sym, *early))
        assert made
    finally:
        data._IndexPath.extend = extend  # type: ignore[method-assign]
    assert late and len(again) == len(fresh)
    for a, b in zip(again, fresh, strict=True):
        assert np.array_equal(a.start_ns, b.start_ns) and np.array_equal(a.close, b.close)


def test_generated_option_bars_price_off_the_same_walk(refdata) -> None:
    """An option's generated bars are the surface's prices along the index's own path:
    parity against the index within a tick, never below intrinsic or a tick, the same
    bars whatever window is asked, and the index's bars unchanged by reading them."""
    import numpy as np

    origin = date(2025, 1, 1)
    gen = GeneratedBars(refdata, 9, origin=origin)
    day = date(2025, 6, 2)  # a Monday; that week's NIFTY expiry is Thursday the 5th

    def cols(ex: str, sym: str, start: date, end: date) -> dict[str, np.ndarray]:
        parts = list(gen.batches(ex, sym, start, end))
        return {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("start_ns", "close")}

    idx = cols("NSE_INDEX", "NIFTY", day, date(2025, 6, 5))
    k = round(float(idx["close"][0]) / 50) * 50
    ce = cols("NFO", f"NIFTY05JUN25{k}CE", day, date(2025, 6, 30))
    pe = cols("NFO", f"NIFTY05JUN25{k}PE", day, date(2025, 6, 30))
    assert len(ce["close"]) == len(idx["close"]) == 4 * 375  # to its expiry, not past it
    assert np.array_equal(ce["start_ns"], idx["start_ns"])
    live = (ce["close"] > 0.05) & (pe["close"] > 0.05)
    parity = ce["close"] - pe["close"] - (idx["close"] - k)
    assert np.abs(parity[live]).max() <= 0.05 + 1e-9
    assert (ce["close"] >= np.maximum(idx["close"] - k, 0.05) - 0.05).all()
    assert (pe["close"] >= np.maximum(k - idx["close"], 0.05) - 0.05).all()
    # expiry day's last bar: worth its intrinsic value (to a tick)
    assert abs(ce["close"][-1] - max(idx["close"][-1] - k, 0.05)) <= 0.1
    again = GeneratedBars(refdata, 9, origin=origin)
    later = list(again.batches("NFO", f"NIFTY05JUN25{k}CE", date(2025, 6, 4), date(2025, 6, 4)))
    i = int(np.searchsorted(ce["start_ns"], later[0].start_ns[0]))
    assert np.array_equal(ce["close"][i : i + 375], later[0].close)
    assert np.array_equal(cols("NSE_INDEX", "NIFTY", day, date(2025, 6, 5))["close"], idx["close"])


def test_the_short_straddle_backtests_with_its_legs_chosen_at_each_entry(refdata, classes):
    """The demo's option strategy on generated option history: every day it sells the
    ATM CE and PE of the nearest weekly as live would choose them (the index at 09:30,
    the calendar's expiry), filled at the legs' generated prices."""
    import numpy as np

    from mytrading.domain.refdata import IST

    bt = run(refdata, [(classes["nifty_short_straddle"], {})])
    assert not bt.all_notes()
    src: GeneratedBars = bt.source
    entries = [
        o
        for o in bt.results.orders.values()
        if (o["action"], o["pricetype"], o["op"]) == ("SELL", "MARKET", "place")
    ]
    days = sorted({datetime.fromtimestamp(o["time"] / 1e9, IST).date() for o in entries})
    per_day = collections.Counter(
        datetime.fromtimestamp(o["time"] / 1e9, IST).date() for o in entries
    )
    assert len(days) >= 15 and set(per_day.values()) == {2}, per_day  # both legs, every day
    fills = {(f["symbol"], f["time"]): f["price"] for f in bt.results.fills}
    for day in days:
        legs = [o for o in entries if datetime.fromtimestamp(o["time"] / 1e9, IST).date() == day]
        (idx,) = src.batches("NSE_INDEX", "NIFTY", day, day)
        at_930 = int(datetime.combine(day, time(9, 30), IST).timestamp()) * 10**9
        ltp = idx.close[np.searchsorted(idx.start_ns, at_930) - 1]  # the 09:29 bar's close
        expiry = refdata.calendar.near_option_expiry(refdata.underlying("NIFTY"), day)
        for o in legs:
            inst = refdata.instrument("NFO", o["symbol"])
            assert inst.expiry == expiry and inst.strike == round(ltp / 50) * 50, (day, o)
            (bars,) = src.batches("NFO", o["symbol"], day, day)
            i = int(np.searchsorted(bars.start_ns, o["time"]))
            assert bars.start_ns[i] == o["time"]  # filled at that bar's open
            assert fills[(o["symbol"], o["time"])] == bars.open[i]
    h = bt.runner.health["nifty_short_straddle"]
    assert h.errors == 0 and not h.quarantined


def test_a_strategy_picks_its_option_by_premium_as_the_chain_is_quoted(refdata) -> None:
    """``self.option(.., premium_near=100)`` subscribes the weekly's chain, answers None
    until it is quoted, then the strike whose last price is nearest 100 of those quoted."""
    import numpy as np

    from mytrading.domain.refdata import IST

    picks: list[tuple[int, str, int]] = []  # (time, symbol, calls answered None before)

    class ByPremium(BaseStrategy[StrategyParams]):
        name = "by_premium"

        def on_start(self) -> None:
            self.subscribe_bars("NSE_INDEX", "NIFTY", "1m")
            self.waited = 0

        def on_bar(self, bar: wire.Bar) -> None:
            if picks:
                return
            got = self.option("NIFTY", "CE", premium_near=100.0, strikes=6)
            if got is None:
                self.waited += 1
                return
            picks.append((bar.start_ns + 60 * 10**9, got[1], self.waited))

    bt = run(refdata, [(ByPremium, {})], start=date(2026, 11, 16), end=date(2026, 11, 16))
    ((at, sym, waited),) = picks
    assert waited >= 1  # the first ask subscribed the chain and had no prices
    src: GeneratedBars = bt.source
    day = date(2026, 11, 16)
    expiry = refdata.calendar.near_option_expiry(refdata.underlying("NIFTY"), day)
    inst = refdata.instrument("NFO", sym)
    assert (inst.kind, inst.expiry) == ("CE", expiry)
    # the chain was ATM +- 6 at the time asked; each strike's last close before the pick
    (idx,) = src.batches("NSE_INDEX", "NIFTY", day, day)
    i = int(np.searchsorted(idx.start_ns, at)) - 1
    quoted = {}
    for k in range(-6, 7):
        strike = round(float(idx.close[i]) / 50) * 50 + 50 * k
        s = f"NIFTY{expiry:%d%b%y}".upper() + f"{strike}CE"
        (bars,) = src.batches("NFO", s, day, day)
        j = int(np.searchsorted(bars.start_ns, at)) - 1
        quoted[strike] = float(bars.close[j])
    nearest = min(quoted, key=lambda k: (abs(quoted[k] - 100.0), quoted[k]))
    assert inst.strike == nearest, (quoted, inst.strike)  # on the prices of that minute
    assert datetime.fromtimestamp(at / 1e9, IST).date() == day


def test_an_instrument_without_data_is_noted_not_a_failure(refdata) -> None:
    """A subscription made while running to what the source cannot give (the generator
    makes no equity bars): the run goes on and says which instrument had no data."""

    class LateEquity(BaseStrategy[StrategyParams]):
        name = "late_equity"

        def on_start(self) -> None:
            self.subscribe_bars("NFO", "NIFTY27OCT26FUT", "1m")
            self.asked = False

        def on_bar(self, bar: wire.Bar) -> None:
            if not self.asked:
                self.asked = True
                self.subscribe_ticks("NSE", "RELIANCE")

    bt = run(refdata, [(LateEquity, {})], start=date(2026, 10, 20), end=date(2026, 10, 22))
    (note,) = [n for n in bt.all_notes() if n.startswith("no data for")]
    assert "RELIANCE" in note and "index, futures and option bars" in note
    h = bt.runner.health["late_equity"]
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
    """``MT_RISK_ANY_HOUR`` (an override of risk's files, as ``backtest_risk`` is given
    the settings') lifts sessions and windows here as live: no refusal for the hour."""
    source = GeneratedBars(refdata, 42, origin=START - timedelta(days=120))
    spec = Spec(
        [(classes["sma_crossover"], {"fast": 5, "slow": 20})],
        START,
        date(2026, 11, 3),
        capital=5_000_000.0,
    )
    bt = Backtest(spec, refdata, risk_files(CONFIG, {"any_hour": True}), source)
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


class TwoSmas(BaseStrategy):
    """SMA and EMA crossovers on two futures at once (the many-instrument loop), each
    turning its position round on a cross: indicators of the close on every bar."""

    name = "two_smas"

    def on_start(self) -> None:
        self.legs = [("NFO", "NIFTY24NOV26FUT"), ("NFO", "BANKNIFTY24NOV26FUT")]
        for ex, sym in self.legs:
            self.add_indicator("SMA", name=f"f_{sym}", exchange=ex, symbol=sym, period=5)
            self.add_indicator("EMA", name=f"s_{sym}", exchange=ex, symbol=sym, period=21)
            self.subscribe_bars(ex, sym, "1m", warmup=25)

    def on_bar(self, bar: wire.Bar) -> None:
        fast = self.get_indicator_value(f"f_{bar.symbol}")
        slow = self.get_indicator_value(f"s_{bar.symbol}")
        if self.warming_up or fast != fast or slow != slow or self.has_open_orders(bar.symbol):
            return
        lot = self.lot_size(bar.exchange, bar.symbol)
        self.target_position(bar.exchange, bar.symbol, lot if fast > slow else -lot,
                             product="NRML")  # fmt: skip


@interpreted_only
def test_indicators_fed_ahead_trade_as_streamed_ones(
    refdata, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 36: the backtest feeds the indicators of the close a batch ahead, in the
    one-instrument and the many-instrument loop; a run with that switched off (every
    value streamed) makes the same orders and fills, on one instrument and on two."""
    from mytrading.engine.context import StrategyContext

    sma = discover(PROJECT_ROOT / "strategies")["sma_crossover"]
    one = [(sma, {"fast": 3, "slow": 9, "contract": "NIFTY24NOV26FUT", "product": "NRML"})]

    def trades(bt: Backtest) -> list[tuple]:
        return [(f["time"], f["symbol"], f["action"], f["quantity"], f["price"])
                for f in bt.results.fills]  # fmt: skip

    from mytrading.engine.indicator_set import AheadFeed

    served: list[int] = []  # bars each feed gave before it finished
    finish = AheadFeed.finish

    def counted(feed: AheadFeed) -> None:
        if feed.live:
            served.append(feed.i)
        finish(feed)

    monkeypatch.setattr(AheadFeed, "finish", counted)
    ahead = [trades(run(refdata, s)) for s in (one, [(TwoSmas, {})])]
    assert sum(served) > 10_000  # the values came from the feeds, not the updates
    monkeypatch.setattr(StrategyContext, "ahead", lambda *a, **k: None)
    streamed = [trades(run(refdata, s)) for s in (one, [(TwoSmas, {})])]
    assert len(ahead[0]) > 10 and len(ahead[1]) > 10
    assert ahead == streamed


def test_a_run_over_many_batches_fills_as_the_numpy_crossover(tmp_path) -> None:
    """The benchmark's check at a test's size: 60,000 bars (the generator hands them over
    in batches of some 7,000) of the SMA 20/50 stop-and-reverse, every fill's side and
    price equal to an exact numpy computation of the crossovers: bars are neither
    skipped nor repeated at a batch's end (the one-instrument loop keeps its place in
    locals)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_bt", PROJECT_ROOT / "bench" / "backtest.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from mytrading.domain.refdata import load_refdata

    config = bench.unlimited_config(tmp_path)
    risk = config / "risk.toml"
    risk.write_text(risk.read_text().replace("[defaults]\n", "[defaults]\nany_hour = true\n"))
    refdata = load_refdata(config)
    end = bench.window(refdata, 60_000)
    source = GeneratedBars(refdata, bench.SEED, origin=bench.START - timedelta(days=120))
    sma = discover(PROJECT_ROOT / "strategies")["sma_crossover"]
    bt = Backtest(Spec([(sma, bench.PARAMS)], bench.START, end, capital=1e9), refdata,
                  risk_files(config, {}), source)  # fmt: skip
    bt.run()
    assert bt.progress.bars >= 60_000
    got = [(f["action"], f["price"]) for f in bt.results.fills]
    assert len(got) > 1000 and got == bench.reference(source, end, warm=bench.PARAMS["slow"])
