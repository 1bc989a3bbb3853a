"""Streaming indicators: O(1) work per new bar, the same numbers as ``vector.py``.

Each class takes one bar per ``update`` and returns the current value (NaN while warming
up, or for a NaN bar, which leaves the state untouched), following exactly the seeding
rules documented in ``vector.py``. State is a few floats and, for windowed indicators, a
fixed ring buffer: nothing grows with the length of the session.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

NAN = float("nan")


class SMA:
    def __init__(self, n: int) -> None:
        self.n = n
        self.buf = [0.0] * n
        self.total = 0.0
        self.count = 0
        self.pos = 0

    def update(self, v: float) -> float:
        if v != v:  # NaN (math.isnan costs a call; this runs for every bar)
            return NAN
        n, pos, buf = self.n, self.pos, self.buf
        if self.count == n:
            self.total -= buf[pos]
        else:
            self.count += 1
        buf[pos] = v
        self.total += v
        self.pos = pos + 1 if pos + 1 < n else 0
        return self.total / n if self.count == n else NAN

    def ahead(self, x: np.ndarray) -> np.ndarray:
        """What ``update`` would return for each of ``x``, the state left as it is."""
        import numpy as np

        from mytrading.indicators import vector  # numba: only where arrays are advanced

        return vector.sma_from(x, self.n, np.array(self.buf), self.total, self.count, self.pos)[0]

    def advance(self, x: np.ndarray) -> None:
        """``update`` for each of ``x`` (in compiled code)."""
        import numpy as np

        from mytrading.indicators import vector

        buf = np.array(self.buf)
        _, self.total, self.count, self.pos = vector.sma_from(
            x, self.n, buf, self.total, self.count, self.pos
        )
        self.buf = buf.tolist()


class EMA:
    def __init__(self, n: int) -> None:
        self.n = n
        self.k = 2.0 / (n + 1)
        self.seed = 0.0
        self.count = 0
        self.value = NAN

    def update(self, v: float) -> float:
        if math.isnan(v):
            return NAN
        if self.count < self.n:
            self.seed += v
            self.count += 1
            if self.count < self.n:
                return NAN
            self.value = self.seed / self.n
        else:
            self.value = (v - self.value) * self.k + self.value
        return self.value

    def ahead(self, x: np.ndarray) -> np.ndarray:
        """What ``update`` would return for each of ``x``, the state left as it is."""
        from mytrading.indicators import vector

        return vector.ema_from(x, self.n, self.k, self.seed, self.count, self.value)[0]

    def advance(self, x: np.ndarray) -> None:
        """``update`` for each of ``x`` (in compiled code)."""
        from mytrading.indicators import vector

        _, self.seed, self.count, self.value = vector.ema_from(
            x, self.n, self.k, self.seed, self.count, self.value
        )


class RSI:
    def __init__(self, n: int) -> None:
        self.n = n
        self.prev = NAN
        self.gain = 0.0
        self.loss = 0.0
        self.count = 0

    def update(self, v: float) -> float:
        if math.isnan(v):
            return NAN
        if math.isnan(self.prev):
            self.prev = v
            return NAN
        d = v - self.prev
        self.prev = v
        g = d if d > 0 else 0.0
        lo = -d if d < 0 else 0.0
        n = self.n
        if self.count < n:
            self.gain += g
            self.loss += lo
            self.count += 1
            if self.count < n:
                return NAN
            self.gain /= n
            self.loss /= n
        else:
            self.gain = (self.gain * (n - 1) + g) / n
            self.loss = (self.loss * (n - 1) + lo) / n
        tot = self.gain + self.loss
        return 100.0 * self.gain / tot if tot != 0 else 0.0


class ATR:
    """Wilder ATR; ``pine=True`` uses Pine's seeding (see vector.atr)."""

    def __init__(self, n: int, pine: bool = False) -> None:
        self.n = n
        self.pine = pine
        self.k1, self.k2 = (n - 1) / n, 1.0 / n
        self.prev_close = NAN
        self.total = 0.0
        self.count = 0
        self.value = NAN

    def update(self, high: float, low: float, close: float) -> float:
        if math.isnan(high) or math.isnan(low) or math.isnan(close):
            return NAN
        if math.isnan(self.prev_close):
            self.prev_close = close
            if not self.pine:
                return NAN
            tr = high - low
        else:
            pc = self.prev_close
            tr = max(high - low, abs(high - pc), abs(low - pc))
            self.prev_close = close
        n = self.n
        if self.count < n:
            self.total += tr
            self.count += 1
            if self.count < n:
                return NAN
            self.value = self.total / n
        elif self.pine:
            self.value = self.value * self.k1 + tr * self.k2
        else:
            self.value = (self.value * (n - 1) + tr) / n
        return self.value


class BBands:
    """(upper, middle, lower). The deviation is recomputed over the fixed ring each bar:
    O(n) for a constant n, and free of the cancellation a running sum of squares
    suffers at index levels (24,500^2 ~ 6e8)."""

    def __init__(self, n: int, k: float) -> None:
        self.n = n
        self.k = k
        self.buf = [0.0] * n
        self.count = 0
        self.pos = 0

    def update(self, v: float) -> tuple[float, float, float]:
        if math.isnan(v):
            return NAN, NAN, NAN
        self.buf[self.pos] = v
        self.pos = (self.pos + 1) % self.n
        if self.count < self.n:
            self.count += 1
            if self.count < self.n:
                return NAN, NAN, NAN
        buf, n = self.buf, self.n
        m = sum(buf) / n  # in storage order, as vector.bbands sums: the same bits
        ss = 0.0
        for x in buf:  # a plain loop: a generator expression costs a microsecond more
            d = x - m
            ss += d * d
        sd = math.sqrt(ss / n)
        return m + self.k * sd, m, m - self.k * sd


class Supertrend:
    """(line, direction) per Pine v6; direction -1 bullish, +1 bearish, 0 warming up."""

    def __init__(self, n: int, mult: float) -> None:
        self.atr = ATR(n, pine=True)
        self.mult = mult
        self.fu = NAN
        self.fl = NAN
        self.prev_close = NAN
        self.prev_st_upper = True
        self.started = False

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        a = self.atr.update(high, low, close)
        if math.isnan(a):
            if not math.isnan(close):
                self.prev_close = close
            return NAN, 0.0
        hl2 = (high + low) / 2.0
        ub = hl2 + self.mult * a
        lb = hl2 - self.mult * a
        if not self.started:
            self.fu, self.fl = ub, lb
            d = 1.0
        else:
            pc = self.prev_close
            self.fl = lb if (lb > self.fl or pc < self.fl) else self.fl
            self.fu = ub if (ub < self.fu or pc > self.fu) else self.fu
            if self.prev_st_upper:
                d = -1.0 if close > self.fu else 1.0
            else:
                d = 1.0 if close < self.fl else -1.0
        self.started = True
        self.prev_st_upper = d == 1.0
        self.prev_close = close
        return (self.fl if d == -1.0 else self.fu), d


class MACD:
    """(macd, signal, histogram) with TA-Lib's seeding (see vector.macd)."""

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        if not 0 < fast < slow or signal < 1:
            raise ValueError(
                f"MACD needs 0 < fast < slow and signal >= 1, got {fast}/{slow}/{signal}"
            )
        self.fast, self.slow, self.signal = fast, slow, signal
        self.kf, self.ks, self.kg = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
        self.fs = self.ss = self.gs = 0.0
        self.f = self.s = self.g = NAN
        self.count = 0

    def update(self, v: float) -> tuple[float, float, float]:
        if math.isnan(v):
            return NAN, NAN, NAN
        self.count += 1
        if self.count <= self.slow:
            self.ss += v
            if self.count > self.slow - self.fast:
                self.fs += v
            if self.count < self.slow:
                return NAN, NAN, NAN
            self.f, self.s = self.fs / self.fast, self.ss / self.slow
        else:
            self.f = (v - self.f) * self.kf + self.f
            self.s = (v - self.s) * self.ks + self.s
        m = self.f - self.s
        k = self.count - self.slow
        if k < self.signal:
            self.gs += m
            if k < self.signal - 1:
                return NAN, NAN, NAN
            self.g = self.gs / self.signal
        else:
            self.g = (m - self.g) * self.kg + self.g
        return m, self.g, m - self.g


class VWAP:
    """Session VWAP of (H+L+C)/3, reset when the session day changes (see vector.vwap)."""

    def __init__(self) -> None:
        self.pv = 0.0
        self.vol = 0.0
        self.day = -1

    def update(self, high: float, low: float, close: float, volume: float, day: int) -> float:
        if math.isnan(high) or math.isnan(low) or math.isnan(close) or math.isnan(volume):
            return NAN
        if day != self.day:
            self.day, self.pv, self.vol = day, 0.0, 0.0
        self.pv += (high + low + close) / 3.0 * volume
        self.vol += volume
        return self.pv / self.vol if self.vol > 0 else NAN
