"""The monitor in the running stack (supervisord, the simulator server): stopping the
router by hand reaches a local alert channel within 5 s and its recovery follows;
``/metrics`` parses with Prometheus's own parser and carries every metric named in the
issue; the dashboard, in a real headless Chromium driven by Playwright, shows live
numbers that match ``status --json`` and updates itself."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mytrading.messaging.bus import DAEMONS
from mytrading.process import supervise
from mytrading.settings import PROJECT_ROOT, load_settings
from tests.alertsinks import Sink, alerts_toml
from tests.procs import cli, run_cli, stack_env
from tests.simhelpers import free_port

pytestmark = pytest.mark.integration

METRICS = {
    "mytrading_daemon_up",
    "mytrading_heartbeat_age_seconds",
    "mytrading_ticks",
    "mytrading_bars",
    "mytrading_intents",
    "mytrading_risk_approvals",
    "mytrading_risk_rejections",
    "mytrading_orders",
    "mytrading_fills",
    "mytrading_hop_latency_seconds",
    "mytrading_order_latency_seconds",
    "mytrading_feed_coverage_ratio",
    "mytrading_feed_lag_seconds",
    "mytrading_clock_offset_seconds",
    "mytrading_late_ticks",
    "mytrading_bars_closed_by_clock",
    "mytrading_strategy_pnl_rupees",
    "mytrading_margin_used_rupees",
    "mytrading_process_cpu_ratio",
    "mytrading_process_resident_memory_bytes",
    "mytrading_process_open_fds",
    "mytrading_event_loop_lag_max_seconds",
    "mytrading_gc_pause_max_seconds",
    "mytrading_alerts",
}


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("REQUIRE_BROWSER"):
        pytest.fail("REQUIRE_BROWSER is set and chromium is not installed")
    return found


def test_monitor_alerts_metrics_and_dashboard(
    tmp_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = Sink().start()
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    toml = alerts_toml(sink).replace(
        "[channels.openalgo_telegram]\nenabled = true",
        "[channels.openalgo_telegram]\nenabled = false",
    )
    toml = toml.replace(
        "[channels.telegram_bot]\nenabled = true", "[channels.telegram_bot]\nenabled = false"
    )
    (config / "alerts.toml").write_text(toml)
    port = free_port()
    env = stack_env(
        tmp_env,
        monkeypatch,
        MT_CONFIG_DIR=str(config),
        MT_MONITOR_PORT=str(port),
        MT_ALERTS_DB=str(tmp_path / "alerts.sqlite"),
        MT_SIM_SPEED="20",
    )
    base = f"http://127.0.0.1:{port}"

    def state() -> dict[str, Any]:
        return json.loads(get(f"{base}/api/state"))

    def wait(cond: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if cond():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    try:
        r = run_cli("start", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        others = [d for d in DAEMONS if d != "monitor"]

        def all_up() -> bool:
            ds = [d for d in state().get("daemons", []) if d["name"] in others]
            return len(ds) == len(others) and all(d["up"] for d in ds)

        wait(all_up, 40, "every daemon up on the dashboard's snapshot")
        wait(lambda: state().get("fills", 0) > 0, 40, "a fill")

        # -- metrics: Prometheus's own parser, every metric the issue names
        text = get(f"{base}/metrics")
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert set(families) >= METRICS, sorted(METRICS - set(families))
        up = {s.labels["daemon"]: s.value for s in families["mytrading_daemon_up"].samples}
        assert up == {d: 1.0 for d in others}
        assert families["mytrading_fills"].type == "counter"
        assert families["mytrading_order_latency_seconds"].type == "histogram"

        # -- each process's health in `status` (CPU, RSS, files, loop lag, GC)
        text = cli("status", env=env).stdout
        assert "CPU%" in text and "RSS MB" in text and "LAG ms" in text, text
        feed_line = next(ln for ln in text.splitlines() if ln.startswith("feed "))
        assert float(feed_line.split()[-4]) > 20, feed_line  # the feed's RSS, in MB

        # -- the dashboard in Chromium: live numbers that match status --json
        browser = chromium()
        if browser is not None:
            check_dashboard(browser, base, env, tmp_path)

        # -- the router stopped by hand: an alert within 5 s, its recovery when back
        s = load_settings()
        rpc = supervise.rpc(s).supervisor
        rpc.stopProcess("router")
        stopped = time.monotonic()
        wait(lambda: any("router is DOWN" in t for t in sink.texts("hook")), 8, "the alert")
        took = time.monotonic() - stopped
        assert took <= 5.0, took
        rpc.startProcess("router")
        wait(lambda: any("router: is back" in t for t in sink.texts("hook")), 15, "the recovery")
        time.sleep(1.5)
        downs = [t for t in sink.texts("hook") if "router is DOWN" in t]
        assert downs[0].split(" ", 1)[1].startswith("[CRITICAL] mytrading daemon_down")
        assert len(downs) == 1, sink.texts("hook")  # once, not at every evaluation
        log = cli("alerts", "log", "--json", env=env)
        rows = json.loads(log.stdout)
        router = [a for a in rows if a["key"] == "router"]
        assert {a["kind"] for a in router} == {"fire", "recover"}
        assert all(d["state"] == "sent" for a in router for d in a["deliveries"])
        (tmp_path / "alerts-seen.txt").write_text(f"{took:.2f} s\n" + "\n".join(sink.texts("hook")))
    finally:
        run_cli("stop", env=env)
        sink.stop()


def check_dashboard(browser: str, base: str, env: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=browser,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = b.new_page(viewport={"width": 1300, "height": 1100})
        page.goto(base + "/")
        # (no wait_for_function: the page's CSP forbids the eval it relies on, as it should)
        page.locator("#daemons tr").nth(6).wait_for()
        first = page.inner_text("#updated")
        deadline = time.monotonic() + 10
        while page.inner_text("#updated") == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert page.inner_text("#updated") != first, "the page never updated itself"
        for el in ("#daemons", "#strategies", "#pnl-chart", "#risk-events", "#recon-summary"):
            assert page.is_visible(el), el
        page.wait_for_selector("#pnl-line", timeout=15_000)  # the curve: a point every 5 s
        # a strategy's fills on the page, and in status --json, agree (they may move)
        deadline = time.monotonic() + 20
        while True:
            st = json.loads(cli("status", "--json", env=env).stdout)
            fills = st["daemons"]["engine"]["detail"]["strategies"]["sma_crossover"]["fills"]
            row = page.locator("#strategies tr", has_text="sma_crossover").inner_text()
            shown = int(row.split("\t")[2])
            if shown == fills or time.monotonic() > deadline:
                break
        assert shown == fills, (row, fills)
        daemons = page.inner_text("#daemons")
        assert daemons.count("running") >= 6, daemons  # every daemon but the monitor itself
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        b.close()
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)  # the picture itself: tables, the curve, colours, not blank
    assert img.shape[0] >= 1000 and img.shape[1] >= 1200
    colours = {tuple(px) for px in (img[::4, ::4, :3] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 40
    red_or_green = (img[..., 0] > 0.6) & (img[..., 1] < 0.3) | (img[..., 1] > 0.4) & (
        img[..., 0] < 0.2
    )
    assert red_or_green.sum() > 200  # the P&L curve and the daemons' state are drawn
