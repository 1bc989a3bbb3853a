"""Weeks of shadows summed up per strategy: how often live did what its backtest did, the
slippage of each matched trade (its spread, by hour of the day and by instrument) and the
causes of the difference ranked by rupees. This is what tells an author to make an entry
a limit order, or that a backtest was never tradeable."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mytrading.domain.refdata import IST
from mytrading.shadow.day import ShadowDay
from mytrading.shadow.pairing import CAUSES, UNEXPLAINED


@dataclass
class StrategySummary:
    name: str
    days: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {"matched": 0, "live_only": 0, "shadow_only": 0}
    )
    slippage: list[float] = field(default_factory=list)  # rupees, each matched trade
    hours: dict[str, list[float]] = field(default_factory=dict)  # "09".."15" -> slippages
    instruments: dict[str, float] = field(default_factory=dict)  # symbol -> slippage
    causes: dict[str, float] = field(default_factory=dict)  # rupees over the days
    shadow_net: float = 0.0
    live_net: float = 0.0

    @property
    def matched_share(self) -> float:
        n = sum(self.counts.values())
        return self.counts["matched"] / n if n else 0.0

    def to_json(self) -> dict[str, Any]:
        sl = self.slippage
        by_hour = {h: round(statistics.fmean(v), 2) for h, v in sorted(self.hours.items())}
        worst_first = sorted(self.instruments.items(), key=lambda kv: kv[1])
        by_instrument = {k: round(v, 2) for k, v in worst_first}
        return {
            "days": self.days,
            **self.counts,
            "matched_share": round(self.matched_share, 4),
            "slippage_per_trade": {
                "mean": round(statistics.fmean(sl), 2) if sl else 0.0,
                "median": round(statistics.median(sl), 2) if sl else 0.0,
                "worst": round(min(sl), 2) if sl else 0.0,
                "trades": len(sl),
            },
            "slippage_by_hour": by_hour,
            "slippage_by_instrument": by_instrument,
            "causes": [[k, round(v, 2)] for k, v in self.ranked()],
            "shadow_net": round(self.shadow_net, 2),
            "live_net": round(self.live_net, 2),
        }

    def ranked(self) -> list[tuple[str, float]]:
        """The causes by rupees moved, the largest first (those that moved nothing left out)."""
        got = [(k, v) for k, v in self.causes.items() if round(v, 2)]
        return sorted(got, key=lambda kv: -abs(kv[1]))


def summarize(days: list[ShadowDay]) -> dict[str, StrategySummary]:
    out: dict[str, StrategySummary] = {}
    for d in days:
        for name, st in d.strategies.items():
            sm = out.setdefault(name, StrategySummary(name))
            sm.days += 1
            for k, n in st.counts().items():
                sm.counts[k] += n
            for p in st.pairs:
                if p.kind != "matched" or p.live is None or not p.live.filled:
                    continue
                rs = p.slippage() / 100
                sm.slippage.append(rs)
                hour = datetime.fromtimestamp(p.live.decided_ns / 1e9, IST).strftime("%H")
                sm.hours.setdefault(hour, []).append(rs)
                sm.instruments[p.live.symbol] = sm.instruments.get(p.live.symbol, 0.0) + rs
            b = st.bridge
            for k in (*CAUSES, UNEXPLAINED):
                sm.causes[k] = sm.causes.get(k, 0.0) + b.causes.get(k, 0) / 100
            sm.shadow_net += b.shadow_net / 100
            sm.live_net += b.live_net / 100
    return out
