"""Risk from the command line: the kill switch, trading states, limits and their use,
risk events; each command sent to the running risk daemon and confirmed from its
heartbeat."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
import zmq

from mytrading.commands.common import settings_or_exit, who
from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher

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
    if value not in ("on", "off", "flatten"):
        typer.echo("kill-switch takes 'on', 'flatten' or 'off'", err=True)
        raise typer.Exit(2)
    detail = send_command(
        wire.Command(command="kill_switch", value=value, reason=reason, issued_by=who()),
        lambda d: d.get("kill_mode") == value,
        f"kill switch {value}",
    )
    if value == "off":
        return
    if detail.get("entries_halted"):
        from mytrading.process.status import StatusCollector

        s = settings_or_exit()
        collector = StatusCollector(s)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                collector.poll(0.3)
                risk = collector.daemons.get("risk")
                if risk is not None and not risk.status.detail.get("entries_halted"):
                    detail = risk.status.detail
                    break
        finally:
            collector.close()
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
        ts, strategy, kind, rule, thr, val, action, reason, oids = row
        typer.echo(
            f"{ts}  {strategy:<22} {kind:<15} {rule:<18} threshold {thr:g} value {val:g} "
            f"{action}  {reason}" + (f"  orders {','.join(oids)}" if oids else "")
        )


@app.command("state")
def risk_state(
    value: Annotated[str, typer.Argument(help="active | reducing | halted")],
    strategy: Annotated[str, typer.Option("--strategy", help="one strategy; default: all")] = "",
    reason: Annotated[str, typer.Option("--reason")] = "",
) -> None:
    """Set the trading state of the whole stack or of one strategy; waits for risk."""
    from mytrading.risk.state import STATES

    if value not in STATES:
        typer.echo(f"state must be one of {', '.join(STATES)}", err=True)
        raise typer.Exit(2)
    target = strategy or "*"

    def done(d: dict[str, Any]) -> bool:
        st = d.get("states", {})
        if target == "*":
            return st.get("stack") == value
        return st.get("strategies", {}).get(target, "active") == value

    send_command(
        wire.Command(command="state", value=value, reason=reason, issued_by=who(), target=target),
        done,
        f"{'stack' if target == '*' else target} {value.upper()}",
    )


def send_command(cmd: wire.Command, confirmed: Any, what: str) -> dict[str, Any]:
    """Push a command to risk and wait (5 s) until its heartbeat shows the result;
    returns risk's detail then."""
    from mytrading.process.status import StatusCollector

    s = settings_or_exit()
    collector = StatusCollector(s)
    ctx = zmq.Context()
    pusher = Pusher(ctx, s.endpoints()["pipe.commands"], "cli", "command")  # after collector:
    # the collector made this process's tcp sockets CURVE clients with the operator's key
    try:
        deadline = time.monotonic() + 5
        sent = False
        while time.monotonic() < deadline:
            sent = sent or pusher.send(cmd)
            collector.poll(0.2)
            risk = collector.daemons.get("risk")
            if sent and risk and confirmed(risk.status.detail):
                typer.echo(f"{what} (confirmed by risk pid {risk.status.pid})")
                return risk.status.detail
        typer.echo(f"risk did not confirm {what}: is the stack running?", err=True)
        raise typer.Exit(1)
    finally:
        pusher.sock.close(0)
        ctx.term()
        collector.close()


def register(root: typer.Typer) -> None:
    """Add this area's commands to the top level of ``root``."""
    root.command("kill-switch")(kill_switch)
