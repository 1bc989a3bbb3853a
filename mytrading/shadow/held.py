"""Live's bars held for a warm-up, read back from the engine's record
(``engine/warmlog.py``).

While a strategy's warm-up waits for the broker's history, its live bars wait with it;
then they go to it at once. A hold parts live from the shadow (which had every bar on
time) when it held two bars or more (decided in one burst, each without the fills of
the decisions before it) or handed its first bar partial (the broker's whole copy did
not come in time: live decided on another bar than the shadow's). A decision one side
made alone on a held bar, or after the hold before the two sides held alike again, is
put to it, as a restart's are (``shadow/outages.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from mytrading.engine.warmlog import Handed
from mytrading.shadow.given import hms

OPEN_NS = 2**62  # a hold never handed, with no later record of its instrument: to the end


def parting(records: Iterable[Handed]) -> dict[str, list[Handed]]:
    """Per strategy, its holds that can part the sides (two bars or more, or a first bar
    handed partial; or one begun and never handed: the engine ended while its bars
    waited, every bar from its first up to the instrument's next record held), earliest
    first."""
    recs = sorted(records, key=lambda r: r.at_ns)
    handed = {(r.strategy, r.exchange, r.symbol, r.tf, r.first_ns) for r in recs
              if not r.begun and r.held}  # fmt: skip
    out: dict[str, list[Handed]] = {}
    for i, r in enumerate(recs):
        key = (r.strategy, r.exchange, r.symbol, r.tf)
        if r.begun:
            if (*key, r.first_ns) in handed:
                continue  # it ended as a hold handed: that line says it
            # held until the instrument's next record (the restarted engine's warm-up)
            after = [x.at_ns for x in recs[i + 1 :] if (x.strategy, x.exchange, x.symbol,
                                                         x.tf) == key]  # fmt: skip
            r = dataclasses.replace(r, last_ns=after[0] if after else OPEN_NS)
        elif not (r.held >= 2 or (r.held and r.first == "partial")):
            continue
        out.setdefault(r.strategy, []).append(r)
    return out


def held_cause(
    holds: Sequence[Handed], key: tuple[str, str], bar_ns: int, since_ns: int, at_ns: int
) -> str:
    """The latest of a strategy's ``holds`` that held the decision's bar (``bar_ns``), or
    began by ``at_ns`` and was handed when or after the sides last held alike
    (``since_ns``: the burst's first decision may be where they did), said ("" if none);
    one of the decision's own instrument (``key``) first."""
    found = [h for h in holds
             if h.holds(bar_ns) or (h.begun and h.first_ns <= at_ns <= h.last_ns)
             or (not h.begun and h.first_ns <= at_ns and h.at_ns >= since_ns)]  # fmt: skip
    if not found:
        return ""
    own = [h for h in found if (h.exchange, h.symbol) == key]
    h = max(own or found, key=lambda h: h.at_ns)
    since = hms(h.first_ns)[:5]
    if h.begun:
        what = "a warm-up" if h.asked else "the broker's copy of the first"
        return (f"live's {h.symbol} {h.tf} bars from {since} held for {what} from "
                f"{hms(h.at_ns)}, never handed: the engine ended first")  # fmt: skip
    if h.held == 1:
        return (f"live's {h.symbol} {h.tf} bar of {since} handed partial at {hms(h.at_ns)} "
                "(a warm-up's: the broker's whole copy did not come in time)")  # fmt: skip
    first = " (the first partial)" if h.first == "partial" else ""
    return (f"live's {h.symbol} {h.tf} bars from {since} held for a warm-up, {h.held} "
            f"handed at once at {hms(h.at_ns)}{first}")  # fmt: skip
