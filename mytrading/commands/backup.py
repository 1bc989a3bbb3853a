"""``main.py backup`` and ``main.py restore`` (``mytrading/stores/backup.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mytrading.commands.common import refuse_while_running, settings_only
from mytrading.settings import PROJECT_ROOT
from mytrading.stores.backup import BackupError


def backup(
    to: Annotated[Path, typer.Option("--to", help="where the backup directory goes")] = (
        PROJECT_ROOT / "backups"
    ),
    with_keys: Annotated[
        bool, typer.Option("--with-keys", help="the bus keys and .env too (secrets)")
    ] = False,
) -> None:
    """A consistent copy of the state (journal, trading states, DuckDB and SQLite stores),
    taken while the stack runs; keys only with --with-keys."""
    from mytrading.stores import backup as b

    s = settings_only()
    try:
        where = b.backup(s, to, with_keys, typer.echo)
    except (BackupError, OSError) as exc:
        typer.echo(f"backup failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backup written: {where}" + (" (with keys: keep it private)" if with_keys else ""))


def restore(
    path: Annotated[Path, typer.Argument(help="a directory written by `main.py backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Put a backup back on a stopped stack (what it replaces is kept beside it)."""
    from mytrading.stores import backup as b

    s = settings_only()
    refuse_while_running(s, "restore replaces the state")
    if not yes:
        if not sys.stdin.isatty():
            typer.echo("refused: restore replaces the state; confirm with --yes", err=True)
            raise typer.Exit(2)
        if input(f"Replace this stack's state with {path}? Type RESTORE: ").strip() != "RESTORE":
            typer.echo("not confirmed: nothing changed", err=True)
            raise typer.Exit(2)
    try:
        done = b.restore(s, path, typer.echo)
    except (BackupError, OSError) as exc:
        typer.echo(f"restore failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"restored: {', '.join(done)}; start the stack as usual")
