"""How much of a backtest's result is luck: the deflated Sharpe ratio and the probability
of backtest overfitting.

* **Deflated Sharpe ratio** (D. H. Bailey and M. López de Prado, "The Deflated Sharpe
  Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal
  of Portfolio Management 40(5), 2014). The best of N trials has a high Sharpe ratio even
  when none has skill: the expected maximum of N Sharpe ratios drawn around zero with
  variance V is ``SR0 = sqrt(V) ((1 - g) Z(1 - 1/N) + g Z(1 - 1/(N e)))`` (``g`` the
  Euler-Mascheroni constant, ``Z`` the standard normal quantile). The DSR is the
  probabilistic Sharpe ratio of the chosen returns against that benchmark,
  ``Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2))``, with the
  returns' own skewness and (non-excess) kurtosis: the probability that the true Sharpe
  ratio is above zero after the selection. With one trial ``SR0`` is 0 and the DSR is the
  probabilistic Sharpe ratio.
* **Probability of backtest overfitting** by combinatorially symmetric cross-validation
  (D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of
  Backtest Overfitting", Journal of Computational Finance 20(4), 2017; working paper
  2015). The periods are cut into S equal blocks; for each way of choosing S/2 of them as
  the in-sample half, the trial best in-sample is ranked out of sample; the PBO is the
  share of the choices where it ranks at or below the median (logit of its relative rank
  <= 0).

Everything is per period and not annualised: Sharpe ratios are ``mean / std (ddof 1)`` of
the returns as given (daily returns, in this package).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


@dataclass(frozen=True)
class Deflated:
    """The deflated Sharpe ratio and what went into it (all per period)."""

    probability: float  # P(true Sharpe > 0) after the selection of the best of n_trials
    sharpe: float  # the chosen returns' Sharpe ratio
    benchmark: float  # SR0, the expected best Sharpe ratio of n_trials with no skill
    n_trials: int
    periods: int
    skew: float
    kurtosis: float  # non-excess: 3 for a normal distribution


@dataclass(frozen=True)
class Overfitting:
    """The probability of backtest overfitting and its cross-validation."""

    probability: float
    logits: np.ndarray  # one lambda per combination of in-sample blocks
    n_splits: int
    n_trials: int
    periods_used: int  # the rows used: the earliest rows_dropped are not in any block
    rows_dropped: int


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0: the expected largest of ``n_trials`` Sharpe ratios with no skill (0 for one)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if sharpe_variance < 0 or not math.isfinite(sharpe_variance):
        raise ValueError(f"sharpe_variance must be a finite variance >= 0, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    a = _N.inv_cdf(1.0 - 1.0 / n_trials)
    b = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * a + EULER_GAMMA * b)


def probabilistic_sharpe(
    sharpe: float, periods: int, skew: float, kurtosis: float, benchmark: float = 0.0
) -> float:
    """P(true Sharpe > ``benchmark``) given an observed per-period ``sharpe`` over
    ``periods`` returns with that skewness and (non-excess) kurtosis."""
    if periods < 2:
        raise ValueError(f"a Sharpe ratio needs at least 2 periods, got {periods}")
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        raise ValueError(
            f"the returns' moments give no standard error (1 - skew*SR + (kurt-1)/4*SR^2 = "
            f"{spread:.4g}): too few or too extreme returns"
        )
    return _N.cdf((sharpe - benchmark) * math.sqrt(periods - 1) / math.sqrt(spread))


def moments(returns: np.ndarray) -> tuple[float, float, float]:
    """(Sharpe mean/std ddof 1, skewness, non-excess kurtosis) of per-period returns; the
    shape moments are the population ones (m3 / m2^1.5, m4 / m2^2)."""
    r = np.asarray(returns, dtype=float)
    if r.size < 2:
        raise ValueError(f"need at least 2 returns, got {r.size}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite numbers (NaN or inf found)")
    sd = float(r.std(ddof=1))
    if sd == 0:
        raise ValueError("the returns do not vary: their Sharpe ratio is undefined")
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    return float(r.mean()) / sd, float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def deflated_sharpe(
    returns: np.ndarray | pd.Series | list[float], n_trials: int, sharpe_variance: float
) -> Deflated:
    """The deflated Sharpe ratio of the chosen trial's per-period ``returns``, chosen as
    the best of ``n_trials`` whose per-period Sharpe ratios have variance
    ``sharpe_variance``. ``.probability`` is the figure: the chance that the true Sharpe
    ratio is above zero once the selection is accounted for."""
    sr, skew, kurt = moments(np.asarray(returns, dtype=float))
    periods = int(np.asarray(returns).size)
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    p = probabilistic_sharpe(sr, periods, skew, kurt, sr0)
    return Deflated(p, sr, sr0, n_trials, periods, skew, kurt)


def pbo(returns: pd.DataFrame | np.ndarray, n_splits: int = 16) -> Overfitting:
    """The probability of backtest overfitting of the trials in ``returns`` (one column a
    trial, one row a period, in time order) by CSCV with ``n_splits`` blocks (even).

    Rows that do not fill a block (``T mod n_splits``) are dropped from the start. The
    out-of-sample rank is the average rank (ties share it) among the N trials, 1 the
    worst; its relative rank is ``rank / (N + 1)`` and its logit ``log(w / (1 - w))``."""
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2:
        raise ValueError("returns must be a table: one column per trial, one row per period")
    t, n = m.shape
    if n < 2:
        raise ValueError(f"the PBO compares trials: need at least 2 columns, got {n}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    if t < 2 * n_splits:
        raise ValueError(
            f"{t} periods cannot make {n_splits} blocks of at least 2 periods each: "
            "use fewer splits or more periods"
        )
    if not np.all(np.isfinite(m)):
        raise ValueError("returns must be finite numbers (NaN or inf found)")
    size = t // n_splits
    dropped = t - size * n_splits
    blocks = m[dropped:].reshape(n_splits, size, n)
    # every halving at once: a Sharpe ratio from the sums and sums of squares of the
    # blocks it takes (C(16, 8) = 12,870 halvings in a few matrix products)
    sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # (S, N)
    chosen = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    pick = np.zeros((len(chosen), n_splits))
    pick[np.arange(len(chosen))[:, None], chosen] = 1.0
    half = size * (n_splits // 2)  # periods in each half
    is_sr = _sharpe_of(pick @ sums, pick @ squares, half)
    oos_sr = _sharpe_of((1.0 - pick) @ sums, (1.0 - pick) @ squares, half)
    best = np.argmax(is_sr, axis=1)  # the first of equals, as argmax
    at_best = oos_sr[np.arange(len(best)), best][:, None]
    below = (oos_sr < at_best).sum(axis=1)
    ties = (oos_sr == at_best).sum(axis=1)  # itself included
    w = (below + (ties + 1.0) / 2.0) / (n + 1.0)
    lam = np.log(w / (1.0 - w))
    return Overfitting(float(np.mean(lam <= 0)), lam, n_splits, n, size * n_splits, dropped)


def _sharpe_of(sums: np.ndarray, squares: np.ndarray, n: int) -> np.ndarray:
    """Per-period Sharpe ratios (ddof 1) from sums and sums of squares over ``n`` periods;
    a trial that does not vary scores 0 (no edge)."""
    mean = sums / n
    var = np.maximum((squares - n * mean**2) / (n - 1), 0.0)
    sd = np.sqrt(var)
    # a spread below float noise is no spread: ties must stay ties
    flat = sd <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
    out = np.divide(mean, sd, out=np.zeros_like(mean), where=~flat & (sd > 0))
    return out
