"""The option contracts the simulated exchange lists for one index, as NSE and BSE list
them: every expiry the exchange has open (``Calendar.listed_expiries``: weeklies,
monthlies, quarterlies), and for each a strike ladder at the exchange's interval
covering the index's plausible range to that expiry. When the index moves so far that
its range passes a ladder's end, the exchange lists further strikes that day (it never withdraws a
listed one); a new day lists the next expiry once one has expired.

The range: ``+-`` ``SIGMAS`` standard deviations of the index to the expiry at the
surface's long-run volatility, at least ``MIN_BAND`` and at most ``MAX_BAND`` of the
index; expiries more than ``WIDE_AFTER_DAYS`` away list every second strike (the far
months' wider interval).
"""

from __future__ import annotations

import math
from datetime import date

from mytrading.domain.refdata import Instrument, RefData, Underlying

SIGMAS = 3.5
MIN_BAND, MAX_BAND = 0.05, 0.20
WIDE_AFTER_DAYS = 95


class Ladder:
    """One expiry's strikes: ``lo..hi`` every ``step``."""

    def __init__(self, expiry: date, step: float, lo: float, hi: float) -> None:
        self.expiry = expiry
        self.step = step
        self.lo = lo
        self.hi = hi

    def strikes(self) -> list[float]:
        n = round((self.hi - self.lo) / self.step)
        return [self.lo + k * self.step for k in range(n + 1)]


class OptionListing:
    """Every option contract listed for ``u``; ``update`` returns the ones it added."""

    def __init__(self, refdata: RefData, u: Underlying, vol: float) -> None:
        self.refdata = refdata
        self.u = u
        self.vol = vol  # the long-run volatility the range is worked out from
        self.ladders: dict[date, Ladder] = {}
        self.day: date | None = None
        # the index's levels between which no ladder needs a strike more today: a step
        # inside them (nearly every one) lists nothing and costs two comparisons
        self.calm = (0.0, -1.0)

    def _range(self, expiry: date, spot: float) -> tuple[float, float, float]:
        """(lo, hi, step) of a fresh ladder around ``spot``."""
        assert self.day is not None
        days = max((expiry - self.day).days, 1)
        step = self.u.strike_step * (2 if days > WIDE_AFTER_DAYS else 1)
        band = min(max(SIGMAS * self.vol * math.sqrt(days / 365.0), MIN_BAND), MAX_BAND)
        lo = max(math.floor(spot * (1 - band) / step) * step, step)
        hi = math.ceil(spot * (1 + band) / step) * step
        return lo, hi, step

    def update(self, day: date, spot: float) -> list[Instrument]:
        """List what ``day`` and the index at ``spot`` call for; the new contracts."""
        if day == self.day and self.calm[0] <= spot <= self.calm[1]:
            return []
        new: list[tuple[date, list[float]]] = []
        if day != self.day:
            self.day = day
            for expiry in self.refdata.calendar.listed_expiries(self.u, day):
                if expiry not in self.ladders:
                    lo, hi, step = self._range(expiry, spot)
                    self.ladders[expiry] = ladder = Ladder(expiry, step, lo, hi)
                    new.append((expiry, ladder.strikes()))
        for expiry, ladder in self.ladders.items():
            if expiry < day:
                continue
            lo, hi, _ = self._range(expiry, spot)
            if lo >= ladder.lo and hi <= ladder.hi:  # the usual case: nothing to add
                continue
            added = []
            while ladder.lo > lo and ladder.lo - ladder.step > 0:
                ladder.lo -= ladder.step
                added.append(ladder.lo)
            while ladder.hi < hi:
                ladder.hi += ladder.step
                added.append(ladder.hi)
            if added:
                new.append((expiry, added))
        self.calm = self._calm(day)
        out = []
        for expiry, strikes in new:
            for k in strikes:
                for right in ("CE", "PE"):
                    out.append(self.refdata.option(self.u, expiry, k, right))
        return out

    def _calm(self, day: date) -> tuple[float, float]:
        """The index levels whose fresh range (``_range``, rounded out to strikes) stays
        inside every live ladder today."""
        lo, hi = 0.0, float("inf")
        for expiry, ladder in self.ladders.items():
            if expiry < day:
                continue
            days = max((expiry - day).days, 1)
            band = min(max(SIGMAS * self.vol * math.sqrt(days / 365.0), MIN_BAND), MAX_BAND)
            lo = max(lo, (ladder.lo + ladder.step) / (1 - band))
            hi = min(hi, (ladder.hi - ladder.step) / (1 + band))
        return lo, hi

    def expired(self, day: date) -> list[date]:
        """Expiries before ``day``, dropped from the listing (their contracts settle)."""
        gone = [e for e in self.ladders if e < day]
        for e in gone:
            del self.ladders[e]
        return gone
