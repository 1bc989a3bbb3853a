"""One plain, JSON-ready picture of the stack, made on the monitor's loop from its ``View``
and handed whole to the HTTP thread (the dashboard, its event stream, ``/metrics``): the
HTTP side never reads the view while the loop writes it."""

from __future__ import annotations

import time
from typing import Any

from mytrading.monitor.view import View
from mytrading.process.status import clock_offset_s

EVENTS_SHOWN = 15


def snapshot(
    view: View, alerts: list[dict], pending: int, down_after_s: float, now: float | None = None
) -> dict[str, Any]:
    now = time.monotonic() if now is None else now
    daemons = []
    for name in view.daemons:
        seen = view.beats.get(name)
        if seen is None:
            daemons.append({"name": name, "up": False, "state": "never seen"})
            continue
        st, age = seen.status, now - seen.at
        daemons.append(
            {
                "name": name,
                "up": age <= down_after_s,
                "state": st.state if age <= down_after_s else "DOWN",
                "pid": st.pid,
                "age_s": round(age, 2),
                "uptime_s": st.uptime_s,
                "msgs_in": st.msgs_in,
                "msgs_out": st.msgs_out,
                "errors": st.errors,
                "gaps": st.gaps,
                "lat_p50_us": round(st.lat_p50_us, 1),
                "lat_p99_us": round(st.lat_p99_us, 1),
                "health": st.detail.get("health", {}),
            }
        )
    engine = view.detail("engine").get("strategies", {})
    webhook = view.detail("signals").get("strategies", {})
    pnl = view.strategy_pnl()
    strategies = []
    for name in sorted(set(engine) | set(webhook) | set(pnl)):
        e = engine.get(name) or webhook.get(name) or {}
        p = pnl.get(name, {})
        strategies.append(
            {
                "name": name,
                "kind": "webhook" if name in webhook else "python",
                "fills": e.get("fills", 0),
                "open_orders": e.get("open_orders", 0),
                "positions": e.get("positions", {}),
                "greeks": e.get("greeks", {}),
                "quarantined": e.get("quarantined", ""),
                "warming": e.get("warming", []),
                "pnl_gross": e.get("pnl", 0.0),
                "pnl_net": p.get("net"),
                "realized": p.get("realized"),
                "unrealized": p.get("unrealized"),
                "charges": p.get("charges"),
            }
        )
    risk = view.detail("risk")
    recon = view.detail("reconciler")
    feed = view.detail("feed")
    where = view.detail("router").get("venue", {})
    return {
        "generated": time.time(),
        # where orders go, as the router says: LIVE is shown on every view
        "venue": {"live": bool(where.get("live")), "banner": where.get("banner", "")},
        "sessions_expired": sorted(view.detail("router").get("sessions_expired") or {}),
        "daemons": daemons,
        "strategies": strategies,
        "positions": [
            {
                "account": p.account,
                "strategy": p.strategy,
                "symbol": p.symbol,
                "product": p.product,
                "quantity": p.quantity,
                "avg_price": p.avg_price,
                "ltp": p.ltp,
                "pnl": round(p.realized_pnl + p.unrealized_pnl, 2),
            }
            for p in view.positions.values()
            if p.quantity or p.realized_pnl
        ],
        "net_pnl": round(view.net_pnl(), 2),
        "curve": [[t, v] for t, v in view.curve],
        "risk": {
            "kill_switch": bool(risk.get("kill_switch")),
            "kill_mode": risk.get("kill_mode", "off"),
            "entries_halted": risk.get("entries_halted", 0),
            "states": risk.get("states", {}),
            "approved": risk.get("approved", 0),
            "rejected": risk.get("rejected", {}),
            "margin_available": risk.get("margin_available", {}),
            "margin_free": risk.get("margin_free", {}),
            "rolls": risk.get("rolls", {}),
            "events": [
                {
                    "time": t,
                    "strategy": ev.strategy,
                    "kind": ev.kind,
                    "rule": ev.rule,
                    "reason": ev.reason,
                    "action": ev.action,
                }
                for t, ev in list(view.risk_events)[-EVENTS_SHOWN:]
            ][::-1],
        },
        "recon": {
            "last_result": recon.get("last_result", ""),
            "checks": recon.get("checks", 0),
            "mismatches": recon.get("mismatches", 0),
            "events": [
                {
                    "time": t,
                    "account": ev.account,
                    "symbol": ev.symbol,
                    "ours": ev.ours,
                    "broker": ev.broker,
                }
                for t, ev in list(view.recon_events)[-EVENTS_SHOWN:]
            ][::-1],
        },
        "feed": {
            "coverage": feed.get("coverage", ""),
            "ticks": feed.get("ticks", 0),
            "bars": feed.get("bars", 0),
            "instruments": feed.get("instruments", 0),
            "failovers": feed.get("failovers", 0),
            "lag": feed.get("lag") or {},
            "clock_offset_s": clock_offset_s(feed),
            "late_ticks": feed.get("late_ticks", 0),
            "late_ticks_last_minute": feed.get("late_ticks_last_minute", 0),
            "bars_by_clock": feed.get("bars_by_clock", 0),
        },
        "orders": dict(view.orders),
        "fills": view.fills,
        "unknown_orders": sorted(view.unknown),
        "funds": {
            a: {"available": f.available, "utilised": f.utilised} for a, f in view.funds.items()
        },
        "alerts": alerts,
        "alerts_pending": pending,
    }
