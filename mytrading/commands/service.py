"""``main.py service install|status|uninstall``: the stack as a systemd unit
(``mytrading/process/service.py``, docs/deployment.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mytrading.commands.common import settings_only
from mytrading.process import service
from mytrading.settings import PROJECT_ROOT

app = typer.Typer(help="The stack as a systemd service (start on boot, restart on failure).")

UserFlag = Annotated[
    bool, typer.Option("--user", help="a user unit (systemctl --user), no root needed")
]
UnitDir = Annotated[
    Path | None,
    typer.Option("--unit-dir", help="write the unit here instead (no systemctl is asked)"),
]


@app.command("install")
def install(
    user: UserFlag = False,
    unit_dir: UnitDir = None,
    live_flag: Annotated[
        bool,
        typer.Option(
            "--live",
            help="MT_MODE=live: your confirmation, once, that every start of this unit "
            "(boots included) sends real orders",
        ),
    ] = False,
    after: Annotated[
        str, typer.Option("--after", help="start after this unit too (e.g. openalgo.service)")
    ] = "",
) -> None:
    """Write the unit, check it (systemd-analyze verify), enable it (start on boot)."""
    s = settings_only()
    if s.mode == "live" and not live_flag:
        typer.echo(
            "refused: MT_MODE=live; a service starts without you, so confirm it once here "
            "with --live (every start of the unit then sends real orders)",
            err=True,
        )
        raise typer.Exit(2)
    if live_flag and s.mode != "live":
        typer.echo(f"--live given, but MT_MODE={s.mode}: set MT_MODE=live to mean it", err=True)
        raise typer.Exit(2)
    where = service.place(user, unit_dir)
    text = service.unit_text(s, sys.executable, user, live_flag, after)
    try:
        where.directory.mkdir(parents=True, exist_ok=True)
        where.path.write_text(text)
        os.chmod(where.path, 0o644)
    except OSError as exc:
        hint = " (a system unit needs root; or --user)" if not user else ""
        typer.echo(f"cannot write {where.path}: {exc}{hint}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {where.path}")
    ok, said = service.verify(where.path)
    typer.echo(
        f"systemd-analyze verify: {'ok' if ok else 'FAILED'}" + (f"\n{said}" if said else "")
    )
    if not ok:
        raise typer.Exit(1)
    if unit_dir is not None:
        return
    typer.echo(service.pin_run_dir(PROJECT_ROOT / ".env", service.run_dir(user)))
    for args in (("daemon-reload",), ("enable", service.UNIT_NAME)):
        done, out = service.systemctl(where, *args)
        if not done:
            typer.echo(f"systemctl {' '.join(args)} failed: {out}", err=True)
            raise typer.Exit(1)
    scope = "--user " if user else ""
    typer.echo(
        f"enabled: the stack starts on boot. Start it now with `systemctl {scope}start "
        f"mytrading` (stop a shell-started stack first: `main.py stop`)"
    )


@app.command("status")
def status(user: UserFlag = False, unit_dir: UnitDir = None) -> None:
    """The unit's file, whether it is enabled and active (systemctl)."""
    where = service.place(user, unit_dir)
    if not where.path.exists():
        typer.echo(f"not installed ({where.path} does not exist)")
        raise typer.Exit(3)
    typer.echo(f"unit: {where.path}")
    for what in ("is-enabled", "is-active"):
        _, out = service.systemctl(where, what, service.UNIT_NAME)
        typer.echo(f"{what}: {out or '?'}")


@app.command("uninstall")
def uninstall(user: UserFlag = False, unit_dir: UnitDir = None) -> None:
    """Disable and stop the unit, then remove its file (the stack's state is kept)."""
    where = service.place(user, unit_dir)
    if not where.path.exists():
        typer.echo(f"not installed ({where.path} does not exist)")
        return
    if unit_dir is None:
        done, out = service.systemctl(where, "disable", "--now", service.UNIT_NAME)
        if not done:
            typer.echo(f"systemctl disable --now: {out}", err=True)
    where.path.unlink()
    if unit_dir is None:
        service.systemctl(where, "daemon-reload")
    typer.echo(f"removed {where.path}")
