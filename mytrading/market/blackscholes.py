"""Black-Scholes price for European index options (the simulated option strip)."""

from __future__ import annotations

import math


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def bs_price(
    spot: float, strike: float, t_years: float, rate: float, vol: float, right: str
) -> float:
    """Price of a call ("CE") or put ("PE"); at or after expiry, the intrinsic value."""
    if t_years <= 0 or vol <= 0:
        return max(0.0, spot - strike) if right == "CE" else max(0.0, strike - spot)
    sq = vol * math.sqrt(t_years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t_years) / sq
    d2 = d1 - sq
    disc = strike * math.exp(-rate * t_years)
    if right == "CE":
        return spot * norm_cdf(d1) - disc * norm_cdf(d2)
    return disc * norm_cdf(-d2) - spot * norm_cdf(-d1)
