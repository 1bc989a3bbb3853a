"""``main.py control``: the running stack steered from the shell, through the same command
layer the other front ends call (``control/actions.py``), every command on record."""

from __future__ import annotations

import getpass
import json
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from mytrading.commands.common import settings_or_exit
from mytrading.control.actions import Answer, Caller, Control

if TYPE_CHECKING:
    from mytrading.control.busview import BusView

app = typer.Typer(
    help="Steer the running stack: status, P&L, pause, resume, stop, the kill switch, "
    "the command log."
)

JSON = Annotated[bool, typer.Option("--json", help="the answer's data as JSON")]


def control(every_daemon: bool = False) -> tuple[Control, BusView]:
    """The command layer for this shell's user, and the view to close after (listening
    for every daemon's beat for a status, for risk's and the router's otherwise)."""
    from mytrading.control.busview import BusView, known_strategies
    from mytrading.control.record import CommandRecord

    s = settings_or_exit()
    view = BusView(s, every_daemon)
    caller = Caller(f"cli:{getpass.getuser()}", "cli", socket.gethostname())
    from mytrading.control.strategyfile import StrategyFile

    known = known_strategies(s)
    record = CommandRecord(s.stores.control_db)
    return Control(view, record, caller, known, strategy_file=StrategyFile(s),
                   reports_dir=s.log_dir / "reports"), view  # fmt: skip


ENGINE_CALLS = ("enable", "disable", "set_params")  # confirmed by the engine's beat


def run(call: str, *args: object, as_json: bool = False) -> None:
    # a full beat period: every daemon's (a status; the engine's, for its strategies)
    ctl, view = control(every_daemon=call in ("status", "positions", *ENGINE_CALLS))
    try:
        answer: Answer = getattr(ctl, call)(*args)
    finally:
        view.close()
    if as_json:
        typer.echo(
            json.dumps(
                {"ok": answer.ok, "changed": answer.changed, "text": answer.text, **answer.data},
                default=str,
            )
        )
    else:
        typer.echo(answer.text, err=not answer.ok)
    if not answer.ok:
        raise typer.Exit(1)


@app.command("status")
def status(as_json: JSON = False) -> None:
    """The daemons, the stack's trading state, the funds."""
    run("status", as_json=as_json)


@app.command("pnl")
def pnl(as_json: JSON = False) -> None:
    """P&L per strategy and for the stack: gross, charges, net."""
    run("pnl", as_json=as_json)


@app.command("positions")
def positions(as_json: JSON = False) -> None:
    """Open positions per strategy."""
    run("positions", as_json=as_json)


@app.command("trades")
def trades(as_json: JSON = False) -> None:
    """Today's fills, as the router numbers them."""
    run("trades", as_json=as_json)


@app.command("shadow")
def shadow(as_json: JSON = False) -> None:
    """The latest day's live trading against its own backtest (the end-of-day report's
    shadow): per strategy live vs shadow and each cause in rupees."""
    run("shadow", as_json=as_json)


@app.command("schedule")
def schedule(as_json: JSON = False) -> None:
    """Today's plan: each scheduled strategy's days and hours, and where it is in them."""
    run("schedule", as_json=as_json)


@app.command("halted")
def halted(as_json: JSON = False) -> None:
    """Risk's trading states, with why, who and when."""
    run("halted", as_json=as_json)


@app.command("pause")
def pause(name: str, as_json: JSON = False) -> None:
    """No new entries (working entries cancelled); exits and protective orders keep working."""
    run("pause", name, as_json=as_json)


@app.command("resume")
def resume(name: str, as_json: JSON = False) -> None:
    """Active again; also lifts a halt set by risk or the router (said)."""
    run("resume", name, as_json=as_json)


@app.command("stop")
def stop(name: str, as_json: JSON = False) -> None:
    """Paused, and its positions closed through risk's exits until the broker is flat."""
    run("stop", name, as_json=as_json)


@app.command("enable")
def enable(name: str, as_json: JSON = False) -> None:
    """Start a strategy on the running engine (checked as `config check` checks it);
    `enabled = true` written to config/strategies.toml."""
    run("enable", name, as_json=as_json)


@app.command("disable")
def disable(name: str, as_json: JSON = False) -> None:
    """Stop a flat strategy on the running engine; `enabled = false` written."""
    run("disable", name, as_json=as_json)


@app.command("params")
def params(
    name: str,
    values: Annotated[list[str], typer.Argument(help="KEY=VALUE ..., each value as in TOML")],
    as_json: JSON = False,
) -> None:
    """New parameters for a running, flat strategy (e.g. `params sma_crossover fast=8
    lots=2`): checked, written to config/strategies.toml, taken up by the engine."""
    from mytrading.control.strategyfile import parse_values

    got = parse_values(values)
    if isinstance(got, str):
        typer.echo(got, err=True)
        raise typer.Exit(2)
    run("set_params", name, got, as_json=as_json)


@app.command("kill-switch")
def kill_switch(value: str, as_json: JSON = False) -> None:
    """on | off | flatten (as `main.py kill-switch`, on record)."""
    run("kill_switch", value, as_json=as_json)


@app.command("log")
def log(n: Annotated[int, typer.Option("-n", help="how many, newest first")] = 30) -> None:
    """The command record: who, through what, when, what, and what came of it."""
    from mytrading.control.record import CommandRecord

    s = settings_or_exit()
    if not s.stores.control_db.exists():
        typer.echo(f"no command given yet ({s.stores.control_db})")
        return
    rec = CommandRecord(s.stores.control_db)
    try:
        for e in rec.recent(n):
            typer.echo(e.line())
    finally:
        rec.close()


token_app = typer.Typer(help="Bearer tokens of the HTTP control API.")
app.add_typer(token_app, name="token")


def _tokens():  # -> Tokens (imported here: the command line starts fast)
    from mytrading.control.tokens import Tokens

    return Tokens(settings_or_exit().stores.control_db)


@token_app.command("new")
def token_new(name: str) -> None:
    """A new token named NAME, printed once (only its hash is kept)."""
    from mytrading.control.tokens import TokenError

    tokens = _tokens()
    try:
        token = tokens.new(name)
    except TokenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    finally:
        tokens.close()
    typer.echo(token)
    typer.echo(
        f"(the {name!r} token, shown this once: keep it in a password manager; "
        f"`main.py control token revoke {name}` ends it)",
        err=True,
    )


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """End the token NAME now (its next request gets 401)."""
    from mytrading.control.tokens import TokenError

    tokens = _tokens()
    try:
        tokens.revoke(name)
    except TokenError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        tokens.close()
    typer.echo(f"token {name!r} revoked")


@token_app.command("list")
def token_list() -> None:
    """The tokens by name, when made, and whether revoked (never the tokens)."""
    from datetime import datetime

    from mytrading.domain.refdata import IST

    tokens = _tokens()
    try:
        for t in tokens.list():
            made = datetime.fromtimestamp(t.created, IST).strftime("%Y-%m-%d %H:%M")
            gone = (
                f"revoked {datetime.fromtimestamp(t.revoked, IST):%Y-%m-%d %H:%M}"
                if t.revoked
                else "in force"
            )
            typer.echo(f"{t.name:<24} made {made}  {gone}")
    finally:
        tokens.close()


@app.command("report")
def report() -> None:
    """The latest end-of-day report: its summary, and where its page is."""
    import json as _json

    from mytrading.monitor.eod import latest, summary

    s = settings_or_exit()
    page = latest(s.log_dir / "reports")
    if page is None:
        typer.echo(f"no end-of-day report yet ({s.log_dir / 'reports'})")
        return
    typer.echo(summary(_json.loads(page.with_suffix(".json").read_text())))
    typer.echo(f"page: {page}")
