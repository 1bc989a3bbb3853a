"""Risk from the command line: the kill switch, trading states, limits and their use,
risk events; each change goes through the command layer (``control/actions.py``): sent
to the running risk daemon, confirmed from its heartbeat, and kept on record."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from mytrading.commands.common import settings_or_exit

app = typer.Typer(help="Risk: trading states, limits, P&L.")


def kill_switch(
    value: Annotated[str, typer.Argument(help="on | flatten | off")],
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """on: the whole stack HALTED: no new entry from any source (strategies, webhooks,
    followers), every working entry order cancelled at every account; exits that only
    reduce a position still pass, so protective stops are placed and kept. flatten: on,
    and every position is closed through risk's exits until the broker's book agrees.
    off: ACTIVE. Waits for risk to confirm (and for the entries' cancels, up to 15 s)."""
    from mytrading.commands.control import control

    ctl, view = control()
    try:
        answer = ctl.kill_switch(value, reason)
        typer.echo(answer.text, err=not answer.ok)
        if not answer.ok:
            raise typer.Exit(1 if value in ("on", "off", "flatten") else 2)
        detail = ctl.risk() or {}
        if value == "off":
            return
        deadline = time.monotonic() + 15  # the entries' cancels confirmed by their brokers
        while detail.get("entries_halted") and time.monotonic() < deadline:
            view.refresh(0.3)
            detail = ctl.risk() or detail
    finally:
        view.close()
    left = detail.get("entries_halted", 0)
    typer.echo(
        "every working entry order is cancelled at its broker"
        if not left
        else f"{left} entry orders still working: cancels sent, not yet confirmed "
        "(see `main.py status`)"
    )
    if value == "flatten":
        typer.echo(
            f"closing {detail.get('positions_open', 0)} positions through risk's exits; "
            "`main.py status` shows them go"
        )


@app.callback(invoke_without_command=True)
def risk_show(ctx: typer.Context) -> None:
    """Trading states, limits and their use, P&L per strategy (from the running stack)."""
    if ctx.invoked_subcommand is not None:
        return
    from mytrading.process.status import StatusCollector

    s = settings_or_exit()
    collector = StatusCollector(s)
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and "risk" not in collector.daemons:
            collector.poll(0.2)
        risk = collector.daemons.get("risk")
        if risk is None:
            typer.echo("no heartbeat from risk: is the stack running?", err=True)
            raise typer.Exit(1)
        collector.poll(0.3)
        typer.echo(render_risk(risk.status.detail, collector))
    finally:
        collector.close()


def render_risk(d: dict[str, Any], collector: Any) -> str:
    from mytrading.domain.trading_states import describe, stack_line

    states = d.get("states", {})
    lines = [f"stack: {stack_line(states) or 'ACTIVE'}"]
    for name in sorted(states.get("strategies", {})):
        lines.append(f"  {name}: {describe(states, name)}")
    limits = d.get("limits", {})
    lines.append("limits (config/risk.toml):")
    for k, v in limits.get("defaults", {}).items():
        lines.append(f"  {k:<24} {v}")
    for name, diff in sorted(limits.get("strategies", {}).items()):
        lines.append(f"  {name}: {diff}")
    lines.append(f"  stack: {limits.get('stack', {})}")
    lines.append(f"approved {d.get('approved', 0)}, rejected {d.get('rejected', {}) or 0}")
    free = d.get("margin_free")
    lines.append(f"margin: available {d.get('margin_available')}, free after approvals {free}")
    defaults = limits.get("defaults", {})
    lines.append(
        f"{'STRATEGY':<22}{'STATE':>10}{'LOTS':>12}{'SYMBOLS':>10}{'ORD/MIN':>10}"
        f"{'REALIZED':>12}{'UNREAL.':>11}{'CHARGES':>10}{'NET':>11}"
    )
    from mytrading.domain.trading_states import effective

    for name in sorted(set(d.get("use", {})) | set(d.get("pnl", {}))):
        lim = {**defaults, **limits.get("strategies", {}).get(name, {})}
        u = d.get("use", {}).get(name, {})
        p = d.get("pnl", {}).get(name, {})
        lines.append(
            f"{name[:21]:<22}{effective(states, name).upper():>10}"
            f"{u.get('lots', 0):>6g}/{lim.get('max_strategy_lots', '?'):<5}"
            f"{u.get('open_positions', 0):>4}/{lim.get('max_open_positions', '?'):<5}"
            f"{u.get('orders_last_minute', 0):>4}/{lim.get('max_orders_per_min', '?'):<5}"
            f"{p.get('realized', 0.0):>12.2f}{p.get('unrealized', 0.0):>11.2f}"
            f"{p.get('charges', 0.0):>10.2f}{p.get('net', 0.0):>11.2f}"
        )
    return "\n".join(lines)


@app.command("events")
def risk_events(
    n: Annotated[int, typer.Option("-n", help="how many, newest first")] = 30,
) -> None:
    """Risk events from DuckDB (MT_RISK_DB): rejections, triggers, exits, state changes."""
    import duckdb

    from mytrading.risk.events import outbox_path, read_events

    s = settings_or_exit()
    if not s.stores.risk_db.exists() and not outbox_path(s.stores.risk_db).exists():
        typer.echo(f"no risk events yet ({s.stores.risk_db})", err=True)
        raise typer.Exit(1)
    try:
        rows = read_events(s.stores.risk_db, n)
    except duckdb.Error as exc:
        typer.echo(f"{s.stores.risk_db} cannot be read now: {exc}", err=True)
        raise typer.Exit(1) from None
    for row in rows:
        ts, strategy, kind, rule, thr, val, action, reason, oids, detail, _intent = row
        typer.echo(
            f"{ts}  {strategy:<22} {kind:<15} {rule:<18} threshold {thr:g} value {val:g} "
            f"{action}  {reason}"
            + (f"  orders {','.join(oids)}" if oids else "")
            + (f"  {detail}" if detail else "")
        )


@app.command("state")
def risk_state(
    value: Annotated[str, typer.Argument(help="active | reducing | halted")],
    strategy: Annotated[str, typer.Option("--strategy", help="one strategy; default: all")] = "",
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """Set the trading state of the whole stack or of one strategy; waits for risk."""
    from mytrading.commands.control import control

    ctl, view = control()
    try:
        answer = ctl.state(strategy or "*", value, reason)
    finally:
        view.close()
    typer.echo(answer.text, err=not answer.ok)
    if not answer.ok:
        raise typer.Exit(2 if "state must be one of" in answer.text else 1)


def register(root: typer.Typer) -> None:
    """Add this area's commands to the top level of ``root``."""
    root.command("kill-switch")(kill_switch)
