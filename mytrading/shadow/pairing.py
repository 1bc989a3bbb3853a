"""Live trades paired with the shadow's, and the P&L bridge between them.

**Pairing.** Each side's trades of a strategy on one instrument, in the order they were
decided, are lined up by what was decided (side, quantity asked) on which bar (decided
within two minutes of each other): the longest run of the same decisions pairs one to
one, and a decision one side made and the other did not is left over on its side (live
only, shadow only), so one extra or missing order does not shift every pair after it.

**The bridge**, per strategy, in paise, from the shadow's net P&L to the live one. Each
side's P&L is the day's fills valued at the same close (``marks``) less their charges, so
the difference splits exactly into:

* ``operator``: what the operator's commands of the day (a pause, a stop, the kill switch)
  changed: the shadow run without them against the shadow run with them (the one paired);
* ``slippage``: the matched trades' price difference over the quantity both filled;
* ``fills_differ``: the rest of a matched pair's difference, a quantity one side filled
  and the other did not (a limit reached in one, a partial fill);
* ``live_only`` and ``shadow_only``: what the unpaired trades made (or would have);
* ``charges``: the charges' difference;
* ``settlement``: the difference of expiry settlements (not trades).

The live net is the day's own figure, from every live fill; what the causes do not
account for (a fill of an order the journal no longer knows) is ``unexplained``, said as
such, never put into a cause. So the bridge adds up to the paisa.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mytrading.shadow.trades import Settled, Trade

CAUSES = (
    "operator",
    "slippage",
    "fills_differ",
    "live_only",
    "shadow_only",
    "charges",
    "settlement",
)
UNEXPLAINED = "unexplained"


@dataclass
class Pair:
    live: Trade | None
    shadow: Trade | None
    why: str = ""  # an unmatched one's cause from the records, or UNEXPLAINED
    # a matched pair filled at different prices: the quote each side's first fill met
    quotes: dict[str, dict[str, float]] = field(default_factory=dict)
    moved: int = 0  # paise this pair moved live's net from the shadow's (``bridge``)

    @property
    def kind(self) -> str:
        if self.live and self.shadow:
            return "matched"
        return "live_only" if self.live else "shadow_only"

    @property
    def decided_ns(self) -> int:
        t = self.live or self.shadow
        assert t is not None
        return t.decided_ns

    def slippage(self) -> int:
        """A matched pair's price difference over the quantity both filled, paise (what
        live gained by it: negative when it paid more for a buy or got less for a sale)."""
        if not (self.live and self.shadow):
            return 0
        live, shadow = self.live, self.shadow
        if live.filled == shadow.filled:
            return live.sign * (shadow.value - live.value)  # exact
        both = min(live.filled, shadow.filled)
        if not both:
            return 0
        return round(live.sign * both * (shadow.value / shadow.filled - live.value / live.filled))

    def row(self, tick: float) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.live:
            out["live"] = self.live.row()
        if self.shadow:
            out["shadow"] = self.shadow.row()
        if self.live and self.shadow and self.live.filled and self.shadow.filled:
            worse = self.live.sign * (self.live.avg - self.shadow.avg)  # > 0: live paid more
            out["price_diff"] = round(worse, 4) + 0.0  # (no -0.0)
            out["price_diff_ticks"] = round(worse / tick, 2) + 0.0 if tick else None
            out["charges_diff"] = (self.live.charges - self.shadow.charges) / 100
            out["slippage"] = self.slippage() / 100
        if self.live and self.shadow and self.live.decided_ns:
            # market seconds the shadow decided after live (its step is the bar's close by
            # data; live's the hand-over): seconds apart, a minute or more is another bar
            out["decided_apart_s"] = round((self.shadow.decided_ns - self.live.decided_ns) / 1e9, 1)
        sent = (self.live.sent_ns or self.live.decided_ns) if self.live else 0
        if self.live and self.live.first_fill_ns and sent:
            # market clock: from the hand-over to the broker to its first fill
            ms = (self.live.first_fill_ns - sent) / 1e6
            out["sent_to_fill_ms"] = round(ms, 1)
        if self.quotes:
            out["quotes"] = self.quotes
        out["moved"] = self.moved / 100
        if self.why:
            out["why"] = self.why
        return out


def pair(live: list[Trade], shadow: list[Trade]) -> list[Pair]:
    """The two sides' trades of one strategy, paired (each list in decision order),
    instrument by instrument: the strategy's decisions with each other, risk's own exits
    with each other, so an exit one side's prices set off does not shift the strategy's
    pairs. Per instrument, because decisions on several instruments at one minute come in
    the order each instrument's bar closed, which differs between the sides (live closes
    a quiet one by the clock, the shadow at its next recorded tick): aligned as one
    sequence, two such decisions in crossed order left one of them unpaired on each side."""
    lines: dict[tuple[bool, str, str], tuple[list[Trade], list[Trade]]] = {}
    for side, trades in ((0, live), (1, shadow)):
        for t in trades:
            lines.setdefault((t.by_risk, t.exchange, t.symbol), ([], []))[side].append(t)
    out: list[Pair] = []
    for a, b in lines.values():
        out += _aligned(a, b)
    out = _answers_paired(out)
    out.sort(key=lambda p: p.decided_ns)
    return out


def _answers_paired(pairs: list[Pair]) -> list[Pair]:
    """Decisions that answer a fill (``fill_of``: a stop placed on its entry's fill, a
    leg re-entered on its stop's), left one-sided because the two sides' fills came
    apart in time (a limit reached later live, a thin book filling over minutes): each
    live one paired with the shadow's answer to the same decision's fill of the same key,
    in order; an answer paired so may be the fill another answers, so again until none."""
    while True:
        twin = {p.live.intent_id: p.shadow.intent_id
                for p in pairs if p.live and p.shadow}  # fmt: skip
        shadow_only = [p for p in pairs if p.shadow and not p.live and p.shadow.fill_of]
        merged: list[Pair] = []
        for p in pairs:
            live = p.live
            if p.shadow or live is None or not live.fill_of or live.fill_of not in twin:
                continue
            for q in shadow_only:
                s = q.shadow
                assert s is not None
                if (s.fill_of == twin[live.fill_of] and s.key == live.key
                        and s.by_risk == live.by_risk and q not in merged):  # fmt: skip
                    merged += [p, q]
                    pairs.append(Pair(live, s))
                    break
        if not merged:
            return pairs
        pairs = [p for p in pairs if not any(p is m for m in merged)]


MATCH_WINDOW_NS = 120 * 10**9  # two sides' same decision: the same bar, handed apart


def _aligned(live: list[Trade], shadow: list[Trade]) -> list[Pair]:
    """The longest run of pairs in order whose two trades are the same decision: the same
    key (instrument, side, quantity) decided on the same bar: the bar each names
    (``bar_ns``, carried from the intent through risk's order into the journal), or,
    where one side names none (a tick's or a timer's decision, an older journal), within
    ``MATCH_WINDOW_NS`` (live decides when the feed hands the bar, a grace after its end,
    the shadow at its end; a strategy still warming up decides on held bars later
    still); the rest is left over on its side. A key alone paired a decision with the
    other side's next one of the same key however far apart (a cold start's first
    decisions with the other side's a quarter of an hour later)."""
    n, m = len(live), len(shadow)

    def same(i: int, j: int) -> bool:
        a, b = live[i], shadow[j]
        if a.key != b.key:
            return False
        if a.bar_ns and b.bar_ns:  # both said the bar they decided on
            return a.bar_ns == b.bar_ns
        return abs(a.decided_ns - b.decided_ns) <= MATCH_WINDOW_NS

    # longest common subsequence under ``same``, from the end (lengths), then walked
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = best[i], best[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if same(i, j) else max(below[j], row[j + 1])
    out: list[Pair] = []
    i = j = 0
    while i < n and j < m:
        if same(i, j) and best[i][j] == best[i + 1][j + 1] + 1:
            out.append(Pair(live[i], shadow[j]))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            out.append(Pair(live[i], None))
            i += 1
        else:
            out.append(Pair(None, shadow[j]))
            j += 1
    out += [Pair(a, None) for a in live[i:]]
    out += [Pair(None, b) for b in shadow[j:]]
    return out


@dataclass
class Bridge:
    """Paise: ``shadow_net + sum(causes) == live_net``, where ``live_net`` is the day's
    own figure (every live fill of the strategy), so a fill outside every paired trade (a
    fill of an order the journal lost) lands in ``unexplained``, never in a cause."""

    shadow_net: int = 0
    live_net: int = 0
    causes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAUSES, 0))

    def add(self, other: Bridge) -> None:
        self.shadow_net += other.shadow_net
        self.live_net += other.live_net
        for k, v in other.causes.items():
            self.causes[k] = self.causes.get(k, 0) + v

    def start_untouched(self, untouched_net: int) -> None:
        """Start from the shadow run without the operator's commands (``untouched_net``):
        the difference to the shadow with them, which the pairs were made against, is the
        ``operator`` cause (the sum still ends at the live net)."""
        self.causes["operator"] += self.shadow_net - untouched_net
        self.shadow_net = untouched_net

    def rupees(self) -> dict[str, Any]:
        return {
            "shadow_net": self.shadow_net / 100,
            **{k: v / 100 for k, v in self.causes.items()},
            "live_net": self.live_net / 100,
        }


def bridge(
    pairs: list[Pair],
    live_settled: list[Settled],
    shadow_settled: list[Settled],
    mark: Callable[[str, str], int],
    live_net: int,
) -> Bridge:
    """One strategy's bridge. ``mark(exchange, symbol)``: the close both sides are valued
    at, in paise; ``live_net``: the day's live net P&L at those marks from all its fills
    (``trades.side_net``)."""
    b = Bridge(live_net=live_net)
    for p in pairs:
        lv = p.live.pnl(mark(p.live.exchange, p.live.symbol)) if p.live else 0
        sh = p.shadow.pnl(mark(p.shadow.exchange, p.shadow.symbol)) if p.shadow else 0
        b.shadow_net += sh - (p.shadow.charges if p.shadow else 0)
        b.causes["charges"] -= (p.live.charges if p.live else 0) - (
            p.shadow.charges if p.shadow else 0
        )
        if p.live and p.shadow:
            slip = p.slippage()
            b.causes["slippage"] += slip
            b.causes["fills_differ"] += lv - sh - slip
        elif p.live:
            b.causes["live_only"] += lv
        else:
            b.causes["shadow_only"] -= sh
        p.moved = lv - sh  # before charges (their own cause)
    for s in live_settled:
        b.causes["settlement"] += s.pnl(mark(s.exchange, s.symbol))
        b.causes["charges"] -= s.charges
    for s in shadow_settled:
        got = s.pnl(mark(s.exchange, s.symbol))
        b.shadow_net += got - s.charges
        b.causes["settlement"] -= got
        b.causes["charges"] += s.charges
    b.causes[UNEXPLAINED] = b.live_net - b.shadow_net - sum(b.causes.values())
    return b
