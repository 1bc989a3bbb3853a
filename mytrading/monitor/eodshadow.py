"""The end-of-day report's "live against its shadow" section: from the day's shadow
(``main.py backtest shadow --json``, run by ``shadowrun.py``), per strategy the message's
line, the counts, the bridge from the shadow's net to the live net, and the trades that
did not match with their reasons; the stack's bridge drawn as a waterfall.

A trader reading it on a phone after the close wants the answer first (live against
shadow, the causes in rupees), then the trades behind it: the page shows it in that
order, and the waterfall is drawn as rows (one cause a row) so it reads at a phone's
width. The figures are the command's, to the paisa; nothing here recomputes them.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mytrading.monitor.shadowrun import Outcome
from mytrading.shadow.given import hms

ENDS = ("shadow_net", "live_net")


def section(outcome: Outcome | None) -> dict[str, Any]:
    """The report's ``shadow`` part: what the shadow found, or why there is none."""
    if outcome is None:
        return {"made": False, "why_not": "switched off (rules.eod_report.shadow = false)"}
    if outcome.got is None:
        return {"made": False, "why_not": outcome.why_not}
    got = outcome.got
    rows = []
    for name, st in sorted(got.get("strategies", {}).items()):
        rows.append({
            "strategy": name,
            "line": st.get("line", name),
            **{k: int(st.get(k, 0)) for k in ("matched", "live_only", "shadow_only")},
            "bridge": st.get("bridge", {}),
            "unmatched": [_unmatched(p) for p in st.get("pairs", []) if p.get("kind") != "matched"],
        })  # fmt: skip
    stack = got.get("stack", {}).get("bridge", {})
    return {
        "made": True,
        "day": got.get("day"),
        "strategies": rows,
        "stack": stack,
        "timeline": timeline(got, stack),
        "operator": got.get("operator", []),
        "notes": got.get("notes", []),
    }


# what no single trade carries: said at the close, after the trades (``timeline``)
AT_CLOSE = ("operator", "charges", "settlement", "unexplained")


def timeline(got: dict[str, Any], stack: dict[str, float]) -> list[dict[str, Any]]:
    """The stack's difference, live less shadow, as it built through the trading day:
    every pair that moved it, at its decision's time (a matched pair's slippage, a trade
    only one side made), then, at the close, the causes no trade carries (the operator's
    commands, charges, settlement, what is unexplained). The steps add up to the bridge's
    live net less its shadow net."""
    steps: list[dict[str, Any]] = []
    for st in got.get("strategies", {}).values():
        for p in st.get("pairs", []):
            moved = float(p.get("moved", 0.0))
            if not round(moved, 2):
                continue
            t = p.get("live") or p.get("shadow") or {}
            ns = int(t.get("decided_ns", 0))
            kind = p.get("kind", "")
            steps.append({"ns": ns, "at": hms(ns), "moved": moved,
                          "cause": "slippage" if kind == "matched" else kind})  # fmt: skip
    steps.sort(key=lambda x: x["ns"])
    last = steps[-1]["ns"] if steps else 0
    for k in AT_CLOSE:
        v = float(stack.get(k, 0.0))
        if round(v, 2):
            steps.append({"ns": last, "at": "close", "moved": v, "cause": k})
    return steps


def _unmatched(p: dict[str, Any]) -> dict[str, Any]:
    t = p.get("live") or p.get("shadow") or {}
    at = hms(int(t.get("decided_ns", 0)))
    return {
        "kind": p.get("kind", ""),
        "at": at,
        "action": t.get("action", ""),
        "quantity": t.get("quantity", 0),
        "symbol": t.get("symbol", ""),
        "moved": p.get("moved", 0.0),
        "why": p.get("why", ""),
    }


def _line_html(line: str) -> str:
    """A strategy's line; each follower account's part (``; follower ...``) on a line of
    its own beneath it (a phone's width would run them together)."""
    head, *followers = line.split("; follower ")
    subs = "".join(f"<li class='follower'>follower {html.escape(f)}</li>" for f in followers)
    return f"<li class='line'>{html.escape(head)}" + (
        f"<ul class='followers'>{subs}</ul></li>" if subs else "</li>"
    )


def summary_lines(shadow: dict[str, Any]) -> list[str]:
    """The end-of-day message's lines: one per strategy, or why the shadow is missing."""
    if not shadow.get("made"):
        return [f"live against its shadow: none ({shadow.get('why_not', '?')})"]
    rows = shadow.get("strategies", [])
    if not rows:
        return ["live against its shadow: no strategy traded"]
    return ["live against its shadow:"] + [f"  {r['line']}" for r in rows]


def steps(bridge: dict[str, float]) -> list[tuple[str, float, float]]:
    """The waterfall's rows: (label, from, to), the shadow's net from zero, each cause
    that moved anything from where the one before ended, the live net from zero."""
    if not bridge:
        return []
    shadow, live = float(bridge.get("shadow_net", 0.0)), float(bridge.get("live_net", 0.0))
    out = [("shadow net", 0.0, shadow)]
    at = shadow
    for k, v in bridge.items():
        if k in ENDS or not round(float(v), 2):
            continue
        out.append((k.replace("_", " "), at, at + float(v)))
        at += float(v)
    out.append(("live net", 0.0, live))
    return out


def waterfall_svg(bridge: dict[str, float], width: int = 520) -> str:
    """The bridge as rows of bars on one rupee scale: the ends from zero, each cause a
    bar from where the running total was to where it moved it (red: live lost by it)."""
    rows = steps(bridge)
    if not rows:
        return ""
    lo = min(0.0, *(min(a, b) for _, a, b in rows))
    hi = max(0.0, *(max(a, b) for _, a, b in rows))
    span = (hi - lo) or 1.0
    label_w, value_w, row_h = 110, 90, 24
    plot_w = width - label_w - value_w

    def x(v: float) -> float:
        return label_w + (v - lo) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wf" viewBox="0 0 {width} '
        f'{row_h * len(rows) + 8}" role="img" aria-label="P&amp;L bridge, shadow to live">',
        f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{row_h * len(rows)}" '
        'stroke="#9aa3ad" stroke-width="1"/>',
    ]
    for i, (label, a, b) in enumerate(rows):
        y = i * row_h + 4
        end = label in ("shadow net", "live net")
        colour = "#3b5b92" if end else ("#c5221f" if b < a else "#137333")
        left, right = sorted((x(a), x(b)))
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
                     f"{html.escape(label)}</text>")  # fmt: skip
        parts.append(f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 1.5):.1f}" '
                     f'height="{row_h - 8}" fill="{colour}"/>')  # fmt: skip
        value = b if end else b - a
        parts.append(f'<text x="{width - 4}" y="{y + 15}" text-anchor="end">'
                     f"{value:+,.2f}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


COLOURS = {"slippage": "#b06000", "live_only": "#3b5b92", "shadow_only": "#7b3f98",
           "charges": "#6b7480", "operator": "#137333", "settlement": "#0b7a75",
           "unexplained": "#c5221f"}  # fmt: skip


def timeline_svg(steps: list[dict[str, Any]], width: int = 520, height: int = 170) -> str:
    """The difference through the day: a step line of live less shadow against trading
    time, one dot per step coloured by its cause (those at the close at the right edge)."""
    if not steps:
        return ""
    run, points = 0.0, [(0.0, 0.0)]
    t0 = steps[0]["ns"]
    t1 = max(x["ns"] for x in steps)
    span_t = (t1 - t0) or 1
    for x in steps:
        run += float(x["moved"])
        points.append(((x["ns"] - t0) / span_t if x["at"] != "close" else 1.0, run))
    lo, hi = min(0.0, *(y for _, y in points)), max(0.0, *(y for _, y in points))
    span_y = (hi - lo) or 1.0
    left, right, top, bottom = 70, 12, 10, 24

    def px(f: float) -> float:
        return left + f * (width - left - right)

    def py(v: float) -> float:
        return top + (hi - v) / span_y * (height - top - bottom)

    path = f"M{px(0):.1f},{py(0):.1f}"
    for f, y in points[1:]:  # along to the step's time, then up or down by its rupees
        path += f" H{px(f):.1f} V{py(y):.1f}"
    dots = "".join(
        f'<circle cx="{px(f):.1f}" cy="{py(y):.1f}" r="3.5" '
        f'fill="{COLOURS.get(x["cause"], "#333")}">'
        f"<title>{html.escape(x['at'])} {html.escape(x['cause'].replace('_', ' '))} "
        f"{float(x['moved']):+,.2f}</title></circle>"
        for (f, y), x in zip(points[1:], steps, strict=True)
    )
    first = next((x["at"] for x in steps if x["at"] != "close"), "")
    last = next((x["at"] for x in reversed(steps) if x["at"] != "close"), "")
    causes = sorted({x["cause"] for x in steps}, key=list(COLOURS).index)
    legend = " ".join(
        f'<tspan fill="{COLOURS[c]}">● {html.escape(c.replace("_", " "))}</tspan>' for c in causes
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wf" viewBox="0 0 {width} '
        f'{height + 18}" role="img" aria-label="live less shadow through the day">'
        f'<line x1="{left}" y1="{py(0):.1f}" x2="{width - right}" y2="{py(0):.1f}" '
        'stroke="#9aa3ad" stroke-width="1"/>'
        f'<text x="{left - 6}" y="{py(hi) + 4:.1f}" text-anchor="end">{hi:+,.0f}</text>'
        f'<text x="{left - 6}" y="{py(lo) + 4:.1f}" text-anchor="end">{lo:+,.0f}</text>'
        f'<path d="{path}" fill="none" stroke="#1d232b" stroke-width="1.5"/>{dots}'
        f'<text x="{left}" y="{height - 6}">{html.escape(first)}</text>'
        f'<text x="{width - right}" y="{height - 6}" text-anchor="end">{html.escape(last)}'
        " · close</text>"
        f'<text x="{left}" y="{height + 12}">{legend}</text></svg>'
    )


def render(shadow: dict[str, Any] | None) -> str:
    """The page's section (HTML, no script)."""
    if shadow is None:
        return ""
    head = "<h2>Live against its shadow</h2>"
    if not shadow.get("made"):
        why = html.escape(str(shadow.get("why_not", "?")))
        return f"{head}<p class='muted'>Not made: {why}</p>"
    rows = shadow.get("strategies", [])
    if not rows:
        return f"{head}<p class='muted'>No strategy traded live: nothing to compare.</p>"
    lines = "".join(_line_html(r["line"]) for r in rows)
    counts = "".join(
        f"<tr><td class='l'>{html.escape(r['strategy'])}</td><td>{r['matched']}</td>"
        f"<td>{r['live_only']}</td><td>{r['shadow_only']}</td></tr>"
        for r in rows
    )
    unmatched = [(r["strategy"], u) for r in rows for u in r["unmatched"]]
    # one trade a block (a table of six columns does not fit a phone)
    trades = (
        "<ul class='trades'>"
        + "".join(
            f"<li><b>{u['at']}</b> {html.escape(str(u['action']))} {u['quantity']} "
            f"{html.escape(str(u['symbol']))} <span class='muted'>{html.escape(name)}, "
            f"{html.escape(u['kind'].replace('_', ' '))}</span> "
            f"<span class='{'neg' if u['moved'] < 0 else 'pos'}'>{u['moved']:+,.2f}</span>"
            f"<br><span class='why'>{html.escape(u['why'])}</span></li>"
            for name, u in unmatched
        )
        + "</ul>"
        if unmatched
        else "<p class='ok'>Every live trade matched the shadow's.</p>"
    )
    given = "".join(
        f"<li>{html.escape(str(g.get('at', '')))} {html.escape(str(g.get('target', '')))}: "
        f"{html.escape(str(g.get('what', '')))}</li>"
        for g in shadow.get("operator", [])
    )
    notes = "".join(f"<li class='note'>{html.escape(n)}</li>" for n in shadow.get("notes", []))
    return (
        f"{head}<ul class='lines'>{lines}</ul>"
        f"<h3>Stack: from the shadow's net to the live net</h3>"
        f"{waterfall_svg(shadow.get('stack', {}))}"
        "<h3>Live less shadow through the day</h3>"
        f"{timeline_svg(shadow.get('timeline', []))}"
        "<h3>Decisions</h3><table><tr><th class='l'>strategy</th><th>matched</th>"
        f"<th>live only</th><th>shadow only</th></tr>{counts}</table>"
        f"<h3>Trades that did not match</h3>{trades}"
        + (f"<h3>The operator's commands, given to the shadow too</h3><ul>{given}</ul>"
           if given else "")
        + (f"<ul class='notes'>{notes}</ul>" if notes else "")
    )  # fmt: skip


@dataclass(frozen=True)
class Gap:
    """A strategy whose live net parted from its shadow's over the window."""

    strategy: str
    gap: float  # rupees: live net less shadow net, summed over ``days``
    days: list[str]
    live: float
    shadow: float

    def text(self) -> str:
        first, last = self.days[0], self.days[-1]
        span = first if first == last else f"{first} to {last}"
        return (f"{self.strategy}: live {self.live:+,.2f} vs its shadow {self.shadow:+,.2f} over "
                f"{len(self.days)} day(s) ({span}): {self.gap:+,.2f} apart; the edge may be in "
                "the execution, not the signal (main.py backtest shadow --from "
                f"{first} --to {last})")  # fmt: skip


def gaps(reports: Path, upto: date, window_days: int, threshold: float) -> list[Gap]:
    """The strategies whose live net less the shadow's, summed over the last
    ``window_days`` reported days up to ``upto`` (those with a shadow), is more than
    ``threshold`` rupees either way. A day's figures are its report's, as written."""
    days: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(reports.glob("eod-*.json"), reverse=True):
        day = path.stem.removeprefix("eod-")
        if day > upto.isoformat():
            continue
        try:
            shadow = json.loads(path.read_text()).get("shadow") or {}
        except (OSError, ValueError):
            continue  # a report unreadable: not counted (its day is not in the window)
        if shadow.get("made"):
            days.append((day, shadow))
        if len(days) >= window_days:
            break
    sums: dict[str, list[float]] = {}
    seen: dict[str, list[str]] = {}
    for day, shadow in days:
        for r in shadow.get("strategies", []):
            b = r.get("bridge", {})
            acc = sums.setdefault(r["strategy"], [0.0, 0.0])
            acc[0] += float(b.get("live_net", 0.0))
            acc[1] += float(b.get("shadow_net", 0.0))
            seen.setdefault(r["strategy"], []).append(day)
    out = []
    for name, (live, shadow) in sorted(sums.items()):
        if abs(live - shadow) > threshold:
            out.append(Gap(name, round(live - shadow, 2), sorted(seen[name]), round(live, 2),
                           round(shadow, 2)))  # fmt: skip
    return out
