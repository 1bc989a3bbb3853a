"""Stretches of the day when a part of live's stack was away, read back from risk's
events: the engine, the feed, the router or risk itself restarted, or the router refused
the lead account's orders (a broker session expired, a journal the disk refused). A
decision one side made alone in or after such a stretch, when it began after the two
sides last held alike, is put to it: live decided nothing (or sent nothing) while the
part was away, and after an engine's restart its strategies started afresh (warmed up
again, their own state lost), so they may decide otherwise until both hold alike again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mytrading.shadow.given import event_ns, hms

WHAT = {
    "engine": "no decision while it was down, its strategies started afresh after",
    "feed": "no ticks while it was down, the gap's bars from the broker's history after",
    "router": "orders waited for it, or went stale",
    "risk": "intents waited for it, or went stale",
}


@dataclass(frozen=True)
class Outage:
    who: str  # engine | feed | router | risk
    from_ns: int  # market ns it began (a restart: the peer's last beat before it)
    to_ns: int  # market ns it ended (0: not by the day's end)
    why: str  # a restart: what it left undone; the router refusing: why it refused

    def said(self) -> str:
        end = f"to {hms(self.to_ns)}" if self.to_ns else "to the day's end"
        if self.why.startswith("refused: "):
            return (f"live's router refused orders ({self.why.removeprefix('refused: ')}) "
                    f"from {hms(self.from_ns)} {end}")  # fmt: skip
        if self.from_ns == self.to_ns:
            return f"the {self.who} restarted live (back at {hms(self.to_ns)}): {self.why}"
        return (f"the {self.who} restarted live (silent from {hms(self.from_ns)}, back at "
                f"{hms(self.to_ns)}): {self.why}")  # fmt: skip


def outages(rows: Iterable[tuple[Any, ...]]) -> list[Outage]:
    """The day's outages from risk's event rows (``risk.events.read_events``: market
    time, strategy, kind, rule, threshold, value, action, reason, ...), earliest first."""
    out: list[Outage] = []
    risk_starts: list[int] = []
    refusing: tuple[int, str] | None = None
    for row in sorted(rows, key=lambda r: (r[0], r[2])):
        ns, kind, rule, value, action = event_ns(row[0]), row[2], row[3], row[5], row[6]
        if kind == "restart" and rule in WHAT:
            silent = int(float(value or 0) * 1e9)
            out.append(Outage(rule, ns - silent, ns, WHAT[rule]))
        elif kind == "start" and rule == "risk":
            risk_starts.append(ns)
        elif kind == "router" and action == "refusing":
            why = str(row[7] or "").removeprefix("the router refuses orders: ")
            refusing = refusing or (ns, "refused: " + (why or str(rule)))
        elif kind == "router" and action == "taking" and refusing is not None:
            out.append(Outage("router", refusing[0], ns, refusing[1]))
            refusing = None
    if refusing is not None:
        out.append(Outage("router", refusing[0], 0, refusing[1]))
    for ns in risk_starts[1:]:  # the day's first is its start; any later, a restart
        out.append(Outage("risk", ns, ns, WHAT["risk"]))
    return sorted(out, key=lambda o: o.from_ns)


def outage_cause(outs: Iterable[Outage], since_ns: int, at_ns: int) -> str:
    """The latest outage that began by ``at_ns`` and had not ended before the sides last
    held alike (``since_ns``), said ("" if none): one that ended at that very moment
    still steers the decisions made then (a daemon back is not yet a strategy warm)."""
    found = [o for o in outs if o.from_ns <= at_ns and (o.to_ns == 0 or o.to_ns >= since_ns)]
    return found[-1].said() if found else ""
