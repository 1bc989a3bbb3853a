"""The end-of-day report: after the close, per strategy and for the stack, the day's
trades, gross P&L, charges, net P&L and worst drawdown, and everything still waiting for
a person (halts, unknown orders, mismatches); kept as an HTML page and a JSON file under
``<MT_LOG_DIR>/reports/`` and sent to the alert channels as a summary.

The figures are risk's (its books hold the day's fills, replayed after a restart, with
charges as a contract note computes them). The drawdown is the monitor's: it follows
each book's net P&L through the day (``DayMarks``, sampled every few seconds), so a
monitor restarted mid-day knows the drawdowns since it came back (the report says so).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from mytrading.monitor import eodshadow
from mytrading.monitor.rules import waiting_for_a_person
from mytrading.monitor.view import View

STACK = "*"


@dataclass
class Day:
    """One market day as the monitor followed it: risk's latest figures per book, and each
    book's (and the stack's) net P&L peak and worst drawdown."""

    day: date
    since: str  # when the monitor began following it (the day's start, or a restart)
    pnl: dict[str, dict[str, float]] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)  # the deepest fall from a peak


@dataclass
class DayMarks:
    """The day being followed, and the one before it once it is over: a simulated market
    jumps from its close to the next morning, and risk starts the new day's books at its
    first step there, so the finished day's figures are the last ones seen in it."""

    today: Day | None = None
    finished: Day | None = None

    def sample(self, view: View, now: datetime) -> None:
        if self.today is None or self.today.day != now.date():
            if self.today is not None and self.today.day < now.date():
                self.finished = self.today
            self.today = Day(now.date(), now.strftime("%H:%M"))
        d = self.today
        pnl = view.strategy_pnl()
        d.pnl = {name: dict(p) for name, p in pnl.items()}
        nets = {name: float(p.get("net", 0.0)) for name, p in pnl.items()}
        nets[STACK] = sum(nets.values())
        for name, net in nets.items():
            peak = max(d.peak.get(name, 0.0), net)  # the day starts at zero
            d.peak[name] = peak
            d.worst[name] = max(d.worst.get(name, 0.0), peak - net)


def build(day: Day, view: View, recon_since: float) -> dict[str, Any]:
    """The report's content (what the page and the summary show): ``day``'s figures, and
    what waits for a person now."""
    rows: list[dict[str, Any]] = []
    for name, p in sorted(day.pnl.items()):
        gross = float(p.get("realized", 0.0)) + float(p.get("unrealized", 0.0))
        rows.append(
            {
                "strategy": name,
                "trades": int(p.get("trades", 0)),
                "gross": round(gross, 2),
                "charges": round(float(p.get("charges", 0.0)), 2),
                "net": round(float(p.get("net", gross)), 2),
                "worst_drawdown": round(day.worst.get(name, 0.0), 2),
            }
        )
    stack = {
        "trades": sum(r["trades"] for r in rows),
        **{k: round(sum(r[k] for r in rows), 2) for k in ("gross", "charges", "net")},
        "worst_drawdown": round(day.worst.get(STACK, 0.0), 2),
    }
    needs = waiting_for_a_person(view)
    mismatches = sorted(
        {
            f"{e.account}/{e.exchange}:{e.symbol} ours {e.ours}, broker {e.broker}"
            for t, e in view.recon_events
            if t >= recon_since
        }
    )
    needs += [f"reconciliation mismatch: {m}" for m in mismatches]
    return {
        "day": day.day.isoformat(),
        "strategies": rows,
        "stack": stack,
        "needs": needs,
        "drawdown_since": day.since,
    }


def summary(report: dict[str, Any]) -> str:
    """What the alert channels get: a few lines."""
    s = report["stack"]
    lines = [
        f"end of day {report['day']}: net {s['net']:,.2f} (gross {s['gross']:,.2f}, charges "
        f"{s['charges']:,.2f}), {s['trades']} trades, worst drawdown {s['worst_drawdown']:,.2f}"
    ]
    for r in report["strategies"]:
        if r["trades"] or r["net"]:
            lines.append(f"  {r['strategy']}: net {r['net']:,.2f}, {r['trades']} trades")
    if "shadow" in report:
        lines += eodshadow.summary_lines(report["shadow"])
    lines.append(
        f"{len(report['needs'])} thing(s) need you: " + "; ".join(report["needs"])
        if report["needs"]
        else "nothing waits for you"
    )
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    """A self-contained page (its own style, no script, nothing fetched)."""

    def money(v: float) -> str:
        return f'<td class="{"neg" if v < 0 else "pos"}">{v:,.2f}</td>'

    rows = "".join(
        f"<tr><td class='l'>{html.escape(r['strategy'])}</td><td>{r['trades']}</td>"
        f"{money(r['gross'])}<td>{r['charges']:,.2f}</td>{money(r['net'])}"
        f"<td>{r['worst_drawdown']:,.2f}</td></tr>"
        for r in report["strategies"]
    )
    s = report["stack"]
    total = (
        f"<tr class='total'><td class='l'>stack</td><td>{s['trades']}</td>{money(s['gross'])}"
        f"<td>{s['charges']:,.2f}</td>{money(s['net'])}<td>{s['worst_drawdown']:,.2f}</td></tr>"
    )
    needs = (
        "<ul class='needs'>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in report["needs"])
        + "</ul>"
        if report["needs"]
        else "<p class='ok'>Nothing waits for you.</p>"
    )
    since = report.get("drawdown_since") or "?"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mytrading: end of day {report["day"]}</title>
<style>
  body {{ font-family: system-ui, sans-serif; margin: 16px; color: #1d232b; background: #f6f7f9; }}
  h1 {{ font-size: 20px; margin: 0 0 10px; }} h2 {{ font-size: 15px; margin: 16px 0 6px; }}
  table {{ border-collapse: collapse; width: 100%; max-width: 760px; background: #fff;
          font-size: 14px; }}
  th, td {{ border-bottom: 1px solid #e3e6ea; padding: 5px 8px; text-align: right; }}
  th {{ color: #56606b; }} .l {{ text-align: left; }}
  .total td {{ font-weight: 700; border-top: 2px solid #1d232b; }}
  .pos {{ color: #137333; }} .neg {{ color: #c5221f; }}
  .ok {{ color: #137333; font-weight: 600; }} .needs li {{ color: #b06000; font-weight: 600; }}
  .muted {{ color: #6b7480; font-size: 12px; }} h3 {{ font-size: 13px; margin: 12px 0 4px; }}
  .lines {{ padding-left: 18px; }} .line {{ margin: 3px 0; font-size: 14px; }}
  .followers {{ padding-left: 14px; list-style: circle; }}
  .follower {{ color: #555; font-size: 13px; }}
  .wf {{ width: 100%; max-width: 760px; background: #fff; font-size: 12px; }}
  .why {{ font-size: 12px; color: #56606b; }} .notes li {{ color: #6b7480; font-size: 12px; }}
  .trades {{ list-style: none; padding: 0; max-width: 760px; }}
  .trades li {{ background: #fff; border-bottom: 1px solid #e3e6ea; padding: 6px 8px;
               font-size: 14px; }}
  .scroll {{ overflow-x: auto; }}
</style></head><body>
<h1>End of day {report["day"]}</h1>
<div class="scroll"><table><tr><th class="l">strategy</th><th>trades</th><th>gross</th>
<th>charges</th><th>net</th><th>worst drawdown</th></tr>{rows}{total}</table></div>
<p class="muted">P&amp;L and charges from risk's books (charges as a contract note computes
them); drawdown: the deepest fall of net P&amp;L from its high, followed since {since}.</p>
<h2>Waiting for a person</h2>{needs}
{eodshadow.render(report.get("shadow"))}
</body></html>
"""


@dataclass
class EodReporter:
    """Once a trading day: at ``at`` (market time, IST), or, where the market's clock
    passes from its close to the next morning without reaching ``at`` (the simulated
    market), as soon as that day is over. A day reported (before a restart too) is not
    reported again."""

    dir: Path
    at: time
    said: date | None = None

    def due(
        self, marks: DayMarks, now: datetime, trading_day: Callable[[date], bool]
    ) -> Day | None:
        """The day to report now, if any."""
        d = marks.today
        if d is not None and d.day == now.date() and now.time() >= self.at and trading_day(d.day):
            return None if self._made(d.day) else d
        f = marks.finished
        if f is not None and trading_day(f.day) and not self._made(f.day):
            return f
        return None

    def _made(self, day: date) -> bool:
        if self.said is not None and self.said >= day:
            return True
        if (self.dir / f"eod-{day}.json").exists():  # made before a restart of the monitor
            self.said = day
            return True
        return False

    def write(self, report: dict[str, Any]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        page = self.dir / f"eod-{report['day']}.html"
        page.write_text(render(report))
        (self.dir / f"eod-{report['day']}.json").write_text(json.dumps(report, indent=1))
        self.said = date.fromisoformat(report["day"])
        return page


def latest(dir_: Path) -> Path | None:
    """The newest report's page, if any."""
    pages = sorted(dir_.glob("eod-*.html"))
    return pages[-1] if pages else None
