"""``config check`` and ``keys init``: the whole configuration validated, the bus's keys."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from mytrading import venue
from mytrading.commands.common import config_or_exit, settings_or_exit
from mytrading.domain.refdata import IST, RefData
from mytrading.settings import Settings

if TYPE_CHECKING:
    from mytrading.config import StackConfig


app = typer.Typer(help="Configuration commands.")
keys_app = typer.Typer(help="The bus's CURVE keys (the tcp bus: docs/security.md).")


def _risk_line(cfg: StackConfig) -> str:
    from mytrading.risk.limits import env_overrides

    s = cfg.settings
    given = env_overrides(s)
    return (
        f"risk: {s.config_dir / 'risk.toml'}, {len(cfg.limits.per)} strategies with their "
        "own limits" + (f"; from the environment: {given}" if given else "")
    )


def _refdata_report(s: Settings, ref: RefData) -> list[str]:
    """Where lot and tick sizes come from; every place instruments.toml disagrees with the
    master contract, and every explicit override."""
    from mytrading.domain.refdata import future_symbol

    if ref.master is None:
        lines = [
            "reference data: config/instruments.toml (no master contract in "
            f"{s.stores.instruments_db}; main.py instruments sync)"
        ]
    else:
        lines = [
            f"reference data: master contract, {len(ref.master)} contracts "
            f"({s.stores.instruments_db}), with instruments.toml for freeze quantities"
        ]
        today = datetime.now(IST).date()
        for name, u in ref.underlyings.items():
            if not u.fno:
                continue
            fut = ref.master.get(
                u.fo_exchange, future_symbol(name, ref.calendar.near_future_expiry(u, today))
            )
            if fut is not None and (fut.lot, fut.tick) != (u.lot_size, u.tick_size):
                lines.append(
                    f"  {name}: instruments.toml says lot {u.lot_size} tick {u.tick_size}, the "
                    f"master contract lot {fut.lot} tick {fut.tick}: the master's is used"
                )
    for (ex, sym), o in sorted(ref.overrides.items()):
        lines.append(f"  override {ex}:{sym} {o} (instruments.toml [overrides])")
    return lines


@app.command("check")
def config_check() -> None:
    """Validate the whole configuration (``config.load_config``: settings, accounts, risk,
    margins, charges, alerts, strategies, reference data); exit 2 on the first problem."""
    s = settings_or_exit(keys=True)
    cfg = config_or_exit(s)
    _check_builder_files(s, cfg.refdata)
    names = list(cfg.strategies)
    channels = [c.name for c in cfg.channels]
    risk_line = _risk_line(cfg)
    eps = s.endpoints()
    bus_line = check_bus(s)
    typer.echo(f"mode={s.mode} broker={s.broker} log_level={s.logs.level}")
    typer.echo(f"orders: {venue.current(s).banner()}")
    if s.mode == "live":
        typer.echo(
            "  (live starts only with `start --live` / `run --live`, or LIVE typed at start)"
        )
    typer.echo(
        f"state: {venue.current(s).dir}"
        if s.mode != "live"
        else f"state: {s.state_dir / 'venues'}/live-... (named at start by the broker account "
        "each OpenAlgo reports)"
    )
    typer.echo(f"strategies: {', '.join(names)}")
    off = sorted(n for n, on in s.switches().items() if not on and n in s.strategies)
    if off:
        typer.echo(f"  disabled in config/strategies.toml (enabled = false): {', '.join(off)}")
    typer.echo(f"alert channels: {', '.join(channels) or 'none enabled (config/alerts.toml)'}")
    tg = cfg.control.telegram
    typer.echo(
        f"telegram control: {len(tg.allowed_users)} allowed users, token in {tg.token_env}"
        if tg.enabled
        else "telegram control: off (config/control.toml)"
    )
    typer.echo(risk_line)
    accounts = cfg.accounts
    for a in accounts.by_name.values():
        follows = [
            f"{st}" for st, fs in accounts.follows.items() if any(f.account == a.name for f in fs)
        ]
        typer.echo(
            f"account {a.name}: {a.rest_url} {a.orders_per_s:g} orders/s"
            + (f", follows {', '.join(follows)}" if follows else "")
        )
    typer.echo(f"market data: {' > '.join(accounts.data_order)}")
    for line in _refdata_report(s, cfg.refdata):
        typer.echo(line)
    typer.echo(f"runtime dir: {s.runtime_dir()}  logs: {s.log_dir}")
    typer.echo(bus_line)
    for name, ep in eps.endpoints.items():
        typer.echo(f"  {name:<16} {ep}")
    given = {k: v for k, v in cfg.provenance().items() if v in ("environment", ".env")}
    typer.echo(
        "set: " + (", ".join(f"{k} ({v})" for k, v in sorted(given.items())) or "all defaults")
    )
    # every process logs the same at its start ("starting ... config=<this>"): a daemon
    # whose figure differs runs another configuration than the one checked here
    typer.echo(f"configuration OK: fingerprint {cfg.fingerprint()}")


def _check_builder_files(s: Settings, refdata: RefData) -> None:
    """Every builder file in strategies/, enabled or not (a file being written is checked
    before it is enabled): exit 2 naming each problem's file and line."""
    from mytrading.builder.spec import check_files

    bad = check_files(s.strategies_dir, set(refdata.underlyings))
    if bad:
        typer.echo("configuration error:\n" + "\n".join(bad.values()), err=True)
        raise typer.Exit(2)


def check_bus(s: Settings) -> str:
    """The tcp bus's keys (every daemon this host runs, and the operator's) and the private
    runtime directory; exit 2 naming each problem. Returns a line for `config check`."""
    from mytrading.messaging.curve import TOOLS, check_keys
    from mytrading.process.rundir import RunDirError, ensure_private_dir

    try:
        ensure_private_dir(s.runtime_dir())
    except RunDirError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    if not s.bus.curve_on():
        return f"bus: {s.bus.transport}" + (
            " without CURVE (loopback only; not allowed live)" if s.bus.transport == "tcp" else ""
        )
    problems = check_keys(s.bus.keys_dir, (*s.daemons, TOOLS))
    if problems:
        typer.echo("configuration error:\n" + "\n".join(problems), err=True)
        raise typer.Exit(2)
    return f"bus: tcp with CURVE, keys in {s.bus.keys_dir} (daemons here: {', '.join(s.daemons)})"


@keys_app.command("init")
def keys_init(
    force: Annotated[bool, typer.Option("--force", help="replace existing keys")] = False,
) -> None:
    """Write a CURVE key pair for every daemon and for the operator's tools (0600)."""
    from mytrading.messaging.curve import BusKeyError, init_keys

    s = settings_or_exit()
    try:
        written = init_keys(s.bus.keys_dir, force=force)
    except BusKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{len(written)} key files in {s.bus.keys_dir} (0600). Another host needs every "
        "*.key (public) and the *.key_secret of the daemons it runs, plus cli.key_secret "
        "(docs/deployment.md)"
    )
