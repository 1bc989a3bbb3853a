"""The HTTP control API and its page on real daemons (router, risk, monitor on the
in-process simulated broker): tokens made and revoked by the command line, changes refused
without one (recorded), forged ones (not JSON, another site's Origin) refused, each change
confirmed by risk and idempotent, a rate per token, the OpenAPI description, the same
status through the API and the command line; then the control page in headless Chromium
pausing and resuming a strategy and turning the kill switch on through its confirmation,
on a phone's screen (the picture kept and looked at)."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mytrading.control.record import CommandRecord
from mytrading.monitor.eodshadow import section
from mytrading.monitor.shadowrun import Outcome
from tests.monitor.test_eod_shadow import SHADOW
from tests.monitor.test_monitor_process import chromium
from tests.procs import Watcher, cli, settings_of, spawn, stop_all

NAME = "sma_crossover"


def call(
    base: str,
    path: str,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if body is not None and "Content-Type" not in (headers or {}):
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.integration
def test_the_control_api_and_its_page(tmp_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(tmp_env)
    s = settings_of(env)
    base = f"http://127.0.0.1:{s.monitor.port}"
    w = Watcher(s, ("sys.status.",))
    procs = {d: spawn(d, env) for d in ("router", "risk", "monitor")}
    try:
        w.wait(lambda: set(w.status) >= {"router", "risk", "monitor"}, 60, "the daemons")
        made = cli("control", "token", "new", "ops", env=env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[0]
        assert token.startswith("mt_") and "revoke ops" in made.stderr
        auth = {"Authorization": f"Bearer {token}"}

        def ready() -> bool:
            code, got = call(base, "/api/v1/status", headers=auth)
            return code == 200 and "risk" in got["daemons"]

        w.wait(ready, 20, "the API seeing risk")
        # the same status through the API and the command line at the same moment
        code, api = call(base, "/api/v1/status", headers=auth)
        shell = json.loads(cli("control", "status", "--json", env=env).stdout.splitlines()[-1])
        assert set(api["daemons"]) == set(shell["daemons"]) >= {"router", "risk"}

        pause = f"/api/v1/strategies/{NAME}/pause"
        assert call(base, pause, "POST", {})[0] == 401  # no token, even on loopback
        assert call(base, pause, "POST", {}, {"Authorization": "Bearer mt_wrong"})[0] == 401
        form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
        assert call(base, pause, "POST", b"x=1", form)[0] == 403  # not JSON: a form's
        evil = {**auth, "Origin": "http://evil.example"}
        code, got = call(base, pause, "POST", {}, evil)
        assert code == 403 and "another site" in got["text"]

        code, got = call(base, pause, "POST", {"reason": "lunch"}, auth)
        assert code == 200 and got["changed"] and got["outcome"] == "done", got
        code, got = call(base, pause, "POST", {}, {"X-Control-Token": token})
        assert code == 200 and not got["changed"] and "already" in got["text"]
        code, got = call(base, "/api/v1/strategies", headers=auth)
        row = next(r for r in got["strategies"] if r["name"] == NAME)
        assert row["state"] == "halted" and "lunch" in row["why"]
        code, got = call(base, "/api/v1/strategies/nope/pause", "POST", {}, auth)
        assert code == 404 and NAME in got["strategies"]
        assert call(base, "/api/v1/kill-switch", "POST", {"state": "sideways"}, auth)[0] == 400
        code, got = call(base, "/api/v1/kill-switch", "POST", {"state": "on"}, auth)
        assert code == 200 and got["changed"]
        assert call(base, "/api/v1/kill-switch", "POST", {"state": "off"}, auth)[0] == 200
        code, got = call(base, f"/api/v1/strategies/{NAME}/resume", "POST", {}, auth)
        assert code == 200 and "lunch" in got["text"]  # what had halted it
        # parameters: a body without them is 400; no engine here: 503, nothing changed
        params = f"/api/v1/strategies/{NAME}/params"
        assert call(base, params, "PUT", {"lots": 2}, auth)[0] == 400
        code, got = call(base, params, "PUT", {"params": {"lots": 2}}, auth)
        assert code == 503 and "the engine is not running: nothing was changed" in got["text"]
        assert call(base, f"/api/v1/strategies/{NAME}/enable", "POST", {}, auth)[0] == 503

        code, spec = call(base, "/api/v1/openapi.json")
        assert code == 200 and "/api/v1/kill-switch" in spec["paths"]
        assert "/api/v1/strategies/{name}/stop" in spec["paths"]
        assert "put" in spec["paths"]["/api/v1/strategies/{name}/params"]

        # the latest end-of-day report's shadow, as the monitor writes it: read by the API
        reports = s.log_dir / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        shadow = section(Outcome(SHADOW))
        (reports / "eod-2026-11-20.json").write_text(json.dumps({"day": "2026-11-20",
                                                                 "shadow": shadow}))  # fmt: skip
        (reports / "eod-2026-11-20.html").write_text("<p>page</p>")
        code, got = call(base, "/api/v1/shadow", headers=auth)
        assert code == 200 and got["shadow"] == shadow and got["day"] == "2026-11-20", got

        # the page, in a real browser on a phone's screen
        browser = chromium()
        if browser is not None:
            page_test(browser, base, token, tmp_path)

        # a rate per token: the 61st request within the minute is refused
        made2 = cli("control", "token", "new", "bot", env=env).stdout.strip().splitlines()[0]
        codes = [call(base, "/api/v1/control-log?n=1", headers={"X-Control-Token": made2})[0]
                 for _ in range(61)]  # fmt: skip
        assert codes[:60] == [200] * 60 and codes[60] == 429

        # a flood without a token: refused, counted, recorded only so far (no disk filled)
        for _ in range(40):
            assert call(base, pause, "POST", {})[0] == 401
        w.wait(
            lambda: (
                w.status["monitor"].detail["control_refused"].get("not recorded (flood)", 0) >= 10
            ),
            10,
            "the flood counted",
        )
        assert cli("control", "token", "revoke", "ops", env=env).returncode == 0
        assert call(base, pause, "POST", {}, auth)[0] == 401  # at once
        assert "ops" in cli("control", "token", "list", env=env).stdout

        procs["risk"].send_signal(signal.SIGTERM)
        procs["risk"].wait(timeout=10)
        w.pump(6.0)
        third = cli("control", "token", "new", "ops2", env=env).stdout.strip().splitlines()[0]
        code, got = call(base, pause, "POST", {}, {"X-Control-Token": third})
        assert code == 503 and got["text"] == "risk is not running: nothing was changed"
    finally:
        stop_all(p for p in procs.values() if p.poll() is None)
        w.close()

    rec = CommandRecord(s.stores.control_db)
    said = [(e.who, e.command, e.outcome, e.message) for e in rec.recent(500)]
    rec.close()
    assert ("unauthorized", "POST " + pause, "refused", "a token in force is required") in said
    assert ("unauthorized", "POST " + pause, "refused", "token unknown or revoked") in said
    assert ("api:ops", "pause", "done", f"{NAME} paused (confirmed by risk)") in said
    assert ("api:bot", "GET /api/v1/control-log", "refused", "rate limit") in said
    assert sum(1 for who, *_ in said if who == "unauthorized") <= 30  # the flood, capped


def page_test(browser: str, base: str, token: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shot = Path(os.environ.get("CONTROL_PNG") or tmp_path / "control.png")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser, args=["--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        dialogs: list[str] = []

        def accept(d: Any) -> None:
            dialogs.append(d.message)
            d.accept()

        page.on("dialog", accept)
        page.goto(base + "/control")
        page.fill("#token", token)
        page.click("#save")
        card = page.locator(f'.strategy[data-name="{NAME}"]')
        card.wait_for()
        card.locator('button[data-act="pause"]').click()
        state = card.locator(".state")  # (the page's CSP forbids eval: no wait_for_function)
        state.filter(has_text="HALTED").wait_for(timeout=10_000)
        assert "paused" in page.inner_text("#said")
        card.locator('button[data-act="resume"]').click()
        state.filter(has_text="ACTIVE").wait_for(timeout=10_000)
        page.click('button[data-kill="on"]')
        page.locator("#kill", has_text="on").wait_for(timeout=10_000)
        assert dialogs == ["Kill switch ON: halt every strategy?"]
        page.locator("#shadow", has_text="vs shadow +310.00").wait_for(timeout=10_000)
        log = page.inner_text("#log")
        assert "kill_switch" in log and "api:ops" in log
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width  # no sideways scrolling on a phone
        page.screenshot(path=str(shot), full_page=True)
        page.click('button[data-kill="off"]')
        page.locator("#kill", has_text="off").wait_for(timeout=10_000)
        b.close()
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[1] == 780  # 390 CSS pixels at 2x
