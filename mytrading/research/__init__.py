"""Research from a notebook or a script: one backtest, an optimisation, a walk-forward,
and how much of a result is luck.

    from mytrading.research import backtest, optimize, walk_forward, deflated_sharpe, pbo
    from mytrading.research import shadow   # live against its own backtest, as frames

``docs/research.md`` walks through it.
"""

from mytrading.backtest.session import InputError
from mytrading.research.optimize import Optimization, optimize
from mytrading.research.overfit import Deflated, Overfitting, deflated_sharpe, pbo
from mytrading.research.result import Result
from mytrading.research.runs import backtest
from mytrading.research.shadow import ShadowFrames, shadow
from mytrading.research.walkforward import WalkForward, walk_forward

__all__ = [
    "Deflated",
    "InputError",
    "Optimization",
    "Overfitting",
    "Result",
    "ShadowFrames",
    "WalkForward",
    "backtest",
    "deflated_sharpe",
    "optimize",
    "pbo",
    "shadow",
    "walk_forward",
]
