"""The rich consoles and the settings check shared by the command groups built on rich
(``backtest``, ``webhook``): paths and messages stay whole lines, and a pipe or a file
gets tables 200 wide rather than rich's 80."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from mytrading.settings import ConfigError, Settings, load_settings

err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 200)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def settings_or_exit() -> Settings:
    """Validated settings, or exit 2 naming what is wrong."""
    try:
        return load_settings()
    except ConfigError as exc:
        err.print(f"configuration error:\n{exc}")
        raise typer.Exit(2) from None
