"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.procs import stop_all  # re-exported: the benches stop their daemons as tests do

__all__ = ["private_state", "pump", "stop_all", "unlimited_config"]


def private_state(tmp: Path) -> dict[str, str]:
    """A bench's stack kept to ``tmp``: its logs, run directory, state and stores (the
    benches that start daemons each wrote these lines out; new ones take them here)."""
    return {
        "MT_LOG_DIR": str(tmp / "logs"),
        "MT_RUN_DIR": str(tmp / "run"),
        "MT_STATE_DIR": str(tmp / "state"),
        "MT_RECORD_DB": str(tmp / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(tmp / "data" / "risk.duckdb"),
    }


def unlimited_config(into: Path) -> Path:
    """A copy of config/ whose risk limits cannot bind (no caps, windows all day, margin
    a rupee a lot): benchmarks measure the path, not the limits. Returns the directory."""
    root = Path(__file__).resolve().parent.parent
    dest = into / "config"
    shutil.copytree(root / "config", dest)
    (dest / "risk.toml").write_text(
        "[defaults]\n"
        "max_order_lots = 1000\nmax_intent_lots = 1000\nmax_order_notional = 1e15\n"
        "max_position_lots = 1000000\nmax_strategy_lots = 1000000\nmax_open_positions = 1000\n"
        "max_orders_per_sec = 1000000\nmax_orders_per_min = 100000000\n"
        'entry_window = "00:00-23:59"\nexit_window = "00:00-23:59"\n'
        "price_band_pct = 100\noption_price_band_pct = 100\n"
        "[stack]\ndaily_loss_limit = 0\nmax_drawdown = 0\n"
    )
    margins = (dest / "margins.toml").read_text()
    for n in (
        "205000",
        "250000",
        "320000",
        "215000",
        "180000",
        "220000",
        "225000",
        "290000",
        "185000",
    ):
        margins = margins.replace(n, "1")
    (dest / "margins.toml").write_text(margins)
    return dest


def pump(sub: Any, status: dict[str, Any], seconds: float) -> list[Any]:
    """Read ``sub`` for ``seconds``: heartbeats go into ``status`` by daemon, every other
    message is returned in order."""
    import time

    from mytrading.messaging import wire

    out = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if sub.sock.poll(int(left * 1000) + 1):
            _, m = sub.recv()
            if isinstance(m, wire.Status):
                status[m.name] = m
            else:
                out.append(m)
    return out
