"""Any TA-Lib function, in the same two forms as our own indicators.

``talib_vector("WILLR", high=h, low=l, close=c, timeperiod=14)`` runs the function over
whole arrays; ``TalibStream("WILLR", timeperiod=14)`` takes one bar per ``update`` and
recomputes the function over a bounded window of recent bars. Both follow our NaN
convention (a NaN bar is a missing bar: NaN out, state untouched), so they agree.

The window is ``lookback + 1 + extra`` bars. For functions with a finite memory (SMA,
WILLR, CCI, MOM, ...) any window past the lookback gives exactly the full-history value.
Functions with an infinite memory (EMA, RSI, ADX, ...) depend on where they were seeded,
so a window gives a value that converges to the full-history one as ``extra`` grows; use
the native ``stream`` classes for those, which are exact and O(1).
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

INPUTS = ("open", "high", "low", "close", "volume")


def _function(name: str, params: dict[str, Any]) -> Any:
    # TA-Lib is imported at its first use, not with the engine: it imports pandas when
    # installed (0.35 CPU-s), which an engine whose strategies use only our own
    # indicators never needs, and every engine start paid it
    from talib import abstract

    try:
        fn = abstract.Function(name.upper())  # type: ignore[attr-defined]  # built at import, no stub
    except Exception as exc:  # talib raises its own Exception type for unknown names
        raise ValueError(f"TA-Lib has no function {name!r}") from exc
    unknown = set(params) - set(fn.parameters)
    if unknown:
        raise ValueError(f"{name}: unknown parameters {sorted(unknown)}; has {list(fn.parameters)}")
    fn.parameters = {**fn.parameters, **params}
    return fn


def _needed(fn: Any) -> list[str]:
    names: list[str] = []
    for v in fn.input_names.values():
        names += v if isinstance(v, list) else [v]
    return [INPUTS[INPUTS.index(n)] for n in names]


def talib_vector(name: str, **kw: Any) -> np.ndarray | tuple[np.ndarray, ...]:
    """Run a TA-Lib function over whole arrays; keyword arrays are the inputs it names
    (open/high/low/close/volume), the rest its parameters."""
    arrays = {k: np.asarray(kw.pop(k), dtype=float) for k in INPUTS if k in kw}
    fn = _function(name, kw)
    need = _needed(fn)
    missing = [n for n in need if n not in arrays]
    if missing:
        raise ValueError(f"{name} needs inputs {need}; missing {missing}")
    size = len(arrays[need[0]])
    ok = np.ones(size, dtype=bool)
    for n in need:
        ok &= ~np.isnan(arrays[n])
    out = fn.run({n: arrays[n][ok] for n in need})
    outs = out if isinstance(out, list) else [out]
    full = []
    for o in outs:
        f = np.full(size, np.nan)
        f[ok] = o
        full.append(f)
    return full[0] if len(full) == 1 else tuple(full)


class TalibStream:
    def __init__(self, name: str, extra: int = 200, **params: Any) -> None:
        self.name = name
        self.fn = _function(name, params)
        self.need = _needed(self.fn)
        self.window = int(self.fn.lookback) + 1 + extra
        self.bufs: dict[str, collections.deque[float]] = {
            n: collections.deque(maxlen=self.window) for n in self.need
        }
        self.outputs = len(self.fn.output_names)

    def update(self, **bar: float) -> float | tuple[float, ...]:
        vals = {n: float(bar[n]) for n in self.need}
        if any(np.isnan(v) for v in vals.values()):
            return float("nan") if self.outputs == 1 else (float("nan"),) * self.outputs
        for n, v in vals.items():
            self.bufs[n].append(v)
        out = self.fn.run({n: np.fromiter(b, float, len(b)) for n, b in self.bufs.items()})
        if isinstance(out, list):
            return tuple(float(o[-1]) for o in out)
        return float(out[-1])
