"""The operator's command line (``main.py`` and the ``mytrading`` console script): the
app, built from one module per area of commands (freqtrade's ``commands/`` layout):
``stack`` (run, start, stop, status, logs, chain, test), ``config`` (config check, keys),
``risk`` (kill switch, trading states, events), ``control`` (the running stack steered,
every command on record), ``data``, ``sim``, ``backup``, ``service``,
and the groups other packages own (backtest, strategy, webhook, instruments, alerts)."""

from __future__ import annotations

import typer

from mytrading.commands import config, control, data, risk, sim, simulate, stack

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
stack.register(app)
risk.register(app)
simulate.register(app)
app.add_typer(config.app, name="config")
app.add_typer(control.app, name="control")
app.add_typer(risk.app, name="risk")
app.add_typer(data.app, name="data")
app.add_typer(sim.app, name="sim")
app.add_typer(config.keys_app, name="keys")


def _add_backtest() -> None:
    from mytrading.backtest.cli import app as backtest_app
    from mytrading.backtest.cli import data_download, data_import

    app.add_typer(backtest_app, name="backtest")
    data.app.command("download")(data_download)
    data.app.command("import")(data_import)


def _add_webhook() -> None:
    from mytrading.webhook.cli import app as webhook_app

    app.add_typer(webhook_app, name="webhook")


def _add_instruments() -> None:
    from mytrading.master.cli import app as instruments_app

    app.add_typer(instruments_app, name="instruments")


def _add_backup() -> None:
    from mytrading.commands.backup import backup, restore

    app.command("backup")(backup)
    app.command("restore")(restore)


def _add_service() -> None:
    from mytrading.commands.service import app as service_app

    app.add_typer(service_app, name="service")


def _add_monitor() -> None:
    from mytrading.monitor.cli import app as alerts_app

    app.add_typer(alerts_app, name="alerts")


def _add_strategy() -> None:
    from mytrading.builder.cli import app as strategy_app

    app.add_typer(strategy_app, name="strategy")


_add_backtest()
_add_strategy()
_add_webhook()
_add_instruments()
_add_monitor()
_add_service()
_add_backup()
