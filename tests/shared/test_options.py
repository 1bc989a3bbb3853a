"""Options helpers: textbook Black-Scholes values, IV round trips, strikes and expiries."""

from __future__ import annotations

import math
from datetime import date

import pytest

from mytrading.domain.refdata import RefData
from mytrading.options.chain import (
    OptionQuote,
    atm_strike,
    nearest_premium,
    option_expiries,
    option_for,
    strike_for,
)
from mytrading.options.greeks import greeks, iv, price


def test_black_scholes_matches_hull() -> None:
    # Hull, Options, Futures and Other Derivatives, example 15.6: 4.76 and 0.81
    assert price(42, 40, 0.5, 0.10, 0.20, "CE") == pytest.approx(4.7594, abs=1e-4)
    assert price(42, 40, 0.5, 0.10, 0.20, "PE") == pytest.approx(0.8086, abs=1e-4)
    # Hull tables 19.x (S=49, K=50, r=5 %, sigma=20 %, T=20 weeks): delta 0.522,
    # gamma 0.066, theta -4.31 a year, vega 12.1 and rho 8.91 per unit
    d, g, th, v, rho = greeks(49, 50, 0.3846, 0.05, 0.20, "CE")
    assert d == pytest.approx(0.522, abs=1e-3)
    assert g == pytest.approx(0.066, abs=1e-3)
    assert th * 365 == pytest.approx(-4.31, abs=1e-2)
    assert v * 100 == pytest.approx(12.1, abs=0.05)
    assert rho * 100 == pytest.approx(8.91, abs=1e-2)


@pytest.mark.parametrize("spot, strike, t", [(24_000, 24_000, 7 / 365), (52_000, 50_000, 0.1)])
def test_put_call_parity_greeks_by_finite_difference_and_iv_round_trip(
    spot: float, strike: float, t: float
) -> None:
    r, vol = 0.065, 0.14
    c, p = price(spot, strike, t, r, vol, "CE"), price(spot, strike, t, r, vol, "PE")
    assert c - p == pytest.approx(spot - strike * math.exp(-r * t), abs=1e-6)
    for right in ("CE", "PE"):
        d, g, _, v, _ = greeks(spot, strike, t, r, vol, right)
        h = spot * 1e-4
        up, dn = (
            price(spot + h, strike, t, r, vol, right),
            price(spot - h, strike, t, r, vol, right),
        )
        assert d == pytest.approx((up - dn) / (2 * h), rel=1e-5)
        mid = price(spot, strike, t, r, vol, right)
        assert g == pytest.approx((up - 2 * mid + dn) / h**2, rel=1e-3)
        bump = price(spot, strike, t, r, vol + 1e-4, right) - price(
            spot, strike, t, r, vol - 1e-4, right
        )
        assert v == pytest.approx(bump / 2e-4 / 100, rel=1e-5)  # vega is per percentage point
        for sigma in (0.05, 0.14, 0.6):
            px = price(spot, strike, t, r, sigma, right)
            assert iv(px, spot, strike, t, r, right) == pytest.approx(sigma, abs=1e-6)


def test_iv_is_nan_where_no_volatility_prices_the_option() -> None:
    assert math.isnan(iv(0.0, 24_000, 24_000, 0.02, 0.065, "CE"))
    assert math.isnan(iv(10.0, 24_000, 23_000, 0.02, 0.065, "CE"))  # below intrinsic
    assert math.isnan(iv(30_000, 24_000, 24_000, 0.02, 0.065, "CE"))  # above the spot
    assert math.isnan(iv(100.0, 24_000, 24_000, 0.0, 0.065, "CE"))  # expired
    assert price(24_100, 24_000, 0.0, 0.065, 0.2, "CE") == 100.0  # intrinsic at expiry
    assert greeks(24_100, 24_000, 0.0, 0.065, 0.2, "PE") == (0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="CE or PE"):
        price(1, 1, 1, 0, 0.1, "C")


def test_strikes_follow_openalgo_offsets() -> None:
    assert atm_strike(24_024.9, 50) == 24_000 and atm_strike(24_025, 50) == 24_050
    assert strike_for(24_010, 50, "CE", "ATM") == 24_000
    assert strike_for(24_010, 50, "CE", "OTM2") == 24_100  # calls: OTM is higher
    assert strike_for(24_010, 50, "CE", "ITM3") == 23_850
    assert strike_for(24_010, 50, "PE", "OTM2") == 23_900  # puts: OTM is lower
    assert strike_for(24_010, 50, "PE", "ITM1") == 24_050
    assert strike_for(52_040, 100, "PE", "ITM50") == 57_000
    for bad in ("OTM0", "ITM51", "atm", "OTM-1"):
        with pytest.raises(ValueError, match="offset"):
            strike_for(24_000, 50, "CE", bad)


def test_nearest_premium() -> None:
    chain = [
        OptionQuote("A", 24_000, "CE", 120.0),
        OptionQuote("B", 24_100, "CE", 80.0),
        OptionQuote("C", 24_200, "CE", 50.0),
        OptionQuote("D", 23_900, "PE", 78.0),
        OptionQuote("E", 24_300, "CE", 0.0),  # no price yet: never chosen
    ]
    assert nearest_premium(chain, "CE", 75).symbol == "B"  # type: ignore[union-attr]
    assert nearest_premium(chain, "CE", 65).symbol == "C"  # a tie goes to the cheaper
    assert nearest_premium(chain, "PE", 1).symbol == "D"  # type: ignore[union-attr]
    assert nearest_premium([], "CE", 50) is None


def test_expiries_move_back_over_holidays(refdata: RefData) -> None:
    nifty, bank = refdata.underlying("NIFTY"), refdata.underlying("BANKNIFTY")
    cal = refdata.calendar
    # NIFTY weeklies are Tuesdays; 24 Nov 2026 is Guru Nanak Jayanti, so Monday the 23rd
    assert option_expiries(cal, nifty, date(2026, 11, 20), 3) == [
        date(2026, 11, 23),
        date(2026, 12, 1),
        date(2026, 12, 8),
    ]
    # BANKNIFTY has monthlies only: last Tuesday, the same holiday shift in November
    assert option_expiries(cal, bank, date(2026, 11, 20), 2) == [
        date(2026, 11, 23),
        date(2026, 12, 29),
    ]
    assert cal.monthly_expiries(nifty, date(2026, 11, 24), 2) == [
        date(2026, 12, 29),
        date(2027, 1, 26),
    ]
    assert option_for(refdata, "NIFTY", 24_010, "CE", "OTM1", today=date(2026, 11, 20)) == (
        "NIFTY23NOV2624050CE"
    )
    assert option_for(refdata, "BANKNIFTY", 52_000, "PE", expiry=date(2026, 12, 29)) == (
        "BANKNIFTY29DEC2652000PE"
    )


def test_expiry_selectors(refdata: RefData) -> None:
    from mytrading.options.select import expiry_of

    cal = refdata.calendar
    nifty, bank = refdata.underlying("NIFTY"), refdata.underlying("BANKNIFTY")
    day = date(2026, 11, 20)  # a Friday; the 24th (Tuesday) a holiday
    got = {w: expiry_of(cal, nifty, day, w) for w in ("weekly", "next_week", "monthly")}
    assert got == {
        "weekly": date(2026, 11, 23),
        "next_week": date(2026, 12, 1),
        "monthly": date(2026, 11, 23),
    }
    assert expiry_of(cal, nifty, day, "next_month") == date(2026, 12, 29)
    assert expiry_of(cal, bank, day, "weekly") == date(2026, 11, 23)  # monthly only
    assert expiry_of(cal, bank, day, "next_week") == date(2026, 12, 29)
    assert expiry_of(cal, nifty, day, date(2027, 1, 26)) == date(2027, 1, 26)
    with pytest.raises(ValueError, match="expiry must be one of"):
        expiry_of(cal, nifty, day, "quarterly")  # type: ignore[arg-type]  # the point


def test_every_strike_selector_on_a_known_chain() -> None:
    """A chain priced by Black-Scholes at a flat 15 % (no carry), spot 24,010, a week out:
    each selector picks the strike worked out here from the same numbers."""
    from mytrading.options.greeks import greeks
    from mytrading.options.greeks import price as bs
    from mytrading.options.select import StrikeRule, choose

    spot, t, vol = 24_010.0, 7 / 365, 0.15
    chain = [
        OptionQuote(f"K{k}{r}", float(k), r, round(bs(spot, k, t, 0.0, vol, r), 2))
        for k in range(23_500, 24_550, 50)
        for r in ("CE", "PE")
    ]
    ce = {q.strike: q.ltp for q in chain if q.right == "CE"}
    pe = {q.strike: q.ltp for q in chain if q.right == "PE"}

    def pick(right: str, **rule: float | str) -> float | None:
        return choose(StrikeRule(**rule), right, spot, 50.0, chain, t)  # type: ignore[arg-type]

    assert pick("CE") == 24_000 and pick("CE", offset="OTM2") == 24_100
    assert pick("PE", offset="ITM1") == 24_050 and pick("CE", strike=23_700.0) == 23_700
    near = min(ce, key=lambda k: abs(ce[k] - 100.0))
    assert pick("CE", premium_near=100.0) == near
    assert pick("CE", premium_above=100.0) == min(
        (k for k in ce if ce[k] >= 100.0), key=lambda k: ce[k]
    )
    assert pick("PE", premium_below=50.0) == max(
        (k for k in pe if pe[k] <= 50.0), key=lambda k: pe[k]
    )
    deltas = {k: abs(greeks(spot, k, t, 0.0, vol, "PE")[0]) for k in pe if pe[k] > 0.05}
    assert pick("PE", delta_near=0.25) == min(deltas, key=lambda k: abs(deltas[k] - 0.25))
    assert pick("CE", premium_above=10_000.0) is None  # nothing that dear
    assert choose(StrikeRule(premium_near=100.0), "CE", spot, 50.0, [], t) is None  # unpriced
    for bad, why in (
        ({"strike": 24_000.0, "premium_near": 100.0}, "one way"),
        ({"delta_near": 25.0}, "absolute delta"),
        ({"premium_below": -5.0}, "above 0"),
        ({"offset": "OTM99"}, "offset must be"),
    ):
        with pytest.raises(ValueError, match=why):
            StrikeRule(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("spot", [24_025.0, 24_075.0, 24_049.99, 24_050.01])
def test_a_tie_at_atm_picks_the_same_strike_in_the_simulator_and_a_selector(
    refdata: RefData, spot: float
) -> None:
    """Exactly between two strikes (24,025: half-to-even ``round`` went down, the
    selectors up), the simulator's ``optionsymbol``/chain and every selector name one
    strike: the higher one."""
    from mytrading.options.select import StrikeRule, choose
    from mytrading.sim import options as sim_options

    u = refdata.underlying("NIFTY")
    want = {24_025.0: 24_050.0, 24_075.0: 24_100.0, 24_049.99: 24_050.0, 24_050.01: 24_050.0}
    strike = want[spot]
    assert sim_options.atm_strike(u, spot) == strike
    assert sim_options.strike_for(u, spot, "atm", "CE") == strike
    assert choose(StrikeRule(), "CE", spot, u.strike_step) == strike
    assert choose(StrikeRule(), "PE", spot, u.strike_step) == strike
    assert atm_strike(spot, u.strike_step) == strike  # the chain view's
    # the offsets count from that one strike on both sides
    assert sim_options.strike_for(u, spot, "OTM2", "PE") == strike - 2 * u.strike_step
    assert choose(StrikeRule(offset="OTM2"), "PE", spot, u.strike_step) == strike - 100
