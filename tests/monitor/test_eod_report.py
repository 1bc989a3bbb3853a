"""The end-of-day report from what the monitor heard (risk's heartbeats and reconciliation
events): per strategy and for the stack, trades, gross, charges, net and the worst
drawdown followed through the day; what waits for a person; written once a trading day
(not again after a restart of the monitor), drawn in headless Chromium and looked at."""

from __future__ import annotations

import json
import os
from datetime import date, datetime, time
from pathlib import Path

import pytest

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.monitor.eod import DayMarks, EodReporter, build, render, summary
from mytrading.monitor.view import View
from tests.monitor.test_monitor_process import chromium

DAEMONS = ("feed", "engine", "risk", "router", "reconciler", "signals", "monitor")


def risk_beat(pnl: dict[str, dict[str, float]], states: dict | None = None) -> wire.Status:
    return wire.Status(
        name="risk", pid=7, state="running", started_ns=0, uptime_s=60, msgs_in=1, msgs_out=1,
        errors=0, gaps=0, lat_p50_us=1, lat_p99_us=2,
        detail={"pnl": pnl, "states": states or {"stack": "active", "strategies": {}}},
    )  # fmt: skip


def book(realized: float, unrealized: float, charges: float, trades: int) -> dict[str, float]:
    return {"realized": realized, "unrealized": unrealized, "charges": charges,
            "net": realized + unrealized - charges, "trades": trades}  # fmt: skip


def at(h: int, m: int, day: int = 20) -> datetime:
    return datetime(2026, 11, day, h, m, tzinfo=IST)


def test_the_days_figures_drawdown_and_what_waits(tmp_path: Path) -> None:
    view = View(DAEMONS)
    marks = DayMarks()
    # through the day: sma up to +3,000 then down to +500 (a 2,500 drawdown), the
    # straddle down to -1,200 from its start at zero, then back to -400
    for t, sma, straddle in (
        (at(9, 30), 1_000.0, -200.0),
        (at(11, 0), 3_000.0, -1_200.0),
        (at(13, 0), 500.0, -700.0),
        (at(15, 30), 1_400.0, -400.0),
    ):
        view.on_status(
            risk_beat({"sma": book(sma, 0.0, 0.0, 4), "straddle": book(straddle, 0.0, 0.0, 2)})
        )
        marks.sample(view, t)
    view.on_status(risk_beat(
        {"sma": book(1_200.0, 300.0, 100.0, 6), "straddle": book(-250.0, -100.0, 50.0, 4)},
        {"stack": "active", "strategies": {"straddle": "halted"}},
    ))  # fmt: skip
    view.on_message(wire.ReconEvent(
        exchange="NFO", symbol="NIFTY29DEC26FUT", product="NRML", ours=65, broker=0, action="",
    ))  # fmt: skip
    marks.sample(view, at(15, 31))  # the day's last figures
    assert marks.today is not None and marks.today.day == date(2026, 11, 20)
    report = build(marks.today, view, recon_since=0.0)
    rows = {r["strategy"]: r for r in report["strategies"]}
    assert rows["sma"] == {"strategy": "sma", "trades": 6, "gross": 1_500.0, "charges": 100.0,
                           "net": 1_400.0, "worst_drawdown": 2_500.0}  # fmt: skip
    assert rows["straddle"]["worst_drawdown"] == 1_200.0 and rows["straddle"]["net"] == -400.0
    # the stack's net: 800, 1,800, -200, 1,000 at the samples: 2,000 down from its high
    assert report["stack"] == {"trades": 10, "gross": 1_150.0, "charges": 150.0, "net": 1_000.0,
                               "worst_drawdown": 2_000.0}  # fmt: skip
    assert any("straddle is HALTED" in n for n in report["needs"])
    assert any(n == "reconciliation mismatch: main/NFO:NIFTY29DEC26FUT ours 65, broker 0"
               for n in report["needs"])  # fmt: skip
    text = summary(report)
    assert text.startswith("end of day 2026-11-20: net 1,000.00 (gross 1,150.00, charges 150.00)")
    assert "2 thing(s) need you" in text

    page = render(report)
    shot = Path(os.environ.get("EOD_PNG") or tmp_path / "eod.png")
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium here")
    from playwright.sync_api import sync_playwright

    f = tmp_path / "eod.html"
    f.write_text(page)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        pg = b.new_page(viewport={"width": 800, "height": 520})
        pg.goto(f.as_uri())
        total = pg.locator("tr.total").inner_text()
        assert "stack" in total and "1,000.00" in total
        box = pg.locator("tr.total td").nth(4).bounding_box()
        pg.screenshot(path=str(shot))
        b.close()
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert box is not None
    cell = img[
        int(box["y"]) : int(box["y"] + box["height"]),
        int(box["x"]) : int(box["x"] + box["width"]),
        :3,
    ]
    green = (cell[..., 1] > cell[..., 0] + 0.2).sum()  # the stack's net, positive: green
    assert green > 20, green


def test_once_a_trading_day_and_not_again_after_a_restart(tmp_path: Path) -> None:
    view = View(DAEMONS)
    view.on_status(risk_beat({"s": book(100.0, 0.0, 10.0, 2)}))
    marks = DayMarks()
    trading = lambda d: d.weekday() < 5  # noqa: E731
    r = EodReporter(tmp_path, time(15, 40))
    marks.sample(view, at(15, 39))
    assert r.due(marks, at(15, 39), trading) is None
    marks.sample(view, at(15, 41))
    day = r.due(marks, at(15, 41), trading)
    assert day is not None and day.day == date(2026, 11, 20)
    page = r.write(build(day, view, 0.0))
    assert page.name == "eod-2026-11-20.html" and r.due(marks, at(15, 50), trading) is None
    assert json.loads((tmp_path / "eod-2026-11-20.json").read_text())["stack"]["net"] == 90.0
    again = EodReporter(tmp_path, time(15, 40))  # the monitor restarted after the report
    assert again.due(marks, at(16, 0), trading) is None
    # a simulated market: from Monday's close straight to Tuesday's morning, never 15:40
    sim = EodReporter(tmp_path, time(15, 40))
    marks.sample(view, at(15, 29, day=23))
    view.on_status(risk_beat({}))  # risk's books for Tuesday: empty
    marks.sample(view, at(9, 15, day=24))
    day = sim.due(marks, at(9, 15, day=24), trading)
    assert day is not None and day.day == date(2026, 11, 23) and day.pnl["s"]["net"] == 90.0
    sim.write(build(day, view, 0.0))
    assert sim.due(marks, at(9, 16, day=24), trading) is None
    # Tuesday, followed from 09:15, is over by Saturday: reported then; a Saturday is no
    # trading day, so nothing is due for it
    marks.sample(view, at(15, 45, day=28))
    day = sim.due(marks, at(15, 45, day=28), trading)
    assert day is not None and day.day == date(2026, 11, 24)
    sim.write(build(day, view, 0.0))
    assert sim.due(marks, at(15, 46, day=28), trading) is None
