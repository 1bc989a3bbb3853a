"""Expiry in a backtest, as the exchange settles it: index options cash-settled at their
intrinsic value against the index's close on expiry day (out of the money: nothing),
index futures at that close, a stock option physically settled (the option at its
intrinsic value, the shares booked at the final price); STT on exercise and on delivery;
every figure worked out by hand from the generated bars."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from mytrading import compiled
from mytrading.backtest.data import GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.domain.refdata import RefData
from mytrading.domain.settlement import settle
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.messaging import wire
from mytrading.risk.config import risk_files
from mytrading.settings import PROJECT_ROOT

START, EXPIRY = date(2026, 11, 16), date(2026, 11, 23)  # the 24th a holiday: expiry Monday
SEED = 5


def last_close(src: GeneratedBars, ex: str, sym: str, day: date) -> float:
    closes = [b.close for b in src.batches(ex, sym, day, day)]
    return float(closes[-1][-1])


class HoldToExpiry(BaseStrategy[StrategyParams]):
    """Buys and sells a few contracts at the first bar and holds them."""

    name = "hold_to_expiry"
    legs: list[tuple[str, str, str, int]] = []  # exchange, symbol, action, quantity

    def on_start(self) -> None:
        self.subscribe_bars("NSE_INDEX", "NIFTY", "1m")
        for ex, sym, _, _ in self.legs:
            self.subscribe_ticks(ex, sym)
        self.sent = False

    def on_bar(self, bar: wire.Bar) -> None:
        if self.sent or any(self.ltp(ex, sym) <= 0 for ex, sym, _, _ in self.legs):
            return  # a MARKET order needs the contract quoted, as live
        self.sent = True
        for ex, sym, action, qty in self.legs:
            (self.buy if action == "BUY" else self.sell)(ex, sym, qty, product="NRML")


def test_positions_held_through_expiry_are_settled_as_the_exchange_does(
    refdata: RefData,
) -> None:
    src = GeneratedBars(refdata, SEED, origin=START - timedelta(days=60))
    first = next(iter(src.batches("NSE_INDEX", "NIFTY", START, START)))
    atm = round(float(first.close[0]) / 50) * 50
    sbin = next(iter(src.batches("NFO", "SBIN23NOV26FUT", START, START)))
    satm = round(float(sbin.close[0]) / 10) * 10
    legs = [
        ("NFO", f"NIFTY23NOV26{atm - 400}CE", "BUY", 65),  # deep in the money: exercised
        ("NFO", f"NIFTY23NOV26{atm + 1500}CE", "SELL", 65),  # far out: expires worthless
        ("NFO", "NIFTY23NOV26FUT", "BUY", 65),  # cash-settled at the index's close
        ("NFO", f"SBIN23NOV26{satm - 60}CE", "BUY", 750),  # a stock's: physical
    ]
    HoldToExpiry.legs = legs
    spec = Spec([(HoldToExpiry, {})], START, EXPIRY, capital=50_000_000.0)
    risk = risk_files(
        PROJECT_ROOT / "config",
        {"expiry_close": "", "max_position_lots": 50, "max_order_notional": 1e9},
    )
    bt = Backtest(spec, refdata, risk, src)
    bt.run()
    res = bt.results
    entry = {f["symbol"]: f["price"] for f in res.fills if not f["order_id"].count("settle")}
    assert set(entry) == {sym for _, sym, _, _ in legs}, res.fills
    settled = {f["symbol"]: f for f in res.fills if "settle-" in f["order_id"]}
    s_nifty = last_close(src, "NSE_INDEX", "NIFTY", EXPIRY)
    s_sbin = last_close(src, "NFO", "SBIN23NOV26FUT", EXPIRY)

    itm, otm, fut, stock = (sym for _, sym, _, _ in legs)
    want = {
        itm: round(max(s_nifty - (atm - 400), 0.0), 2),
        otm: round(max(s_nifty - (atm + 1500), 0.0), 2),
        fut: s_nifty,
        stock: round(max(s_sbin - (satm - 60), 0.0), 2),
    }
    assert want[itm] > 0 and want[otm] == 0.0 and want[stock] > 0  # the cases meant
    for sym, price in want.items():
        f = settled[sym]
        assert f["price"] == pytest.approx(price), sym
        assert f["action"] == ("SELL" if sym != otm else "BUY")  # closes what was held
    # STT on exercise: the buyer, 0.15 % of the intrinsic value (Finance Act 2026, from
    # 2026-04-01); nothing else charged
    assert settled[itm]["stt"] == round(0.0015 * want[itm] * 65, 2)
    assert settled[itm]["charges"] == settled[itm]["stt"]
    assert settled[otm]["charges"] == 0.0 and settled[fut]["charges"] == 0.0
    assert settled[stock]["charges"] == 0.0  # the delivery pays its STT
    # the stock call leaves 750 shares bought at the final price, delivery STT on them
    shares = settled["SBIN"]
    assert (shares["action"], shares["quantity"], shares["product"]) == ("BUY", 750, "CNC")
    assert shares["price"] == pytest.approx(s_sbin)
    assert shares["stt"] == round(0.001 * s_sbin * 750)
    # the books: flat in every contract, the shares held; P&L by hand
    trades = {t["symbol"]: t for t in res.trades()}
    for sym, price in want.items():
        side = 1 if sym != otm else -1
        qty = 750 if sym == stock else 65
        assert trades[sym]["gross_pnl"] == pytest.approx(side * (price - entry[sym]) * qty)
        assert trades[sym]["exit_by"] in ("cash", "physical")
    pos = {p["symbol"]: p["quantity"] for p in res.open_positions()}
    assert pos == {"SBIN": 750}
    risk = bt.risk.core.post
    assert {
        k[1]: p.qty for k, p in risk.books["hold_to_expiry"].ledger.positions.items() if p.qty
    } == {"SBIN": 750}
    # settle() itself: a short put in the money delivers shares to its writer
    inst = refdata.instrument("NFO", f"SBIN23NOV26{satm + 60}PE")
    st = settle(refdata, inst, -750, s_sbin)
    assert st.kind == "physical" and st.delivery is not None
    assert (st.delivery.shares, st.delivery.symbol) == (750, "SBIN")
    assert np.isclose(st.price, satm + 60 - s_sbin)


def test_a_held_option_has_greeks_in_the_engines_status(refdata: RefData) -> None:
    """A strategy short an ATM call (subscribed to the call alone): the engine watches the
    index for it once filled, and its status carries the position's Greeks."""
    day = date(2026, 11, 25)
    src = GeneratedBars(refdata, SEED, origin=day - timedelta(days=60))
    spot = float(next(iter(src.batches("NSE_INDEX", "NIFTY", day, day))).close[0])
    ce = f"NIFTY01DEC26{round(spot / 50) * 50}CE"

    class ShortCall(BaseStrategy[StrategyParams]):
        name = "short_call"

        def on_start(self) -> None:
            self.subscribe_bars("NFO", ce, "1m")
            self.sent = False

        def on_bar(self, bar: wire.Bar) -> None:
            if not self.sent:
                self.sent = True
                self.sell("NFO", ce, 65, product="NRML")

    bt = Backtest(
        Spec([(ShortCall, {})], day, day, capital=5_000_000.0),
        refdata,
        risk_files(PROJECT_ROOT / "config", {}),
        src,
    )
    bt.run()
    assert ("NSE_INDEX", "NIFTY") in bt.streams  # watched for the option's Greeks
    g = bt.runner.stats()["short_call"]["greeks"]["NIFTY"]
    assert -50 < g["delta"] < -15 and g["gamma"] < 0 and g["theta"] > 0 and g["vega"] < 0
    assert g["unpriced"] == 0


def test_an_option_strategys_report_has_pnl_per_leg_and_greeks_over_time(
    refdata: RefData, tmp_path: Path
) -> None:
    """The short straddle over two weeks: the report lists every leg's P&L (summing to
    the trades') and draws its Greeks (a picture with lines on it, looked at)."""
    import matplotlib.image as mpimg

    from mytrading.backtest import report
    from mytrading.engine.loader import discover

    cls = discover(PROJECT_ROOT / "strategies")["nifty_short_straddle"]
    start, end = date(2026, 11, 2), date(2026, 11, 13)
    src = GeneratedBars(refdata, 42, origin=start - timedelta(days=120))
    bt = Backtest(
        Spec([(cls, {})], start, end, capital=5_000_000.0),
        refdata,
        risk_files(PROJECT_ROOT / "config", {}),
        src,
    )
    res = bt.run()
    tables = res.tables()
    g = tables["greeks"]
    assert not g.empty and set(g["underlying"]) == {"NIFTY"}
    assert (g["theta"] > 0).all() and (g["gamma"] <= 0).all()  # short options: all day
    metrics = {"*": res.metrics(), "nifty_short_straddle": res.metrics("nifty_short_straddle")}
    paths = report.write(
        tmp_path,
        report.ReportInput(
            "r1", "straddle", {}, metrics, tables, {}, [], {"nifty_short_straddle": res.equity()}
        ),
    )
    page = paths["html"].read_text()
    assert f'<span id="build">{compiled.build()}</span>' in page  # which build ran it
    legs = page.split("<table id='legs'>")[1].split("</table>")[0]
    traded = {t["symbol"] for t in res.trades()}
    assert traded and all(sym in legs for sym in traded)
    net = sum(t["net_pnl"] for t in res.trades())
    shown = [
        float(r.split("<td>")[-1].split("<")[0].replace(",", "")) for r in legs.split("<tr>")[2:]
    ]
    assert sum(shown) == pytest.approx(net, abs=0.05 * len(shown))
    img = mpimg.imread(paths["greeks"])
    ink = (img[:, :, :3].mean(axis=2) < 0.6).mean()  # lines, text, axes: not a blank page
    assert 0.005 < ink < 0.3, ink
