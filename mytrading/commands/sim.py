"""The OpenAlgo-compatible simulator server on its own, and a fresh simulated account."""

from __future__ import annotations

import shutil

import typer

from mytrading.commands.common import refuse_while_running, settings_or_exit
from mytrading.process import supervise

app = typer.Typer(help="The OpenAlgo-compatible simulator server and its account.")


@app.callback(invoke_without_command=True)
def sim(ctx: typer.Context) -> None:
    """Run the OpenAlgo-compatible simulator server alone (REST on MT_SIM_REST_PORT)."""
    if ctx.invoked_subcommand is not None:
        return
    settings_or_exit()
    from mytrading.sim.server.main import main as sim_main

    sim_main()


@app.command("reset")
def sim_reset() -> None:
    """Start a fresh simulated account: the simulator's books of the day (orders, trades,
    positions, funds) and the stack's own record of that account (the router's journal,
    risk's trading states and day marks: a kill switch or a halt of the old account goes
    with it) are removed. Refused while any process of this checkout runs."""
    s = settings_or_exit()
    if not supervise.uses_simserver(s):
        typer.echo("the broker is not the simulator server: nothing to reset", err=True)
        raise typer.Exit(2)
    refuse_while_running(s, "a fresh simulated account")
    from mytrading.sim.books import BOOKS_DIR

    removed = []
    # the stack's record of the simulator's account: every venue on it (paper and dry
    # run), its trading states included (a fresh account starts ACTIVE)
    venues = sorted((s.state_dir / "venues").glob("*-sim-*"))
    paths = [s.state_dir / BOOKS_DIR]
    paths += [
        p
        for v in venues
        for p in (v / "router", v / "risk_state.json", v / "risk_marks.json", v / "books")
    ]
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(path)
        elif path.exists():
            path.unlink()
            removed.append(path)
    for path in removed:
        typer.echo(f"removed {path}")
    typer.echo("the simulated account starts fresh at the next start")
