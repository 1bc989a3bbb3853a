"""Named streaming indicators a strategy registers with ``add_indicator`` (MyTrading style).

``make("SMA", period=20)`` builds a ``Bound`` indicator: it takes whole bars, feeds the
right inputs to the streaming class and keeps its latest value(s). Our own classes cover
SMA, EMA, RSI, ATR, MACD, BBANDS, VWAP and SUPERTREND; any other name is a TA-Lib
function through the generic adapter (``TALIB`` parameters, e.g. ``timeperiod``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from mytrading.domain.refdata import IST
from mytrading.indicators import stream
from mytrading.indicators.talib_adapter import TalibStream
from mytrading.messaging import wire

NAN = float("nan")
SOURCES = ("open", "high", "low", "close", "volume", "hl2", "hlc3")


def _source(bar: wire.Bar, name: str) -> float:
    if name == "hl2":
        return (bar.high + bar.low) / 2.0
    if name == "hlc3":
        return (bar.high + bar.low + bar.close) / 3.0
    return float(getattr(bar, name))


def _day(bar: wire.Bar) -> int:
    return datetime.fromtimestamp(bar.start_ns / 1e9, IST).date().toordinal()


class Bound:
    """One indicator instance fed with bars; ``values`` holds its outputs by name."""

    def __init__(
        self,
        kind: str,
        outputs: tuple[str, ...],
        step: Callable[[wire.Bar], Any],
        on_close: Callable[[float], float] | None = None,
        core: Ahead | None = None,
    ):
        self.kind = kind
        self.outputs = outputs
        self._step = step
        self._on_close = on_close  # a one-output indicator of the close: fed directly
        # ... whose streaming class can also run over closes known ahead (``AheadFeed``)
        self.core = core
        self.values: dict[str, float] = dict.fromkeys(outputs, NAN)

    def update(self, bar: wire.Bar) -> None:
        if self._on_close is not None:  # the common case, once per bar per indicator
            self.values[self.outputs[0]] = self._on_close(bar.close)
            return
        out = self._step(bar)
        if not isinstance(out, tuple):
            self.values[self.outputs[0]] = float(out)
            return
        for name, v in zip(self.outputs, out, strict=True):
            self.values[name] = float(v)

    def value(self, output: str | None = None) -> float:
        if output is None:
            return self.values[self.outputs[0]]
        try:
            return self.values[output]
        except KeyError:
            raise KeyError(
                f"{self.kind} has outputs {list(self.outputs)}, not {output!r}"
            ) from None


class Ahead(Protocol):
    """A streaming indicator of one input that can also run over a batch of inputs."""

    def ahead(self, x: np.ndarray) -> np.ndarray: ...

    def advance(self, x: np.ndarray) -> None: ...


class AheadFeed:
    """A bound indicator of the close fed from outputs worked out before its bars come: a
    backtest knows a batch of closes ahead (``StrategyContext.ahead``); each bar then sets
    the value the streaming update would have given (the same float: ``vector.sma_from``)
    instead of computing it. A bar whose close is not the one expected (the bars the
    strategy sees differ from the batch) stops it: the streaming state is brought up to
    the bar before, and the bound takes over. ``finish`` brings the state up to the bars
    consumed, whatever happened."""

    __slots__ = ("bound", "closes", "i", "inputs", "live", "name", "outs", "values")

    def __init__(self, bound: Bound, inputs: np.ndarray, closes: list[float]) -> None:
        assert bound.core is not None
        self.bound = bound
        self.inputs = inputs
        self.closes = closes
        self.outs: list[float] = bound.core.ahead(inputs).tolist()
        self.i = 0
        self.name = bound.outputs[0]
        self.values = bound.values
        self.live = True

    def update(self, bar: wire.Bar) -> None:
        i = self.i
        if self.live and i < len(self.closes) and bar.close == self.closes[i]:
            self.values[self.name] = self.outs[i]
            self.i = i + 1
            return
        self.finish()
        self.bound.update(bar)

    def finish(self) -> None:
        """The streaming state after the bars this feed gave (once); the bound's own from
        then on."""
        if self.live:
            self.live = False
            assert self.bound.core is not None
            self.bound.core.advance(self.inputs[: self.i])


def make(kind: str, source: str = "close", **params: Any) -> Bound:
    """Build a named indicator. Unknown parameters are an error, like unknown kinds."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    k = kind.upper()

    def take(*names: str) -> dict[str, Any]:
        extra = set(params) - set(names)
        if extra:
            raise ValueError(f"{k} takes {list(names)}, not {sorted(extra)}")
        return params

    if k in ("SMA", "EMA", "RSI"):
        p = take("period")
        kinds: dict[str, type[stream.SMA | stream.EMA | stream.RSI]] = {
            "SMA": stream.SMA,
            "EMA": stream.EMA,
            "RSI": stream.RSI,
        }
        ind = kinds[k](int(p.get("period", 14 if k == "RSI" else 20)))
        direct = ind.update if source == "close" else None
        core = ind if direct is not None and not isinstance(ind, stream.RSI) else None
        return Bound(k, (k.lower(),), lambda b: ind.update(_source(b, source)), direct, core)
    if k == "ATR":
        p = take("period")
        atr = stream.ATR(int(p.get("period", 14)))
        return Bound(k, ("atr",), lambda b: atr.update(b.high, b.low, b.close))
    if k == "MACD":
        p = take("fast", "slow", "signal")
        m = stream.MACD(int(p.get("fast", 12)), int(p.get("slow", 26)), int(p.get("signal", 9)))
        return Bound(k, ("macd", "signal", "hist"), lambda b: m.update(_source(b, source)))
    if k == "BBANDS":
        p = take("period", "k")
        bb = stream.BBands(int(p.get("period", 20)), float(p.get("k", 2.0)))
        return Bound(k, ("upper", "middle", "lower"), lambda b: bb.update(_source(b, source)))
    if k == "VWAP":
        take()
        vw = stream.VWAP()
        return Bound(k, ("vwap",), lambda b: vw.update(b.high, b.low, b.close, b.volume, _day(b)))
    if k == "SUPERTREND":
        p = take("period", "multiplier")
        st = stream.Supertrend(int(p.get("period", 10)), float(p.get("multiplier", 3.0)))
        return Bound(k, ("line", "direction"), lambda b: st.update(b.high, b.low, b.close))
    ta = TalibStream(k, **params)
    names = tuple(ta.fn.output_names)

    def step(b: wire.Bar) -> Any:
        return ta.update(
            open=b.open, high=b.high, low=b.low, close=_source(b, source), volume=b.volume
        )

    return Bound(k, names, step)
