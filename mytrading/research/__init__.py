"""Research from a notebook or a script: one backtest, an optimisation, a walk-forward,
and how much of a result is luck.

    from mytrading.research import backtest, optimize, walk_forward, deflated_sharpe, pbo

``docs/research.md`` walks through it.
"""

from mytrading.backtest.session import InputError
from mytrading.research.optimize import Optimization, optimize
from mytrading.research.overfit import Deflated, Overfitting, deflated_sharpe, pbo
from mytrading.research.result import Result
from mytrading.research.runs import backtest
from mytrading.research.walkforward import WalkForward, walk_forward

__all__ = [
    "Deflated",
    "InputError",
    "Optimization",
    "Overfitting",
    "Result",
    "WalkForward",
    "backtest",
    "deflated_sharpe",
    "optimize",
    "pbo",
    "walk_forward",
]
