"""The simulated option market's volatility: an implied-volatility level per index that
moves with the market, and the surface (term structure and skew) options are priced on.

**Level** (India VIX's role): mean-reverting in its logarithm, rising when the index falls
(the leverage effect) and jumping when the index makes a move of many of its own
standard deviations in one step. The index's own random walk runs at the level times
``realized_ratio`` (implied volatility is dearer than realized on average: the variance
risk premium), times an intraday factor that is high after the open and again into the
close (the U shape of intraday volatility), normalised so a session's variance is the
level's.

**Surface**: the at-the-money volatility for an expiry ``t`` years away is the expected
average of a variance mean-reverting from the level to ``mean`` at rate ``kappa`` (so
short expiries follow today's level and long ones the long-run mean); across strikes it
is scaled by ``1 + skew z + curvature z**2``, ``z`` the strike's distance from the index
in standard deviations to expiry (a put skew: downside strikes dearer).

Options are priced by Black-Scholes on the index with no carry (``r = 0``): put-call parity
reads ``C - P = S - K`` exactly, and no option is priced below its intrinsic value. The
calibration, and where its figures come from, is in docs/options.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from mytrading.options.greeks import bs_price

SESSION_MINUTES = 375.0  # NSE's continuous session, 09:15-15:30
OPEN_BOOST, CLOSE_BOOST, DECAY_MIN = 1.2, 0.5, 20.0  # the intraday U: see intraday_factor
LOW, HIGH = math.log(0.5), math.log(4.0)  # the level stays within 0.5x..4x its mean


@dataclass(frozen=True)
class SurfaceParams:
    mean: float  # long-run implied volatility (annual, 0.155 = 15.5 "VIX")
    kappa: float = 5.0  # mean reversion of the level, per year (half-life ~ 7 weeks)
    vol_of_vol: float = 0.9  # the level's own volatility, relative, annual
    leverage: float = 4.0  # relative rise of the level per unit fall of the index (log)
    jump_sigmas: float = 4.0  # a step the index moves more than this many sigmas ...
    jump_scale: float = 6.0  # ... lifts the level by this times the excess return, relative
    skew: float = -0.08  # per standard deviation of strike distance
    curvature: float = 0.03  # per squared standard deviation
    realized_ratio: float = 0.9  # the index's realized volatility over the level

    @classmethod
    def for_index(cls, realized: float) -> SurfaceParams:
        """The surface of an index whose realized volatility is ``realized`` (instruments
        .toml ``sim_vol``): its long-run implied level sits above it by the premium."""
        return cls(mean=realized / cls.realized_ratio)


class IVLevel:
    """One index's implied-volatility level, stepped with the index's returns."""

    def __init__(self, params: SurfaceParams, rng: np.random.Generator) -> None:
        self.p = params
        self.rng = rng
        self.level = params.mean

    def realized(self, factor: float = 1.0) -> float:
        """The index's instantaneous volatility now (annual)."""
        return self.level * self.p.realized_ratio * factor

    def advance(self, dt: float, index_return: float, step_sigma: float) -> None:
        """Move the level over ``dt`` years in which the index returned ``index_return``
        (log) against a step standard deviation of ``step_sigma``."""
        if dt <= 0.0:
            return
        p = self.p
        self.level = level_step(
            self.level, dt, index_return, step_sigma, float(self.rng.standard_normal()),
            p.mean, p.kappa, p.vol_of_vol, p.leverage, p.jump_sigmas, p.jump_scale,
        )  # fmt: skip


@njit(cache=True)
def level_step(
    level: float,
    dt: float,
    index_return: float,
    step_sigma: float,
    z: float,
    mean: float,
    kappa: float,
    vol_of_vol: float,
    leverage: float,
    jump_sigmas: float,
    jump_scale: float,
) -> float:
    """One step of the level (see the module's docstring): ``z`` a standard normal draw.
    The simulator's market and the backtest's generated history both step it here."""
    x = math.log(level / mean)
    x += -kappa * x * dt + vol_of_vol * math.sqrt(dt) * z
    x += -leverage * index_return  # the index falls, the level rises (and vice versa)
    if step_sigma > 0.0 and abs(index_return) > jump_sigmas * step_sigma:
        x += jump_scale * (abs(index_return) - jump_sigmas * step_sigma)
    return mean * math.exp(min(max(x, LOW), HIGH))


def intraday_factor(minute: float) -> float:
    """The index's volatility ``minute`` minutes into the session, relative to the day's:
    about 2.1x at the open, 0.9x at midday, 1.3x at the close."""
    return _intraday(minute, _NORM)


@njit(cache=True)
def _intraday(minute: float, norm: float) -> float:
    m = min(max(minute, 0.0), SESSION_MINUTES)
    raw = 1.0 + OPEN_BOOST * math.exp(-m / DECAY_MIN)
    raw += CLOSE_BOOST * math.exp(-(SESSION_MINUTES - m) / DECAY_MIN)
    return raw * norm


def _norm() -> float:
    """The constant that makes the factor's mean square over a session one."""
    m = np.linspace(0.0, SESSION_MINUTES, 3751)
    raw = 1.0 + OPEN_BOOST * np.exp(-m / DECAY_MIN)
    raw += CLOSE_BOOST * np.exp(-(SESSION_MINUTES - m) / DECAY_MIN)
    return float(1.0 / np.sqrt(np.mean(raw * raw)))


_NORM = _norm()


@njit(cache=True)
def atm_vol(level: float, mean: float, kappa: float, t: float) -> float:
    """At-the-money volatility ``t`` years out: the root of the expected average variance
    from ``level`` reverting to ``mean``."""
    if t <= 1e-9:
        return level
    k = kappa * t
    w = (1.0 - math.exp(-k)) / k
    return math.sqrt(mean * mean + (level * level - mean * mean) * w)


@njit(cache=True)
def surface_vol(
    spot: float,
    strike: float,
    t: float,
    level: float,
    mean: float,
    kappa: float,
    skew: float,
    curvature: float,
) -> float:
    a = atm_vol(level, mean, kappa, t)
    sd = a * math.sqrt(max(t, 1e-6))
    z = math.log(strike / spot) / sd
    z = min(max(z, -4.0), 4.0)
    return a * max(1.0 + skew * z + curvature * z * z, 0.25)


@njit(cache=True)
def surface_price(
    spot: float,
    strike: float,
    t: float,
    level: float,
    mean: float,
    kappa: float,
    skew: float,
    curvature: float,
    call: bool,
) -> float:
    vol = surface_vol(spot, strike, t, level, mean, kappa, skew, curvature)
    return bs_price(spot, strike, t, 0.0, vol, call)


def option_price(
    p: SurfaceParams, level: float, spot: float, strike: float, t: float, right: str
) -> float:
    """An option's model price (rupees, before rounding to the tick)."""
    return surface_price(
        spot, strike, t, level, p.mean, p.kappa, p.skew, p.curvature, right == "CE"
    )
