"""The deflated Sharpe ratio and the PBO against examples worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mytrading.research import deflated_sharpe, pbo
from mytrading.research.overfit import expected_max_sharpe, probabilistic_sharpe


def test_the_papers_numerical_example() -> None:
    """Bailey and López de Prado (2014), section 7: an annualised Sharpe of 2.5 over five
    years of daily returns (1,250), the best of 100 trials whose annualised Sharpe ratios
    vary by 0.5, skewness -3, kurtosis 10. The paper gives SR0 = 0.1132 and DSR = 0.9004.
    By hand: Z(0.99) = 2.3263, Z(1 - 1/(100e)) = 2.6812; SR0 = sqrt(0.5/250) x
    (0.4228 x 2.3263 + 0.5772 x 2.6812) = 0.04472 x 2.5312 = 0.1132; SR = 2.5/sqrt(250) =
    0.1581; z = (0.1581 - 0.1132) x sqrt(1249) / sqrt(1 + 3 x 0.1581 + 9/4 x 0.1581^2) =
    1.587 / 1.2372 = 1.283; Phi(1.283) = 0.900."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    p = probabilistic_sharpe(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0)
    assert p == pytest.approx(0.9004, abs=5e-4)


def test_one_trial_is_the_probabilistic_sharpe_ratio_of_the_returns() -> None:
    """returns 1%, -1%, 2%, 0%, 3%: mean 1%, deviations 0, -2, 1, -1, 2 (%), sum of
    squares 10e-4, so sd (ddof 1) = sqrt(2.5e-4) = 0.0158114 and SR = 0.632456; m2 =
    2e-4, m3 = (0 - 8 + 1 - 1 + 8)e-6 / 5 = 0 (skew 0), m4 = (16 + 1 + 1 + 16)e-8 / 5 =
    6.8e-8 (kurtosis 6.8e-8 / 4e-8 = 1.7). PSR = Phi(0.632456 x sqrt(4) /
    sqrt(1 + 0.7/4 x 0.4)) = Phi(1.264911 / 1.034408) = Phi(1.222835) = 0.88930."""
    d = deflated_sharpe([0.01, -0.01, 0.02, 0.0, 0.03], n_trials=1, sharpe_variance=0.7)
    assert d.sharpe == pytest.approx(0.632456, abs=1e-6)
    assert d.skew == pytest.approx(0.0, abs=1e-9)
    assert d.kurtosis == pytest.approx(1.7, abs=1e-9)
    assert d.benchmark == 0.0  # one trial: nothing selected, whatever the variance
    assert d.probability == pytest.approx(0.88930, abs=5e-5)
    # the same returns as the best of 50 trials: deflated below the PSR
    many = deflated_sharpe(pd.Series([0.01, -0.01, 0.02, 0.0, 0.03]), 50, 0.1)
    assert many.benchmark > 0.6  # sqrt(0.1) x ~2.25
    assert many.probability < 0.5


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        deflated_sharpe([0.01, 0.02], 0, 0.1)
    with pytest.raises(ValueError, match="do not vary"):
        deflated_sharpe([0.01, 0.01, 0.01], 3, 0.1)
    with pytest.raises(ValueError, match="NaN"):
        deflated_sharpe([0.01, math.nan, 0.02], 3, 0.1)
    with pytest.raises(ValueError, match="variance"):
        deflated_sharpe([0.01, 0.0, 0.02], 3, -1.0)


def _two_trials() -> np.ndarray:
    """Four blocks of two periods. Trial X earns 1, 3 in blocks 0 and 1 and loses -3, -1
    in blocks 2 and 3; trial Y earns 0, 2 in every block."""
    good, bad, steady = [1.0, 3.0], [-3.0, -1.0], [0.0, 2.0]
    x = good + good + bad + bad
    y = steady * 4
    return np.array([x, y]).T


def test_pbo_of_a_hand_worked_table() -> None:
    """Sharpe ratios over two blocks: X on its good ones [1,3,1,3] = 2 / 1.1547 = 1.732,
    on its bad ones -1.732, on one of each 0; Y always [0,2,0,2] = 0.866.
    In-sample (0,1): X is best, out of sample (2,3) it ranks 1 of 2: w = 1/3, logit
    log(1/2) < 0. In-sample (2,3): Y is best, out of sample (0,1) X beats it: logit < 0.
    The other four ((0,2), (0,3), (1,2), (1,3)): X scores 0 in and out, Y is best in and
    ranks 2 of 2 out: w = 2/3, logit log 2 > 0. PBO = 2/6."""
    got = pbo(_two_trials(), n_splits=4)
    assert got.probability == pytest.approx(1 / 3)
    assert sorted(np.round(got.logits, 6)) == sorted(
        np.round([math.log(0.5)] * 2 + [math.log(2.0)] * 4, 6)
    )
    assert (got.n_splits, got.n_trials, got.periods_used, got.rows_dropped) == (4, 2, 8, 0)
    # a first row that does not fill a block is dropped, and nothing else changes
    longer = np.vstack([[100.0, -100.0], _two_trials()])
    again = pbo(pd.DataFrame(longer, columns=["x", "y"]), n_splits=4)
    assert again.probability == pytest.approx(1 / 3)
    assert again.rows_dropped == 1


def test_pbo_of_pure_noise_is_about_a_half_and_of_a_real_edge_is_low() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.01, size=(480, 20))
    assert 0.25 <= pbo(noise, n_splits=8).probability <= 0.75
    edge = noise.copy()
    edge[:, 3] += 0.01  # one trial has a real edge in every period
    assert pbo(edge, n_splits=8).probability < 0.05


def test_pbo_refuses_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="even"):
        pbo(_two_trials(), n_splits=3)
    with pytest.raises(ValueError, match="at least 2 columns"):
        pbo(np.ones((16, 1)), n_splits=4)
    with pytest.raises(ValueError, match="blocks"):
        pbo(_two_trials(), n_splits=8)
