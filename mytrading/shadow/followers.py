"""A follower account's day against its lead's (issue 53: every live order paired).

The shadow trades the lead account; a follower (``config/accounts.toml``) mirrors the
lead's position at its own size (``risk/mirror.py``): each lead order it copies carries
the lead's intent, booked as ``<strategy>@<account>``. So each follower is paired with
its lead, decision by decision: copied (the price each got, and what the difference was
worth at the follower's size), not copied (risk refused the follower's copy, with its
rule; the broker rejected it; or risk made none: the follower's target did not move at
its ratio and lot, it was ahead of its target, or its book was not trading), and the
follower's own orders (its convergence back to its target, risk's exits of its book).
The follower's net is set against the lead's, and the shadow's, at the follower's ratio
(the shadow trades the lead account: its difference from the lead is the lead's bridge,
the follower's from the lead is what is counted here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mytrading.domain.ids import Book
from mytrading.shadow.trades import SideOfDay, Trade

NO_COPY = "no copy made by risk (its target unmoved at its ratio and lot, ahead of it, or its book not trading)"  # noqa: E501


@dataclass
class Following:
    """One follower book's day against its lead's."""

    book: str  # <strategy>@<account>
    decisions: int = 0  # the lead's decisions a copy was due for (its own, not risk's exits)
    copied: int = 0
    not_copied: dict[str, int] = field(default_factory=dict)  # why -> how many
    own: int = 0  # the follower's orders of no lead decision (convergence, risk's exits)
    slippage: int = 0  # paise the follower's copies gained against the lead's prices
    lead_qty: int = 0  # filled on both sides, over the copies that filled
    follower_qty: int = 0
    net: int = 0  # the follower's net of the day, paise
    lead_net: int = 0  # the lead's
    shadow_net: int = 0  # the shadow's (the lead account's backtest; the bridge's start)

    @property
    def account(self) -> str:
        return Book.parse(self.book).account

    @property
    def ratio(self) -> float:
        """The follower's size over the lead's, over the copies both filled."""
        return self.follower_qty / self.lead_qty if self.lead_qty else 0.0

    def line(self) -> str:
        """``follower second: 3 of 4 copied (1 refused: max_notional), slippage -12.50,
        net +2,300.00 vs the lead's x2 +2,480.00``."""
        why = ", ".join(
            f"{n} {w}" for w, n in sorted(self.not_copied.items(), key=lambda kv: -kv[1])
        )
        head = f"follower {self.account}: {self.copied} of {self.decisions} copied"
        head += f" ({why})" if why else ""
        head += f", {self.own} of its own" if self.own else ""
        if not self.ratio:
            scaled = "-"
        else:  # the shadow at the follower's size: what its backtest says it could make
            scaled = (f"x{self.ratio:.2g} {self.lead_net * self.ratio / 100:+,.2f}, the "
                      f"shadow's {self.shadow_net * self.ratio / 100:+,.2f}")  # fmt: skip
        return (f"{head}, slippage {self.slippage / 100:+,.2f}, net {self.net / 100:+,.2f} vs "
                f"the lead's {scaled}")  # fmt: skip

    def row(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "copied": self.copied,
            "not_copied": dict(self.not_copied),
            "own": self.own,
            "slippage": round(self.slippage / 100, 2),
            "ratio": round(self.ratio, 4),
            "net": round(self.net / 100, 2),
            "lead_net": round(self.lead_net / 100, 2),
            "shadow_net": round(self.shadow_net / 100, 2),
        }


def follow(
    strategy: str,
    lead: SideOfDay,
    followers: dict[str, SideOfDay],
    refused: dict[str, str],
    mark: Callable[[str, str], int],
    configured: Iterable[str] = (),
    shadow_net: int = 0,
) -> list[Following]:
    """Each follower book of ``strategy`` against its lead. ``followers``: per follower
    account, its side of the day (``live_side(..., account=...)``); ``refused``: risk's
    refusals by intent (a follower's copy: the lead's intent and ``@account``) and rule;
    ``configured``: the accounts ``config/accounts.toml`` has follow the strategy (one that
    got no copy all day is said too, with none copied), beside those the day's journal or
    risk's refusals show following it; ``shadow_net``: the strategy's shadow's net (paise),
    set against each follower at its ratio."""
    out = []
    leads = [t for t in lead.trades.get(strategy, []) if not t.by_risk]
    empty = SideOfDay("live")
    for account in sorted(set(followers) | set(configured)):
        side = followers.get(account, empty)
        book = f"{strategy}@{account}"
        mine = side.trades.get(book, [])
        seen = mine or side.settled.get(book) or _refused_any(refused, leads, account)
        if not seen and account not in configured:
            continue  # an account following other strategies only
        f = Following(book, decisions=len(leads), shadow_net=shadow_net)
        by_intent = {t.intent_id: t for t in mine}
        for t in leads:
            copy = by_intent.pop(t.intent_id, None)
            if copy is None:
                why = refused.get(f"{t.intent_id}@{account}")
                _count(f.not_copied, f"refused: {why}" if why else NO_COPY)
                continue
            if copy.filled == 0 and not copy.sent_ns:  # the router's, before the broker
                _count(f.not_copied, f"not sent to the broker: {copy.reason or copy.state}")
                continue
            if copy.filled == 0 and copy.state == "rejected":
                _count(f.not_copied, f"rejected by the broker: {copy.reason or 'no reason'}")
                continue
            f.copied += 1
            if copy.filled and t.filled:
                # what the follower's price was worth against the lead's, at its size
                f.slippage += round(copy.sign * (t.avg - copy.avg) * 100 * copy.filled)
                f.lead_qty += t.filled
                f.follower_qty += copy.filled
        f.own = len(by_intent)
        f.net = side.net(book, mark)
        f.lead_net = lead.net(strategy, mark)
        out.append(f)
    return out


def refusals_by_intent(rows: Iterable[tuple[Any, ...]]) -> dict[str, str]:
    """Risk's refusals of the day (``risk.events.read_events`` rows), intent -> rule."""
    return {str(r[10]): str(r[3]) for r in rows if r[2] == "rejected" and len(r) > 10 and r[10]}


def _refused_any(refused: dict[str, str], leads: list[Trade], account: str) -> bool:
    return any(f"{t.intent_id}@{account}" in refused for t in leads)


def _count(d: dict[str, int], k: str) -> None:
    d[k] = d.get(k, 0) + 1
