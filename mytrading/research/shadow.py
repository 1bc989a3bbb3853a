"""``shadow()``: live against its own backtest, as frames for a notebook.

    from mytrading.research import shadow
    got = shadow()                                   # the latest recorded day
    got = shadow(start="2026-11-02", end="2026-11-27", strategies=["sma_crossover"])
    got.pairs      # one row per decision: matched, live only or shadow only, and why
    got.bridge     # one row per day, strategy and cause: rupees from shadow to live
    got.summary    # per strategy over the days (``main.py backtest shadow --from``)
    got.followers  # one row per day, strategy and follower account: against its lead

The same run as the command line's (``mytrading/shadow``); docs/backtesting.md "Live
against its shadow" says what it reads and what it does not model yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from mytrading.domain.refdata import IST
from mytrading.research.runs import day as as_day
from mytrading.research.runs import quiet_run
from mytrading.settings import Settings, load_settings
from mytrading.shadow.day import ShadowDay, shadow_day, shadow_days
from mytrading.shadow.summary import summarize


@dataclass
class ShadowFrames:
    days: list[ShadowDay]
    pairs: pd.DataFrame
    bridge: pd.DataFrame
    summary: pd.DataFrame
    followers: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: dict[date, str] = field(default_factory=dict)


def _time(ns: int) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, IST) if ns else None


def frames(days: list[ShadowDay], skipped: dict[date, str] | None = None) -> ShadowFrames:
    pairs: list[dict[str, Any]] = []
    bridge: list[dict[str, Any]] = []
    followers: list[dict[str, Any]] = []
    for d in days:
        for name, st in d.strategies.items():
            for f in st.followers:
                followers.append({"day": d.day, "strategy": name, "account": f.account,
                                  **f.row()})  # fmt: skip
            for p in st.pairs:
                t = p.live or p.shadow
                assert t is not None
                pairs.append({
                    "day": d.day, "strategy": name, "kind": p.kind, "why": p.why,
                    "decided": _time(p.decided_ns), "exchange": t.exchange, "symbol": t.symbol,
                    "action": t.action, "quantity": t.quantity,
                    "live_filled": p.live.filled if p.live else 0,
                    "live_avg": p.live.avg if p.live else None,
                    "shadow_filled": p.shadow.filled if p.shadow else 0,
                    "shadow_avg": p.shadow.avg if p.shadow else None,
                    "slippage": p.slippage() / 100,
                    "charges_diff": ((p.live.charges if p.live else 0)
                                     - (p.shadow.charges if p.shadow else 0)) / 100,
                })  # fmt: skip
            for cause, rs in st.bridge.rupees().items():
                bridge.append({"day": d.day, "strategy": name, "item": cause, "rupees": rs})
    summary = pd.DataFrame.from_dict(
        {n: sm.to_json() for n, sm in summarize(days).items()}, orient="index"
    )
    return ShadowFrames(days, pd.DataFrame(pairs), pd.DataFrame(bridge), summary,
                        pd.DataFrame(followers), skipped or {})  # fmt: skip


@quiet_run
def shadow(
    day: date | str | None = None,
    start: date | str | None = None,
    end: date | str | None = None,
    strategies: list[str] | None = None,
    capital: float | None = None,
    settings: Settings | None = None,
) -> ShadowFrames:
    """One day's shadow (``day``, the latest recorded by default), or every recorded day
    of ``start``..``end``; ``strategies``: those that traded live by default."""
    s = settings or load_settings()
    first, last, one = as_day(start, "start"), as_day(end, "end"), as_day(day, "day")
    if first or last:
        days, skipped = shadow_days(s, first or date.min, last or date.max, strategies,
                                    capital)  # fmt: skip
        return frames(days, skipped)
    return frames([shadow_day(s, one, strategies, capital)])
