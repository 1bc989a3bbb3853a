"""Charges against worked contract-note examples (arithmetic done by hand, in comments)."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from mytrading.risk.charges import ZERO, Charges, ChargeTable, load_charges
from mytrading.settings import PROJECT_ROOT

DAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def table():
    return load_charges(PROJECT_ROOT / "config")


def test_nifty_futures_round_trip(table) -> None:
    # BUY 65 NIFTY futures @ 24,500: turnover 15,92,500
    #   brokerage min(20, 477.75) = 20.00; exchange x 0.00173 % = 27.55; SEBI 10/cr = 1.59
    #   stamp 0.002 % = 31.85; GST 18 % of (20 + 27.55 + 1.59) = 8.85; total 89.84
    buy = table.trade("NFO", "FUT", "BUY", 65, 24_500.0, DAY)
    assert (buy.brokerage, buy.stt, buy.exchange, buy.sebi, buy.stamp, buy.gst) == (
        20.0,
        0.0,
        27.55,
        1.59,
        31.85,
        8.85,
    )
    assert buy.total == 89.84
    # SELL 65 @ 24,560: turnover 15,96,400; STT 0.05 % (from April 2026) = 798.20
    #   exchange 27.62; SEBI 1.60; GST 18 % of 49.22 = 8.86; total 856.28
    sell = table.trade("NFO", "FUT", "SELL", 65, 24_560.0, DAY)
    assert (sell.stt, sell.exchange, sell.sebi, sell.stamp, sell.gst) == (
        798.2,
        27.62,
        1.6,
        0.0,
        8.86,
    )
    assert sell.total == 856.28
    both = ZERO + buy + sell
    assert both.total == 946.12
    assert round(60 * 65 - both.total, 2) == 2953.88  # the contract note's net


def test_nifty_option_round_trip_and_half_paisa_rounding(table) -> None:
    # SELL 65 NIFTY 24500 CE @ 120: premium turnover 7,800; brokerage flat 20 for options
    #   STT 0.15 % = 11.70; exchange 0.03503 % = 2.73; SEBI 0.01; GST 18 % of 22.74 = 4.09
    sell = table.trade("NFO", "CE", "SELL", 65, 120.0, DAY)
    assert (sell.brokerage, sell.stt, sell.exchange, sell.sebi, sell.gst) == (
        20.0,
        11.7,
        2.73,
        0.01,
        4.09,
    )
    assert sell.total == 38.53
    # BUY back @ 100: turnover 6,500; stamp 0.003 % = 0.195 -> 0.20 (half up, exactly)
    buy = table.trade("NFO", "CE", "BUY", 65, 100.0, DAY)
    assert (buy.exchange, buy.stamp, buy.gst, buy.total) == (2.28, 0.2, 4.01, 26.5)


def test_rates_by_trade_date_and_venue(table) -> None:
    # before April 2026 the futures STT was 0.02 %
    old = table.trade("NFO", "FUT", "SELL", 65, 24_560.0, date(2026, 3, 31))
    assert old.stt == 319.28
    # BSE: no transaction charge on index futures; SENSEX options 0.0325 %
    assert table.trade("BFO", "FUT", "BUY", 20, 81_000.0, DAY).exchange == 0.0
    assert table.trade("BFO", "PE", "BUY", 20, 200.0, DAY).exchange == 1.3
    with pytest.raises(ValueError, match="no rates"):
        table.trade("NFO", "FUT", "BUY", 65, 1.0, date(2020, 1, 1))


def test_equity_delivery_round_trip_with_the_dp_charge(table) -> None:
    # BUY 100 RELIANCE @ 2,500 CNC on NSE: turnover 2,50,000
    #   brokerage 0 (delivery); STT 0.1 % = 250 (equity STT to the rupee); exchange
    #   0.00297 % = 7.425 -> 7.43; SEBI 10/cr = 0.25; stamp 0.015 % = 37.50;
    #   GST 18 % of (0 + 7.43 + 0.25) = 1.3824 -> 1.38; total 296.56
    dp_days: dict = {}
    buy = table.fill("s", "NSE", "RELIANCE", "EQ", "BUY", 100, 2_500.0, DAY, "CNC", dp_days)
    assert (buy.brokerage, buy.stt, buy.exchange, buy.sebi, buy.stamp, buy.gst, buy.dp) == (
        0.0,
        250.0,
        7.43,
        0.25,
        37.5,
        1.38,
        0.0,
    )
    assert buy.total == 296.56
    # SELL 100 @ 2,550 the next trading day, from the holding: turnover 2,55,000
    #   STT 255; exchange 7.5735 -> 7.57; SEBI 0.255 -> 0.26; no stamp; DP 13.50 once for
    #   the scrip that day; GST 18 % of (7.57 + 0.26) = 1.41 and of 13.50 = 2.43: 3.84
    #   total 280.17
    sell_day = date(2026, 11, 23)
    sell = table.fill("s", "NSE", "RELIANCE", "EQ", "SELL", 100, 2_550.0, sell_day, "CNC", dp_days)
    assert (sell.stt, sell.exchange, sell.sebi, sell.stamp, sell.dp, sell.gst) == (
        255.0,
        7.57,
        0.26,
        0.0,
        13.5,
        3.84,
    )
    assert sell.total == 280.17
    # a second sell of the scrip the same day: no second DP charge; another book: its own
    again = table.fill("s", "NSE", "RELIANCE", "EQ", "SELL", 10, 2_550.0, sell_day, "CNC", dp_days)
    assert again.dp == 0.0
    other = table.fill("t", "NSE", "RELIANCE", "EQ", "SELL", 10, 2_550.0, sell_day, "CNC", dp_days)
    assert other.dp == 13.5
    assert round(50 * 100 - buy.total - sell.total, 2) == 4423.27  # the contract notes' net


def test_equity_intraday_round_trip(table) -> None:
    # BUY 100 SBIN @ 800 MIS: turnover 80,000: brokerage min(20, 0.03 % = 24) = 20;
    #   no STT on the buy; exchange 2.376 -> 2.38; SEBI 0.08; stamp 0.003 % = 2.40;
    #   GST 18 % of 22.46 = 4.04; total 28.90
    dp_days: dict = {}
    buy = table.fill("s", "NSE", "SBIN", "EQ", "BUY", 100, 800.0, DAY, "MIS", dp_days)
    assert (buy.brokerage, buy.stt, buy.exchange, buy.sebi, buy.stamp, buy.gst) == (
        20.0,
        0.0,
        2.38,
        0.08,
        2.4,
        4.04,
    )
    assert buy.total == 28.9
    # SELL 100 @ 805 MIS: turnover 80,500: STT 0.025 % = 20.125 -> 20; exchange 2.39;
    #   SEBI 0.08; GST 18 % of 22.47 = 4.04; no DP intraday; total 46.51
    sell = table.fill("s", "NSE", "SBIN", "EQ", "SELL", 100, 805.0, DAY, "MIS", dp_days)
    assert (sell.stt, sell.exchange, sell.dp, sell.total) == (20.0, 2.39, 0.0, 46.51)
    # BSE equity: 0.00375 %
    assert table.trade("BSE", "EQ", "BUY", 100, 800.0, DAY, "MIS").exchange == 3.0


def _decimal_trade(
    table: ChargeTable, ex: str, kind: str, action: str, qty: int, price: float, day: date
) -> Charges:
    """The contract-note arithmetic in ``Decimal``, as ``_trade`` does it for any price."""
    from mytrading.risk.charges import _d, _paise

    r = {k: _d(v) for k, v in table.rates(day).items() if k != "from"}
    turnover = _d(qty) * _d(price)
    seg = "opt" if kind in ("CE", "PE") else "fut"
    brokerage = table.per_order if seg == "opt" else min(table.per_order,
                                                       turnover * table.fut_pct_cap)  # fmt: skip
    brokerage = _paise(brokerage)
    zero = Decimal(0)
    stt = _paise(turnover * r[f"stt_{seg}_sell"]) if action == "SELL" else zero
    exch = _paise(turnover * r[f"{'bse' if ex == 'BFO' else 'nse'}_{seg}"])
    sebi = _paise(turnover * table.sebi_rate)
    stamp = _paise(turnover * r[f"stamp_{seg}_buy"]) if action == "BUY" else zero
    gst = _paise((brokerage + exch + sebi) * table.gst_rate)
    return Charges(*(float(x) for x in (brokerage, stt, exch, sebi, stamp, gst)))


def test_whole_paise_fills_are_charged_in_integers_exactly_as_in_decimal(table) -> None:
    """Issue 36: a futures or options fill in whole paise is charged in integers; 20,000
    random fills (both venues, both sides, every segment, prices from 0.05 to 90,000,
    over every period of rates) equal the Decimal arithmetic to the paisa, half-paisa
    ties included; and sums of charges are exact in paise."""
    rng = random.Random(36)
    days = [p[0] for p in table.periods]
    total = ZERO
    exact = 0
    for _ in range(20_000):
        kind = rng.choice(("FUT", "CE", "PE"))
        ex = rng.choice(("NFO", "BFO"))
        action = rng.choice(("BUY", "SELL"))
        qty = rng.choice((15, 20, 25, 30, 65, 75, 750, 1500)) * rng.randint(1, 40)
        price = rng.randint(1, 1_800_000) * 5 / 100  # on the 0.05 tick
        day = rng.choice(days)
        got = table.trade(ex, kind, action, qty, price, day, "NRML")
        assert got == _decimal_trade(table, ex, kind, action, qty, price, day), (kind, qty, price)
        total = total + got
        exact += round(got.total * 100)
    assert round(total.total * 100) == exact
    # a price off the paisa (an average of partial fills) takes the Decimal path
    odd = table.trade("NFO", "FUT", "SELL", 65, 24470.853, days[-1], "NRML")
    assert odd == _decimal_trade(table, "NFO", "FUT", "SELL", 65, 24470.853, days[-1])


def test_stt_on_an_exercised_option_follows_the_finance_act_2026() -> None:
    """STT on an in-the-money option exercised at expiry, the buyer's, on its intrinsic
    value: 0.125 % until 2026-03-31, 0.15 % from 2026-04-01 (the Finance Act 2026 raised
    it with the premium's and the futures' rates)."""
    from mytrading.risk.charges import settlement_charges

    table = load_charges(PROJECT_ROOT / "config")
    value = 400.0 * 65  # 400 rupees in the money, one NIFTY lot held long
    before = settlement_charges(table, "CE", False, 65, value, date(2026, 3, 26))
    after = settlement_charges(table, "CE", False, 65, value, date(2026, 11, 24))
    assert before.stt == 32.5  # 0.125 % of 26,000
    assert after.stt == 39.0  # 0.15 %
    assert after.total == after.stt  # nothing else on an exercise


def test_a_table_pickled_to_a_worker_charges_as_the_original(table) -> None:
    """A sweep hands its workers the table pickled; the compiled build's class is made by
    calling it (``ChargeTable.__reduce__``: from what made it), not from its state."""
    import pickle

    copy = pickle.loads(pickle.dumps(table))
    assert type(copy) is ChargeTable and copy is not table
    for args in (
        ("NFO", "FUT", "BUY", 65, 24_500.0, DAY),
        ("NFO", "CE", "SELL", 75, 112.35, DAY),
        ("NSE", "EQ", "SELL", 10, 801.15, DAY, "CNC"),
    ):
        assert copy.trade(*args) == table.trade(*args)
