"""Walk-forward windows: in-sample, out-of-sample and step lengths in trading days,
1-minute bars or calendar months, rolling or anchored, cut on the exchange calendar.

A length is ``126`` or ``"126d"`` (trading days), ``"6M"`` (calendar months) or
``"47250b"`` (1-minute bars: 375 a full session, rounded up to whole trading days). The
windows are ``[cursor, cursor + in_sample)`` in sample (``[first day, cursor +
in_sample)`` when anchored) and ``[cursor + in_sample, cursor + in_sample +
out_of_sample)`` out of sample, the cursor moving by ``step`` (the out-of-sample length
by default) until no out-of-sample day is left; the last one may be shorter.

Out-of-sample windows never overlap: the stitched result would count the days they share
twice (their trades and their P&L). A step shorter than the out-of-sample window is
refused with the reason. Where lengths in months meet lengths in days, a month's number
of trading days varies and a window could start a day or two before the last one ended:
it starts the day after (said in its ``oos_days``). A longer step leaves days between
windows that none trades (allowed: the stitched curve is flat there).
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from mytrading.backtest.session import InputError

SESSION_BARS = 375  # 1-minute bars in a full NSE session (09:15-15:30)
_LENGTH = re.compile(r"^\s*(\d+)\s*([dMb]?)\s*$")


@dataclass(frozen=True)
class Length:
    n: int
    unit: str  # d trading days, M months

    def __str__(self) -> str:
        return f"{self.n} trading day(s)" if self.unit == "d" else f"{self.n} month(s)"


def length(value: int | str, what: str) -> Length:
    if isinstance(value, bool):
        raise InputError(f"{what}: {value!r} is not a length")
    if isinstance(value, int):
        value = f"{value}d"
    m = _LENGTH.match(str(value))
    if not m or int(m.group(1)) < 1:
        raise InputError(
            f"{what} {value!r}: a positive length in trading days (126 or 126d), "
            "months (6M) or 1-minute bars (47250b)"
        )
    n, unit = int(m.group(1)), m.group(2) or "d"
    if unit == "b":
        return Length(math.ceil(n / SESSION_BARS), "d")
    return Length(n, unit)


@dataclass(frozen=True)
class Window:
    n: int
    is_start: date
    is_end: date
    oos_start: date
    oos_end: date
    is_days: int
    oos_days: int


def _advance(days: list[date], d: date, by: Length) -> date:
    """The day ``by`` after ``d``: a trading day of ``days``, or past the last one."""
    if by.unit == "M":
        return (pd.Timestamp(d) + pd.DateOffset(months=by.n)).date()
    i = bisect.bisect_left(days, d) + by.n
    return days[i] if i < len(days) else days[-1] + timedelta(days=1)


def _between(days: list[date], a: date, b: date) -> int:
    """Trading days of ``days`` in ``[a, b)``."""
    return bisect.bisect_left(days, b) - bisect.bisect_left(days, a)


def _shorter(
    step: Length, oos: Length, days: list[date], cursor: date, nxt: date, a: date, b: date
) -> bool:
    """The step is shorter than the out-of-sample window: by their lengths where both are
    in one unit (a month's step and a month's window are equal whatever the months' trading
    days: 1M and 1M were refused when the month stepped over had fewer, bench/walkforward.py
    at 7a5b36a), by the trading days they span where the units differ."""
    if step.unit == oos.unit:
        return step.n < oos.n
    return _between(days, cursor, nxt) < _between(days, a, b)


def cut(
    days: list[date],
    in_sample: Length,
    out_of_sample: Length,
    step: Length | None = None,
    anchored: bool = False,
) -> list[Window]:
    """The windows over ``days`` (the trading days of the whole range, in order)."""
    if not days:
        raise InputError("no trading day in the range")
    step = step or out_of_sample
    out: list[Window] = []
    cursor = days[0]
    while True:
        is_from = days[0] if anchored else cursor
        oos_from = _advance(days, cursor, in_sample)
        oos_to = _advance(days, oos_from, out_of_sample)
        ins = [d for d in days if is_from <= d < oos_from]
        oos = [d for d in days if oos_from <= d < oos_to]
        if not oos:
            break
        if not ins:
            raise InputError(f"in-sample window from {is_from} has no trading day")
        if out:  # the calendar's drift between months and days: start after the last
            oos = [d for d in oos if d > out[-1].oos_end]
        nxt = _advance(days, cursor, step)
        whole = oos_to <= days[-1]  # not the last window, cut short by the range's end
        if whole and _shorter(step, out_of_sample, days, cursor, nxt, oos_from, oos_to):
            raise InputError(
                f"step {step} is shorter than the out-of-sample window {out_of_sample}: the "
                "out-of-sample windows would overlap and the stitched result count their "
                "shared days twice (their trades and P&L); use a step of at least the "
                "out-of-sample length (the default)"
            )
        if oos:
            out.append(Window(len(out) + 1, ins[0], ins[-1], oos[0], oos[-1], len(ins), len(oos)))
        if nxt <= cursor:
            break
        cursor = nxt
    if not out:
        total = f"{days[0]}..{days[-1]} ({len(days)} trading days)"
        raise InputError(
            f"{total} leaves no out-of-sample window after an in-sample window of "
            f"{in_sample}: widen the range or shorten the windows"
        )
    return out
