"""Black-Scholes for European index options, compiled with numba.

``t`` is in years, ``rate`` and ``vol`` are annual decimals (0.065, 0.14). Greeks follow
the desk conventions: theta per calendar day, vega and rho per one percentage point.
At or after expiry (``t <= 0``) or with no volatility the price is the intrinsic value
and the Greeks are those of the intrinsic payoff (delta 0 or +-1, the rest 0).
"""

from __future__ import annotations

import math

from numba import njit

SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True)
def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / SQRT2))


@njit(cache=True)
def _pdf(x: float) -> float:
    return INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True)
def bs_price(spot: float, strike: float, t: float, rate: float, vol: float, call: bool) -> float:
    if t <= 0.0 or vol <= 0.0:
        return max(0.0, spot - strike) if call else max(0.0, strike - spot)
    sq = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / sq
    d2 = d1 - sq
    disc = strike * math.exp(-rate * t)
    if call:
        return spot * _cdf(d1) - disc * _cdf(d2)
    return disc * _cdf(-d2) - spot * _cdf(-d1)


@njit(cache=True)
def bs_greeks(
    spot: float, strike: float, t: float, rate: float, vol: float, call: bool
) -> tuple[float, float, float, float, float]:
    """(delta, gamma, theta per day, vega per 1 %, rho per 1 %)."""
    if t <= 0.0 or vol <= 0.0:
        itm = spot > strike if call else spot < strike
        return ((1.0 if call else -1.0) if itm else 0.0), 0.0, 0.0, 0.0, 0.0
    sqt = math.sqrt(t)
    sq = vol * sqt
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / sq
    d2 = d1 - sq
    disc = math.exp(-rate * t)
    pdf = _pdf(d1)
    gamma = pdf / (spot * sq)
    vega = spot * pdf * sqt / 100.0
    decay = -spot * pdf * vol / (2.0 * sqt)
    if call:
        delta = _cdf(d1)
        theta = decay - rate * strike * disc * _cdf(d2)
        rho = strike * t * disc * _cdf(d2) / 100.0
    else:
        delta = _cdf(d1) - 1.0
        theta = decay + rate * strike * disc * _cdf(-d2)
        rho = -strike * t * disc * _cdf(-d2) / 100.0
    return delta, gamma, theta / 365.0, vega, rho


@njit(cache=True)
def implied_vol(
    price: float, spot: float, strike: float, t: float, rate: float, call: bool
) -> float:
    """The volatility that prices the option at ``price``; NaN when no volatility can
    (below intrinsic, above the spot or strike bound, or at expiry). Newton steps from
    a Brenner-Subrahmanyam start, falling back to bisection where vega is too small."""
    if t <= 0.0 or price <= 0.0:
        return math.nan
    disc = strike * math.exp(-rate * t)
    lower = max(0.0, spot - disc) if call else max(0.0, disc - spot)
    upper = spot if call else disc
    if price <= lower or price >= upper:
        return math.nan
    lo, hi = 1e-6, 10.0
    vol = max(1e-3, min(5.0, math.sqrt(2.0 * math.pi / t) * price / spot))
    for _ in range(100):
        diff = bs_price(spot, strike, t, rate, vol, call) - price
        if abs(diff) < 1e-10:
            return vol
        if diff > 0.0:
            hi = vol
        else:
            lo = vol
        sq = math.sqrt(t)
        d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / (vol * sq)
        vega = spot * _pdf(d1) * sq
        step = vol - diff / vega if vega > 1e-12 else -1.0
        vol = step if lo < step < hi else 0.5 * (lo + hi)
    return vol


def price(spot: float, strike: float, t: float, rate: float, vol: float, right: str) -> float:
    """``bs_price`` with OpenAlgo's option type, "CE" or "PE"."""
    return bs_price(spot, strike, t, rate, vol, _is_call(right))


def greeks(
    spot: float, strike: float, t: float, rate: float, vol: float, right: str
) -> tuple[float, float, float, float, float]:
    return bs_greeks(spot, strike, t, rate, vol, _is_call(right))


def iv(opt_price: float, spot: float, strike: float, t: float, rate: float, right: str) -> float:
    return implied_vol(opt_price, spot, strike, t, rate, _is_call(right))


def _is_call(right: str) -> bool:
    if right not in ("CE", "PE"):
        raise ValueError(f"option type must be CE or PE, got {right!r}")
    return right == "CE"
