"""What every area of the command line shares: the settings and the configuration
validated (or exit 2 naming the problem), and who is at the keyboard."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer

from mytrading.domain.accounts import load_accounts
from mytrading.domain.refdata import RefDataError, load_refdata
from mytrading.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from mytrading.config import StackConfig


def settings_only() -> Settings:
    """The settings alone (no reference data, no accounts: commands that need neither),
    or exit 2 naming what is wrong."""
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None


def settings_or_exit(keys: bool = False) -> Settings:
    """Validated settings and reference data, or exit 2 naming what is wrong. ``keys``:
    every account's key must be there too (what starts the stack or checks it); the
    read-only commands (status, logs, risk, ...) run without any broker key."""
    from mytrading.domain.universe import quoted

    try:
        s = load_settings()
        ref = load_refdata(s.config_dir)
        load_accounts(s, keys=keys)
    except (ConfigError, RefDataError) as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    try:
        quoted(ref, s.sim.underlyings, s.sim.stocks)
    except ValueError as exc:  # RefDataError too: an unknown name
        typer.echo(f"configuration error:\nMT_SIM_UNDERLYINGS / MT_SIM_STOCKS: {exc}", err=True)
        raise typer.Exit(2) from None
    return s


def config_or_exit(s: Settings) -> StackConfig:
    """The whole configuration (``config.load_config``), or exit 2 naming the problem."""
    from mytrading.config import load_config

    try:
        cfg = load_config(s)
    except (ConfigError, ValueError) as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    if s.stores.webhook_db.exists():
        from mytrading.webhook.store import StoreError, WebhookStore

        try:
            WebhookStore(s.stores.webhook_db).close()
        except StoreError as exc:
            typer.echo(f"configuration error:\n{exc}", err=True)
            raise typer.Exit(2) from None
    return cfg


def who() -> str:
    return f"cli:{os.getuid()}"


def refuse_while_running(s: Settings, what: str) -> None:
    """Exit 1 naming every live process of this checkout (supervised or not) and the way
    out, when ``what`` needs the stack stopped; nothing when none is alive."""
    from mytrading.process import supervise

    running = supervise.live_processes(s)
    if running:
        typer.echo(
            f"refused: {what}: the stack is running ({supervise.describe(running)}); "
            "stop every one of them with `python3 main.py stop`",
            err=True,
        )
        raise typer.Exit(1)
