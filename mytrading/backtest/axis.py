"""Charts on trading time: a bar's place on the x axis is its position in the sequence of
the run's trading minutes, not its calendar time.

On a calendar axis a night is 17.75 flat hours beside 6.25 traded ones, and a weekend or
a holiday a longer flat line; on this one the last bar of a day and the first of the next
are neighbours, as in backtesting.py and TradingView. Each day's start carries a grid
line, dates label some of them (at most ``LABELS``), and a point's hover text is its real
time. Every chart of a report, its PNG twin and a notebook's plot use one axis, so their
points line up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mytrading.domain.refdata import IST

LABELS = 12  # date labels on an axis at most; every day's boundary gets its grid line


class TradingAxis:
    def __init__(self, times: pd.DatetimeIndex | Any) -> None:
        idx = pd.DatetimeIndex(times)
        if len(idx) and idx.tz is None:
            raise ValueError("trading-time axis: times must be timezone-aware")
        self.times = idx.tz_convert(IST).unique().sort_values() if len(idx) else idx
        self._ns = self.times.as_unit("ns").asi8 if len(idx) else np.zeros(0, dtype=np.int64)

    @classmethod
    def of(cls, *indexes: Any) -> TradingAxis:
        """The axis of the first of ``indexes`` that has any time (a run's equity curve,
        else its prices)."""
        for i in indexes:
            if len(i):
                return cls(pd.DatetimeIndex(i))
        return cls(pd.DatetimeIndex([], tz=IST))

    def x(self, times: Any, starts: bool = False) -> np.ndarray:
        """Each time's position: its own if it is on the axis, else that of the first axis
        time after it. A run's axis is its equity curve's samples, taken as each bar
        closes; a bar (and a fill at its open) is stamped with its start: ``starts=True``
        places it at the first sample after that, the one its bar closes at."""
        t = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns").asi8
        pos = np.searchsorted(self._ns, t, side="right" if starts else "left")
        return np.clip(pos, 0, max(0, len(self._ns) - 1))

    def labels(self, times: Any) -> list[str]:
        """The real time of each point, for hover text."""
        return [f"{t:%a %d %b %Y %H:%M}" for t in pd.DatetimeIndex(times).tz_convert(IST)]

    def day_starts(self) -> tuple[np.ndarray, list[pd.Timestamp]]:
        """(position, time) of the first point of each IST day on the axis."""
        if not len(self.times):
            return np.zeros(0, dtype=int), []
        days = self.times.normalize()
        first = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
        return first, [self.times[i] for i in first]

    def ticks(self) -> tuple[list[int], list[str]]:
        """Tick positions at every day's start; a date on at most ``LABELS`` of them
        (with the time too when the axis spans a day or two), the rest unlabelled."""
        pos, starts = self.day_starts()
        if not len(pos):
            return [], []
        every = max(1, -(-len(pos) // LABELS))
        fmt = "%d %b %H:%M" if len(pos) <= 2 else ("%d %b" if len(pos) <= 120 else "%d %b %Y")
        text = [f"{t:{fmt}}" if i % every == 0 else "" for i, t in enumerate(starts)]
        return [int(p) for p in pos], text

    def apply(self, fig: Any) -> None:
        """Every x axis of a plotly figure on this axis: ticks at the days' starts, their
        grid lines the day boundaries."""
        vals, text = self.ticks()
        fig.update_xaxes(
            tickmode="array",
            tickvals=vals,
            ticktext=text,
            showgrid=True,
            gridcolor="#d9d9d9",
            zeroline=False,
            rangeslider_visible=False,
        )

    def apply_mpl(self, ax: Any) -> None:
        """The same on a matplotlib axes: a line at each day's start, dates on some."""
        vals, text = self.ticks()
        ax.set_xticks(vals, minor=True)
        shown = [(v, t) for v, t in zip(vals, text, strict=True) if t]
        ax.set_xticks([v for v, _ in shown], [t for _, t in shown])
        ax.grid(which="minor", axis="x", color="#d9d9d9", linewidth=0.6)
        ax.grid(which="major", axis="x", color="#bdbdbd", linewidth=0.8)
        if len(self.times):
            ax.set_xlim(-0.5, len(self.times) - 0.5)
