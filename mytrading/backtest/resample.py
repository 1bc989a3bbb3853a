"""Longer bars from one-minute bars, aligned as the live engine aligns them (``domain/bars.py``:
to the session open, the last bar of a session ending at the close, ``D`` one per session).

A longer bar is emitted when the one-minute bar that ends it has been added, so a strategy
gets it at the same market instant as live; a bucket cut short by a hole in the data is
emitted when the first bar of a later bucket arrives (or at ``flush``).
"""

from __future__ import annotations

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import Calendar
from mytrading.messaging import wire

MINUTE_NS = 60_000_000_000


class Resampler:
    def __init__(self, calendar: Calendar, tf: str) -> None:
        self.tf = tf
        self.builder = BarBuilder(calendar, tf)
        self.open: dict[tuple[str, str], list] = {}  # [start, end, o, h, l, c, v]

    def add(self, bar: wire.Bar) -> list[wire.Bar]:
        key = (bar.exchange, bar.symbol)
        out = []
        cur = self.open.get(key)
        if cur is not None and bar.start_ns >= cur[1]:
            out.append(self._emit(key, cur))
            cur = None
        if cur is None:
            start, end = self.builder.span(bar.exchange, bar.start_ns)
            cur = self.open[key] = [start, end, bar.open, bar.high, bar.low, bar.close, 0]
        else:
            cur[3] = max(cur[3], bar.high)
            cur[4] = min(cur[4], bar.low)
            cur[5] = bar.close
        cur[6] += bar.volume
        if bar.start_ns + MINUTE_NS >= cur[1]:
            out.append(self._emit(key, cur))
            del self.open[key]
        return out

    def flush(self) -> list[wire.Bar]:
        out = [self._emit(k, c) for k, c in self.open.items()]
        self.open.clear()
        return out

    def _emit(self, key: tuple[str, str], c: list) -> wire.Bar:
        return wire.Bar(
            exchange=key[0],
            symbol=key[1],
            tf=self.tf,
            start_ns=c[0],
            open=c[2],
            high=c[3],
            low=c[4],
            close=c[5],
            volume=c[6],
        )
