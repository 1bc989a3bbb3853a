"""The simulated market's model run over history, vectorised: an index's one-minute path
with its implied-volatility level, and any option's prices along it.

The same equations as the live simulator (``sim/market.py`` steps them one quote at a
time): the index walks at its level x ``realized_ratio`` x the intraday factor, a new
session opens after an overnight gap worth ``OVERNIGHT_S`` of trading, the level takes a
``level_step`` after every minute; an option is priced on the surface (``surface_price``).
A backtest's generated history (``backtest/data.py`` ``GeneratedBars``) reads them here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from mytrading.sim.surface import (
    _NORM,
    SurfaceParams,
    _intraday,
    level_step,
    surface_price,
)

SESSION_S = 6.25 * 3600
OVERNIGHT_S = 0.2 * SESSION_S  # the overnight gap's variance, as trading seconds
TRADING_SECONDS_PER_YEAR = 252 * (SESSION_S + OVERNIGHT_S)  # a day's variance is 1/252


@njit(cache=True)
def _walk(
    logp: float,
    level: float,
    minute: np.ndarray,  # minutes since the session's open, per bar
    new_day: np.ndarray,  # the bar opens a session (an overnight gap before it)
    z: np.ndarray,  # n * sub normals: the index's steps
    zl: np.ndarray,  # n normals: the level's steps
    zo: np.ndarray,  # 2 normals a session (its overnight gap: index, level), in order
    sub: int,
    dt_sub: float,
    dt_over: float,
    norm: float,
    mean: float,
    kappa: float,
    vov: float,
    leverage: float,
    jump_sigmas: float,
    jump_scale: float,
    ratio: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    n = len(minute)
    pts = np.empty((n, sub))
    opens = np.empty(n)
    levels = np.empty(n)
    dt_min = dt_sub * sub
    j = 0  # the next overnight draw
    for i in range(n):
        if new_day[i]:
            vol = level * ratio
            sd = vol * math.sqrt(dt_over)
            r = -0.5 * vol * vol * dt_over + sd * zo[j]
            logp += r
            level = level_step(
                level, dt_over, r, sd, zo[j + 1], mean, kappa, vov, leverage,
                jump_sigmas, jump_scale,
            )  # fmt: skip
            j += 2
        opens[i] = logp
        levels[i] = level
        vol = level * ratio * _intraday(minute[i] + 0.5, norm)
        sd = vol * math.sqrt(dt_sub)
        r_min = 0.0
        for k in range(sub):
            r = -0.5 * vol * vol * dt_sub + sd * z[i * sub + k]
            logp += r
            r_min += r
            pts[i, k] = logp
        level = level_step(
            level, dt_min, r_min, vol * math.sqrt(dt_min), zl[i], mean, kappa, vov, leverage,
            jump_sigmas, jump_scale,
        )  # fmt: skip
    return pts, opens, levels, logp, level


def walk(
    p: SurfaceParams,
    logp: float,
    level: float,
    minute: np.ndarray,
    new_day: np.ndarray,
    rng: np.random.Generator,
    level_rng: np.random.Generator,
    sub: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """The next ``len(minute)`` one-minute bars of an index's path from ``logp`` (log of
    the index) and ``level``: (points (n, sub): the log index at each sub-step, the bars'
    opening log index (n), the level at each bar's start (n), the last log index, the
    last level)."""
    n = len(minute)
    z = rng.standard_normal(n * sub)
    zl = level_rng.standard_normal(n)
    zo = level_rng.standard_normal(2 * int(np.count_nonzero(new_day)))
    return _walk(
        logp, level, minute.astype(np.float64), new_day, z, zl, zo, sub,
        60.0 / sub / TRADING_SECONDS_PER_YEAR, OVERNIGHT_S / TRADING_SECONDS_PER_YEAR,
        _NORM, p.mean, p.kappa, p.vol_of_vol, p.leverage, p.jump_sigmas, p.jump_scale,
        p.realized_ratio,
    )  # fmt: skip


@njit(cache=True)
def _option_points(
    spot: np.ndarray,  # (n, m) the index at each point
    levels: np.ndarray,  # (n,) the level through each bar
    years: np.ndarray,  # (n, m) to expiry at each point
    strike: float,
    mean: float,
    kappa: float,
    skew: float,
    curvature: float,
    call: bool,
) -> np.ndarray:
    n, m = spot.shape
    out = np.empty((n, m))
    for i in range(n):
        for k in range(m):
            out[i, k] = surface_price(
                spot[i, k], strike, years[i, k], levels[i], mean, kappa, skew, curvature, call
            )
    return out


def option_points(
    p: SurfaceParams,
    spot: np.ndarray,
    levels: np.ndarray,
    years: np.ndarray,
    strike: float,
    right: str,
) -> np.ndarray:
    """An option's model price at every point of ``spot`` (rupees, unrounded)."""
    return _option_points(
        spot, levels, years, strike, p.mean, p.kappa, p.skew, p.curvature, right == "CE"
    )


def warm() -> None:
    """Compile (or load from numba's cache) every kernel of the model once: ``main.py``
    runs it at install, so the simulator's first start, a backtest's first option and the
    engine's first Greeks do not each pay a compile."""
    from mytrading.options.greeks import greeks, iv

    p = SurfaceParams.for_index(0.14)
    rng = np.random.default_rng(0)
    minute = np.arange(4, dtype=np.int64)
    pts, _, levels, _, _ = walk(p, 10.0, p.mean, minute, minute == 0, rng, rng, 4)
    spot = np.exp(pts)
    option_points(p, spot, levels, np.full(spot.shape, 0.02), 22_000.0, "CE")
    vol = iv(100.0, 22_000.0, 22_000.0, 0.02, 0.0, "CE")
    greeks(22_000.0, 22_000.0, 0.02, 0.0, vol, "PE")
    # the live market calls these from Python, one quote at a time
    surface_price(22_000.0, 22_000.0, 0.02, p.mean, p.mean, p.kappa, p.skew, p.curvature, True)
    level_step(p.mean, 1e-5, 0.0, 0.001, 0.5, p.mean, p.kappa, p.vol_of_vol, p.leverage,
               p.jump_sigmas, p.jump_scale)  # fmt: skip
    _intraday(10.0, _NORM)
