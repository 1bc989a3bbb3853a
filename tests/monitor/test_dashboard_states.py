"""The dashboard drawn from a snapshot of real status messages, in headless Chromium: an
expired broker session is a red banner under the orders line, a strategy whose history is
still on the way says "warming up", the feed's lag and the broker's clock are shown. The
picture is looked at for the banner's red."""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.monitor.snapshot import snapshot
from mytrading.monitor.view import View
from mytrading.settings import PROJECT_ROOT
from tests.monitor.test_monitor_process import chromium

DAEMONS = ["feed", "engine", "risk", "router", "reconciler", "signals", "monitor"]
GREEKS = {"NIFTY": {"delta": -12.3, "gamma": -0.0421, "theta": 2150.0, "vega": -1830.0}}


def status(name: str, detail: dict) -> wire.Status:
    return wire.Status(
        name=name, pid=100, state="running", started_ns=0, uptime_s=60, msgs_in=1,
        msgs_out=1, errors=0, gaps=0, lat_p50_us=1, lat_p99_us=2, detail=detail,
    )  # fmt: skip


def test_an_expired_session_and_a_warming_strategy_are_shown(tmp_path: Path) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium here")
    from playwright.sync_api import sync_playwright

    view = View(DAEMONS)
    view.on_status(status("router", {
        "venue": {"live": True, "banner": "LIVE: REAL ORDERS to http://127.0.0.1:15000 for main"},
        "sessions_expired": {"main": {"state": "expired", "probes": 3}},
    }))  # fmt: skip
    strategies = {
        "sma_crossover": {"fills": 4, "pnl": 120.0, "warming": []},
        "warm_many": {"fills": 0, "pnl": 0.0, "warming": ["NSE:INFY 1m"]},
        "straddle": {"fills": 2, "pnl": -55.0, "warming": [], "greeks": GREEKS},
    }
    view.on_status(status("engine", {"strategies": strategies}))
    view.on_status(status("feed", {
        "coverage": "41/41 symbols fresh within 5 s", "bars": 120, "bars_by_clock": 7,
        "lag": {"main": {"ticks": 5000, "p50_ms": 310.0, "p99_ms": 2400.0}},
        "clock_offset_ping_s": -3.4, "late_ticks": 12, "late_ticks_last_minute": 2,
    }))  # fmt: skip
    for d in ("risk", "reconciler", "signals", "monitor"):
        view.on_status(status(d, {}))
    # the P&L curve over two sessions, sampled only while the market is open: drawn in
    # order (trading time), a line where the second day starts, hover with the time
    day1 = datetime(2026, 11, 5, 9, 15, tzinfo=IST).timestamp()
    day2 = datetime(2026, 11, 6, 9, 15, tzinfo=IST).timestamp()
    for i in range(60):
        view.sample_curve(day1 + 300 * i, market_open=True)
    view.sample_curve(day1 + 3600 * 8, market_open=False)  # the evening: not a point
    for i in range(30):
        view.sample_curve(day2 + 300 * i, market_open=True)
    assert len(view.curve) == 90
    snap = snapshot(view, [], 0, 3.0)
    html = (PROJECT_ROOT / "mytrading" / "monitor" / "dashboard.html").read_text()
    stream = 'const source = new EventSource("/events");'
    assert stream in html
    page_file = tmp_path / "dashboard.html"
    listen = "source.onmessage = ev => render(JSON.parse(ev.data));"
    page_file.write_text(
        html.replace(stream, f"render({json.dumps(snap)});", 1).replace(listen, "")
    )
    shot = Path(os.environ.get("DASHBOARD_PNG") or tmp_path / "dashboard.png")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1300, "height": 900})
        page.goto(page_file.as_uri())
        assert page.is_visible("#session")
        assert "BROKER SESSION EXPIRED for main" in page.inner_text("#session")
        row = page.locator("#strategies tr", has_text="warm_many").inner_text()
        assert "warming up" in row
        assert (
            "warming" not in page.locator("#strategies tr", has_text="sma_crossover").inner_text()
        )
        row = page.locator("#strategies tr", has_text="straddle").inner_text()
        assert "NIFTY Δ -12.3 Γ -0.042 Θ 2150 V -1830" in row
        feed = page.inner_text("#feed-summary")
        assert "broker clock -3.40 s vs ours" in feed and "late ticks 2 last minute" in feed
        assert "0.31" in page.inner_text("#feed-lag") and "2.40" in page.inner_text("#feed-lag")
        xs = [float(pt.split(",")[0]) for pt in
              page.get_attribute("#pnl-line", "points").split()]  # type: ignore[union-attr]  # fmt: skip
        steps = {round(b - a, 3) for a, b in itertools.pairwise(xs)}
        assert len(xs) == 90 and max(steps) - min(steps) <= 0.11  # even (0.1 rounding): no night
        day_line = page.locator("#pnl-days line")
        assert day_line.count() == 1
        assert abs(float(day_line.get_attribute("x1") or 0) - xs[60]) < 0.1
        assert page.text_content("#pnl-days") == "11-06"
        chart = page.locator("#pnl-chart").bounding_box()
        assert chart is not None
        page.mouse.move(chart["x"] + chart["width"] * 60 / 89, chart["y"] + 40)
        assert (page.text_content("#pnl-hover") or "").startswith("2026-11-06 09:15 IST")
        box = page.locator("#session").bounding_box()
        page.screenshot(path=str(shot))
        b.close()
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert box is not None
    y, x = int(box["y"] + box["height"] / 2), int(box["x"])
    r, g, bl = img[y, x : x + 2, :3].mean(axis=0)  # the banner's 2-px left border: red
    assert r > 0.6 and g < 0.3 and bl < 0.3, (r, g, bl)
    r, g, bl = img[y, x + 6, :3]  # inside it: the light red fill
    assert r > 0.95 and 0.8 < g < 0.95, (r, g, bl)


def test_greeks_reach_status_and_metrics() -> None:
    """The engine's Greeks per strategy: in `main.py status` (and the stack's per
    underlying) and in /metrics, per strategy and summed."""
    from prometheus_client import generate_latest

    from mytrading.monitor.metrics import registry
    from mytrading.process.status import greek_lines

    strategies = {
        "a": {"greeks": GREEKS},
        "b": {"greeks": {"NIFTY": {"delta": 2.3, "gamma": 0.0021, "theta": -150.0, "vega": 30.0,
                                   "unpriced": 1}}},
        "flat": {"greeks": {}},
    }  # fmt: skip
    lines = greek_lines(strategies)
    assert lines[0].split() == ["GREEKS", "UNDERLYING", "DELTA", "GAMMA", "THETA/D", "VEGA"]
    assert lines[1].split()[:3] == ["a", "NIFTY", "-12.3"]
    assert lines[2].endswith("(1 unpriced)")
    assert lines[3].split() == ["stack", "NIFTY", "-10.0", "-0.040", "+2,000", "-1,800"]
    assert greek_lines({"flat": {}}) == []
    view = View(DAEMONS)
    view.on_status(status("engine", {"strategies": strategies}))
    for d in ("feed", "risk", "router", "reconciler", "signals", "monitor"):
        view.on_status(status(d, {}))
    snap = snapshot(view, [], 0, 3.0)
    text = generate_latest(registry(lambda: snap)[0]).decode()
    assert 'mytrading_strategy_greek{greek="delta",strategy="a",underlying="NIFTY"} -12.3' in text
    assert 'mytrading_stack_greek{greek="vega",underlying="NIFTY"} -1800.0' in text
