"""``main.py alerts``: send a test message on every channel, and list what was sent."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from mytrading.domain.refdata import IST
from mytrading.process.consoles import err, out, settings_or_exit

app = typer.Typer(help="Alerts: test the channels, list what was sent (config/alerts.toml).")


@app.command("test")
def test_cmd() -> None:
    """Send one test message on every enabled channel now, and record it in the alerts
    log; exit 1 if a channel failed (its error is shown; nothing is retried)."""
    from mytrading.monitor.channels import ChannelError, build_channels
    from mytrading.monitor.config import load_alerts
    from mytrading.monitor.store import AlertStore
    from mytrading.settings import ConfigError

    s = settings_or_exit()
    try:
        cfg = load_alerts(s.config_dir / "alerts.toml")
    except ConfigError as exc:
        err.print(f"configuration error:\n{exc}")
        raise typer.Exit(2) from None
    channels, problems = build_channels(cfg, s)
    for p in problems:
        err.print(f"channel not usable: {p}")
    if not channels:
        err.print("no channel enabled in config/alerts.toml: nothing to test")
        raise typer.Exit(1)
    store = AlertStore(s.stores.alerts_db)
    now = time.time()
    text = f"[TEST] mytrading alerts test at {datetime.now(IST):%Y-%m-%d %H:%M:%S %Z}"
    aid = store.add(now, "test", "*", "info", "test", text, [c.name for c in channels])
    failed = 0
    for c in channels:
        try:
            c.send(aid, "info", f"#{aid} {text}")
        except ChannelError as exc:
            failed += 1
            store.given_up(aid, c.name, str(exc))  # a test is not retried
            err.print(f"{c.name}: FAILED: {exc}")
            continue
        store.sent(aid, c.name, time.time())
        out.print(f"{c.name}: sent")
    store.close()
    if failed:
        raise typer.Exit(1)


@app.command("log")
def log_cmd(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 30,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The latest alerts, newest first, with each channel's delivery."""
    from mytrading.monitor.store import AlertStore

    s = settings_or_exit()
    store = AlertStore(s.stores.alerts_db)
    rows = store.log(limit)
    store.close()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    t = Table("#", "time (IST)", "severity", "rule", "message", "delivered")
    for r in rows:
        when = datetime.fromtimestamp(r["created"], IST).strftime("%m-%d %H:%M:%S")
        dl = ", ".join(
            f"{d['channel']} {d['state']}"
            + (f" ({d['attempts']} tries)" if d["attempts"] > 1 else "")
            for d in r["deliveries"]
        )
        t.add_row(str(r["id"]), when, r["severity"], r["rule"], r["text"], dl or "no channel")
    out.print(t if rows else "no alerts yet")
