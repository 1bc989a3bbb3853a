"""Bias checks an author points at a strategy: lookahead and warm-up.

**Lookahead** (``check_lookahead``): the strategy's decisions (the orders it sends: time,
instrument, side, quantity, type, prices) over a window, then the same run on data cut
just before each of its decisions (the bars, the warm-up history and the backtest's batches
of closes all end there), compared with the full run up to the cut. Nothing after a
decision may change it; the first decision that differs is named. The full run is made
twice first: a strategy that decides differently on the same data (a wall clock, an
unseeded random) is named as not reproducible, since no cut could be judged then.
What a strategy reads outside the backtest (a file of its own, a web service) the cut
cannot reach: it judges the data the backtest hands the strategy.

**Warm-up** (``check_warmup``): the strategy with the warm-up it declares and again with
``extra`` more bars on every subscription; each indicator's values over the first day of
the window are compared. An indicator whose values move (an EMA, an RSI, an ATR warm up
for several times their period) is named with the size of the move, and one still NaN
after its warm-up is named too.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from mytrading.backtest.data import Batch
from mytrading.backtest.loop import Backtest
from mytrading.backtest.session import InputError, Prepared
from mytrading.domain.refdata import IST

NS = 1_000_000_000
Decision = tuple[
    Any, ...
]  # (time ns, strategy, exchange, symbol, action, qty, type, price, trigger)


class CutSource:
    """The run's data with every bar that starts at or after ``cut_ns`` removed."""

    def __init__(self, source: Any, cut_ns: int) -> None:
        self.source = source
        self.cut_ns = cut_ns
        self.name = getattr(source, "name", str(source))

    def days(self, exchange: str, symbol: str, start: date, end: date) -> list[date]:
        last = datetime.fromtimestamp((self.cut_ns - 1) / NS, IST).date()
        return [d for d in self.source.days(exchange, symbol, start, end) if d <= last]

    def batches(self, exchange: str, symbol: str, start: date, end: date) -> Iterator[Batch]:
        for b in self.source.batches(exchange, symbol, start, end):
            keep = b.start_ns < self.cut_ns
            if keep.all():
                yield b
                continue
            n = int(np.argmin(keep))  # the first bar at or after the cut
            if n:
                yield Batch(*(getattr(b, f)[:n] for f in Batch.__dataclass_fields__))
            return


def _run(p: Prepared, source: Any, end: date | None = None) -> Backtest:
    spec = p.spec if end is None else _with_end(p, end)
    bt = Backtest(spec, p.refdata, p.risk, source)
    bt.run()
    return bt


def _with_end(p: Prepared, end: date) -> Any:
    from dataclasses import replace

    return replace(p.spec, end=end)


def decisions(bt: Backtest) -> list[Decision]:
    """Every order the run's strategies sent, amends and cancels included, in order."""
    out = []
    for o in bt.results.orders.values():
        out.append(
            (
                o["time"], o["strategy"], o["exchange"], o["symbol"], o["action"],
                o["quantity"], o.get("op", ""), o.get("pricetype", ""),
                round(float(o.get("price", 0.0) or 0.0), 4),
                round(float(o.get("trigger", 0.0) or 0.0), 4),
            )
        )  # fmt: skip
    return sorted(out, key=lambda d: (d[0], d[1:]))


def describe(d: Decision | None) -> str:
    if d is None:
        return "nothing"
    t = datetime.fromtimestamp(d[0] / NS, IST)
    price = f" @ {d[8]}" if d[8] else ""
    trig = f" trigger {d[9]}" if d[9] else ""
    return f"{t:%Y-%m-%d %H:%M} {d[1]}: {d[6] or 'order'} {d[4]} {d[5]} {d[3]} {d[7]}{price}{trig}"


@dataclass
class Lookahead:
    decisions: int
    cuts: list[int]  # the decision times cut at (ns)
    reproducible: bool
    first_difference: tuple[int, Decision | None, Decision | None] | None  # (cut, full, cut run)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.reproducible and self.first_difference is None

    def summary(self) -> str:
        if not self.reproducible:
            _, one, other = self.first_difference or (0, None, None)
            return (
                "NOT REPRODUCIBLE: two runs on the same data decided differently; the first "
                f"difference: {describe(one)} against {describe(other)}"
            )
        if self.first_difference is None:
            return (
                f"no lookahead found: {len(self.cuts)} runs cut at a decision (of "
                f"{self.decisions}) decided exactly as the full run up to the cut"
            )
        cut, full, part = self.first_difference
        at = datetime.fromtimestamp(cut / NS, IST)
        return (
            f"LOOKAHEAD: cut at {at:%Y-%m-%d %H:%M}, the full run decided "
            f"{describe(full)}, the run on data up to then decided {describe(part)}: that "
            "decision used data from after it"
        )


def _first_difference(
    a: list[Decision], b: list[Decision]
) -> tuple[Decision | None, Decision | None] | None:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return x, y
    if len(a) != len(b):
        return (a[len(b)] if len(a) > len(b) else None, b[len(a)] if len(b) > len(a) else None)
    return None


def cut_times(times: list[int], max_cuts: int) -> list[int]:
    """At most ``max_cuts`` decision times, spread over the run (the first and the last
    always); every one when ``max_cuts`` is 0."""
    unique = sorted(set(times))
    if max_cuts <= 0 or len(unique) <= max_cuts:
        return unique
    idx = np.unique(np.linspace(0, len(unique) - 1, max_cuts).round().astype(int))
    return [unique[i] for i in idx]


def check_lookahead(p: Prepared, max_cuts: int = 20) -> Lookahead:
    """The full run against runs cut at (up to ``max_cuts`` of) its decisions."""
    full = decisions(_run(p, p.source))
    again = decisions(_run(p, p.source))
    diff = _first_difference(full, again)
    if diff is not None:
        return Lookahead(len(full), [], False, (0, *diff))
    if not full:
        raise InputError(
            "the strategy sent no order over the window: nothing to check (widen the window "
            "or change the parameters)"
        )
    cuts = cut_times([d[0] for d in full], max_cuts)
    for t in cuts:
        day = datetime.fromtimestamp(t / NS, IST).date()
        part = decisions(_run(p, CutSource(p.source, t), end=day))
        mine = [d for d in full if d[0] <= t]
        theirs = [d for d in part if d[0] <= t]
        diff = _first_difference(mine, theirs)
        if diff is not None:
            return Lookahead(len(full), cuts, True, (t, *diff))
    return Lookahead(len(full), cuts, True, None)


# --------------------------------------------------------------------------- warm-up


@dataclass
class IndicatorDrift:
    strategy: str
    indicator: str
    output: str
    max_abs: float
    max_rel: float
    first_moved: int | None  # ns of the first bar whose value moved
    nan_after_warmup: bool


@dataclass
class WarmupCheck:
    warmups: dict[tuple[str, str, str], int]  # declared, by subscription
    extra: int
    bars_compared: int
    drifts: list[IndicatorDrift]
    tolerance: float

    @property
    def moving(self) -> list[IndicatorDrift]:
        return [d for d in self.drifts if d.nan_after_warmup or d.max_rel > self.tolerance]

    def summary(self) -> str:
        if not self.drifts:
            return "the strategy registers no indicator (add_indicator): nothing to compare"
        if not self.moving:
            return (
                f"every indicator settled: {self.bars_compared} bars compared with "
                f"{self.extra} more bars of warm-up, no value moved beyond "
                f"{self.tolerance:g} (relative)"
            )
        d = self.moving[0]
        if d.nan_after_warmup:
            return f"{d.strategy}.{d.indicator} is still NaN after its warm-up: it needs more bars"
        at = datetime.fromtimestamp((d.first_moved or 0) / NS, IST)
        return (
            f"{d.strategy}.{d.indicator}[{d.output}] still moves with more warm-up: up to "
            f"{d.max_rel:.4g} relative ({d.max_abs:.6g}) over the first day, first at "
            f"{at:%Y-%m-%d %H:%M}; give its subscription a longer warmup="
        )


def _recording(cls: type, extra: int, seen: list[tuple[int, str, dict[str, float]]]) -> type:
    """``cls`` with ``extra`` more bars of warm-up on every subscription, recording its
    indicators after each of its bars once warmed up."""

    class Recording(cls):  # a subclass of the class given, made at run time
        def subscribe_bars(
            self, exchange: str, symbol: str, tf: str = "1m", warmup: int = 0
        ) -> None:
            super().subscribe_bars(exchange, symbol, tf, warmup + extra)

        def on_bar(self, bar: Any) -> None:
            super().on_bar(bar)
            if self.warming_up:
                return
            values = {}
            for label, (_key, ind) in self.context.indicators.items():
                for out in ind.outputs:
                    values[f"{label}:{out}"] = float(self.get_indicator_value(label, out))
            seen.append((bar.start_ns, self.name, values))

    Recording.__name__ = cls.__name__
    Recording.__qualname__ = cls.__qualname__
    return Recording


def check_warmup(p: Prepared, extra: int | None = None, tolerance: float = 1e-4) -> WarmupCheck:
    """Each indicator's values over the first day of the window, with the declared
    warm-up and with ``extra`` more bars (default: three times the longest declared, at
    least 300). A value moving by more than ``tolerance`` (relative: 1e-4 is 2.3 points
    on a 23,000 index) is named."""
    from mytrading.research.warmup import declared_warmups

    declared = declared_warmups(p, {})
    if extra is None:
        extra = max(300, 3 * max(declared.values(), default=0))
    runs = []
    for more in (0, extra):
        seen: list[tuple[int, str, dict[str, float]]] = []
        strategies = [(_recording(cls, more, seen), params) for cls, params in p.spec.strategies]
        from dataclasses import replace

        first_day = p.spec.start
        spec = replace(p.spec, strategies=strategies, end=first_day)
        Backtest(spec, p.refdata, p.risk, p.source).run()
        runs.append(seen)
    base = {(t, s): v for t, s, v in runs[0]}
    longer = {(t, s): v for t, s, v in runs[1]}
    keys = sorted(base.keys() & longer.keys())
    drifts: dict[tuple[str, str], IndicatorDrift] = {}
    for k in keys:
        for name, a in base[k].items():
            b = longer[k].get(name, math.nan)
            label, _, output = name.partition(":")
            d = drifts.setdefault(
                (k[1], name), IndicatorDrift(k[1], label, output, 0.0, 0.0, None, False)
            )
            if math.isnan(a):
                if not math.isnan(b) or k == keys[0]:
                    d.nan_after_warmup = True
                continue
            if math.isnan(b):
                continue
            diff = abs(a - b)
            rel = diff / max(abs(b), 1e-12)
            if rel > tolerance and d.first_moved is None:
                d.first_moved = k[0]
            d.max_abs = max(d.max_abs, diff)
            d.max_rel = max(d.max_rel, rel)
    ranked = sorted(drifts.values(), key=lambda d: (-d.nan_after_warmup, -d.max_rel))
    return WarmupCheck(declared, extra, len(keys), ranked, tolerance)
