"""The operator's command line (``main.py`` and the ``mytrading`` console script)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import zmq

from mytrading import venue
from mytrading.domain.accounts import load_accounts
from mytrading.domain.refdata import IST, RefData, RefDataError, load_refdata
from mytrading.master.store import MasterIndex
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS, Pusher
from mytrading.process import live, startguard, supervise
from mytrading.settings import PROJECT_ROOT, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from mytrading.config import StackConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
config_app = typer.Typer(help="Configuration commands.")
app.add_typer(config_app, name="config")
risk_app = typer.Typer(help="Risk: trading states, limits, P&L.")
app.add_typer(risk_app, name="risk")
data_app = typer.Typer(
    help="Market data: the feed's recordings; history downloaded or imported for backtests."
)
app.add_typer(data_app, name="data")
sim_app = typer.Typer(help="The OpenAlgo-compatible simulator server and its account.")
app.add_typer(sim_app, name="sim")
keys_app = typer.Typer(help="The bus's CURVE keys (the tcp bus: docs/security.md).")
app.add_typer(keys_app, name="keys")


def _add_backtest() -> None:
    from mytrading.backtest.cli import app as backtest_app
    from mytrading.backtest.cli import data_download, data_import

    app.add_typer(backtest_app, name="backtest")
    data_app.command("download")(data_download)
    data_app.command("import")(data_import)


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


def _settings(keys: bool = False) -> Settings:
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


def _load_config(s: Settings) -> StackConfig:
    """The whole configuration (``config.load_config``), or exit 2 naming the problem."""
    from mytrading.config import load_config

    try:
        cfg = load_config(s)
    except (ConfigError, ValueError) as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    if s.webhook_db.exists():
        from mytrading.webhook.store import StoreError, WebhookStore

        try:
            WebhookStore(s.webhook_db).close()
        except StoreError as exc:
            typer.echo(f"configuration error:\n{exc}", err=True)
            raise typer.Exit(2) from None
    return cfg


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
            f"reference data: config/instruments.toml (no master contract in {s.instruments_db}"
            "; main.py instruments sync)"
        ]
    else:
        lines = [
            f"reference data: master contract, {len(ref.master)} contracts "
            f"({s.instruments_db}), with instruments.toml for freeze quantities"
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


@config_app.command("check")
def config_check() -> None:
    """Validate the whole configuration (``config.load_config``: settings, accounts, risk,
    margins, charges, alerts, strategies, reference data); exit 2 on the first problem."""
    s = _settings(keys=True)
    cfg = _load_config(s)
    _check_builder_files(s, cfg.refdata)
    names = list(cfg.strategies)
    channels = [c.name for c in cfg.channels]
    risk_line = _risk_line(cfg)
    eps = s.endpoints()
    bus_line = _check_bus(s)
    typer.echo(f"mode={s.mode} broker={s.broker} log_level={s.log_level}")
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
    typer.echo(f"alert channels: {', '.join(channels) or 'none enabled (config/alerts.toml)'}")
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


def _backtest_mode() -> None:
    """MT_MODE=backtest: no daemons; the strategies of MT_STRATEGIES over history, in this
    process, with the backtest command's defaults."""
    s = _settings()
    if s.mode != "backtest":
        return
    from mytrading.config import load_strategies

    try:
        load_strategies(s)
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    from mytrading.backtest.cli import backtest

    backtest(_NoSub(), strategy=",".join(s.strategies))  # type: ignore[arg-type]  # reads only .invoked_subcommand
    raise typer.Exit(0)


class _NoSub:
    invoked_subcommand = None


LiveFlag = Annotated[
    bool,
    typer.Option(
        "--live",
        help="confirm MT_MODE=live: real orders to the configured OpenAlgo accounts "
        "(without it, live asks you to type LIVE in a terminal, or refuses)",
    ),
]


def _where_orders_go(s: Settings, live_flag: bool) -> None:
    """Say where orders will go; for live, take the operator's confirmation (the flag or
    typed) and write it for the stack (``process/live.py``); refuse (exit 2) without one."""
    accounts = load_accounts(s)
    if s.mode != "live":
        if live_flag:
            typer.echo(
                f"--live given, but MT_MODE={s.mode}: nothing real would trade. "
                "Set MT_MODE=live to mean it.",
                err=True,
            )
            raise typer.Exit(2)
        typer.echo(f"orders: {venue.current(s, accounts).banner()}")
        return
    typer.echo("MT_MODE=live: asking each account's OpenAlgo who it is ...")
    found = live.identify(s, accounts)
    for name, a in found.items():
        typer.echo(f"  {name}: REAL ORDERS to {a['host']} ({a['label']})")
        if a["problem"]:
            typer.echo(f"    could not read: {a['problem']}", err=True)
    unreachable = [n for n, a in found.items() if not a["broker"]]
    if unreachable:
        typer.echo(
            f"refused: {', '.join(unreachable)} did not answer as an OpenAlgo account "
            "(ping); live starts only against brokers that answer",
            err=True,
        )
        raise typer.Exit(1)
    if not live_flag:
        if not sys.stdin.isatty():
            typer.echo(
                "refused: MT_MODE=live needs the operator's confirmation: --live, or type "
                "LIVE when asked in a terminal",
                err=True,
            )
            raise typer.Exit(2)
        answer = input("Type LIVE to send real orders to these accounts (anything else stops): ")
        if answer.strip() != "LIVE":
            typer.echo("not confirmed: nothing started", err=True)
            raise typer.Exit(2)
    os.environ[live.TOKEN_ENV] = live.confirm(s, found, _who())
    reported = live.reported(live.confirmed(s, accounts))
    typer.echo(f"orders: {venue.current(s, accounts, reported).banner()}")


def _check_bus(s: Settings) -> str:
    """The tcp bus's keys (every daemon this host runs, and the operator's) and the private
    runtime directory; exit 2 naming each problem. Returns a line for `config check`."""
    from mytrading.messaging.curve import TOOLS, check_keys
    from mytrading.process.rundir import RunDirError, ensure_private_dir

    try:
        ensure_private_dir(s.runtime_dir())
    except RunDirError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    if not s.bus_curve_on():
        return f"bus: {s.bus_transport}" + (
            " without CURVE (loopback only; not allowed live)" if s.bus_transport == "tcp" else ""
        )
    problems = check_keys(s.bus_keys_dir, (*s.daemons, TOOLS))
    if problems:
        typer.echo("configuration error:\n" + "\n".join(problems), err=True)
        raise typer.Exit(2)
    return f"bus: tcp with CURVE, keys in {s.bus_keys_dir} (daemons here: {', '.join(s.daemons)})"


@keys_app.command("init")
def keys_init(
    force: Annotated[bool, typer.Option("--force", help="replace existing keys")] = False,
) -> None:
    """Write a CURVE key pair for every daemon and for the operator's tools (0600)."""
    from mytrading.messaging.curve import BusKeyError, init_keys

    s = _settings()
    try:
        written = init_keys(s.bus_keys_dir, force=force)
    except BusKeyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{len(written)} key files in {s.bus_keys_dir} (0600). Another host needs every "
        "*.key (public) and the *.key_secret of the daemons it runs, plus cli.key_secret "
        "(docs/deployment.md)"
    )


def _make_private(s: Settings) -> None:
    """Files an older version wrote 0644 become 0600 (directories 0700) at start."""
    from mytrading.process.rundir import make_private

    dbs = {p.parent for p in (s.record_db, s.risk_db, s.history_db, s.backtest_db)}
    dbs |= {p.parent for p in (s.instruments_db, s.alerts_db, s.webhook_db)}
    n = make_private(s.log_dir, s.state_dir, s.report_dir, *sorted(dbs))
    if n:
        typer.echo(f"made {n} files and directories private (0600/0700)")


def _launch(foreground: bool, live_flag: bool = False) -> tuple[Settings, subprocess.Popen[bytes]]:
    """Validate everything, say where orders go (live: confirmed), then start supervisord;
    exit 2 on bad config or an unconfirmed live start, 1 if running."""
    s = _settings(keys=True)
    _load_config(s)
    _check_bus(s)
    if supervise.live_processes(s):
        typer.echo(
            f"this checkout is already running: {supervise.describe(supervise.live_processes(s))}"
            "; stop every one of them with `python3 main.py stop`",
            err=True,
        )
        raise typer.Exit(1)
    _where_orders_go(s, live_flag)
    from mytrading.master.sync import daily

    line = daily(s, datetime.now(IST).date())
    typer.echo(line, err=line.startswith("ALERT"))
    startguard.clear_all(s.state_dir)  # an operator's start: failed starts count anew
    _make_private(s)
    try:
        return s, supervise.launch(s, foreground=foreground)
    except supervise.SupervisorError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


class _Output:
    """The status view's output: a terminal or a pipe that may go away (a closed terminal,
    a ``| tee`` killed by Ctrl-C). Once a write fails it is dead for good, and the stream
    is pointed at /dev/null so that nothing later (an echo, the exit flush) dies on it."""

    def __init__(self) -> None:
        self.dead = False

    def write(self, text: str) -> bool:
        if self.dead:
            return False
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
            return True
        except OSError:  # BrokenPipeError (EPIPE), or EIO from a hung-up terminal
            self.dead = True
            _silence(sys.stdout, sys.stderr)
            return False


def _silence(*streams: Any) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in streams:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _lifecycle_log(s: Settings) -> Any:
    """``warn(event, **fields)``: a warning on stderr and in ``logs/cli.log``."""
    import structlog

    from mytrading.process.logsetup import setup_logging

    setup_logging("cli", s.log_dir, s.log_level, console=False, rotation=s.log_rotation())
    log = structlog.get_logger("cli")

    def warn(event: str, **fields: Any) -> None:
        log.warning(event, **fields)
        with contextlib.suppress(OSError):
            typer.echo(
                f"warning: {event} " + " ".join(f"{k}={v}" for k, v in fields.items()), err=True
            )

    return warn


@app.command()
def run(live_flag: LiveFlag = False) -> None:
    """Run the whole stack in the foreground with a live status view. Ctrl-C, a closed
    terminal (SIGHUP) or a closed output pipe stops every process in order."""
    from mytrading.process.status import StatusCollector

    stop = {"why": ""}

    def _stop(signum: int, _: Any) -> None:
        stop["why"] = stop["why"] or signal.Signals(signum).name

    _backtest_mode()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    s, proc = _launch(foreground=True, live_flag=live_flag)
    warn = _lifecycle_log(s)
    out = _Output()
    collector = StatusCollector(s)
    tty = sys.stdout.isatty()
    last_plain = 0.0
    try:
        while not stop["why"] and proc.poll() is None:
            collector.poll(1.0)
            view = collector.render(supervise.process_info(s))
            if tty:
                shown = out.write("\x1b[H\x1b[2J" + view + "\n\n(Ctrl-C stops every process)\n")
            elif time.monotonic() - last_plain > 10:
                shown = out.write(view + "\n\n")
                last_plain = time.monotonic()
            else:
                shown = True
            if not shown:
                stop["why"] = "output gone"
    finally:
        collector.close()
        why = stop["why"] or f"supervisord exited ({proc.poll()})"
        out.write(f"\nstopping every process ({why}) ...\n")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # supervisord stops its programs in order
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                warn("supervisord did not stop in 30 s", pid=proc.pid)
        left = supervise.shutdown(s, term_wait_s=s.stop_timeout_s, warn=warn)  # by the locks
        if not left:
            live.revoke(s)  # the next start asks again
        out.write("stopped\n" if not left else f"still running: {supervise.describe(left)}\n")
    if left:
        raise typer.Exit(1)


@app.command()
def start(live_flag: LiveFlag = False) -> None:
    """Start the stack in the background under supervisord."""
    _backtest_mode()
    s, proc = _launch(foreground=False, live_flag=live_flag)
    code = proc.wait(timeout=30)  # supervisord forks and its parent exits
    if code != 0 or not supervise.wait_running(s):
        console = s.log_dir / "supervisord.console.log"
        tail = console.read_text(errors="replace").splitlines()[-10:] if console.exists() else []
        typer.echo("\n".join(tail), err=True)
        typer.echo(
            "not every daemon reached RUNNING; see `main.py logs` and "
            f"{s.log_dir / 'supervisord.log'}",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"started; logs in {s.log_dir}")


@app.command()
def stop() -> None:
    """Stop every process of this checkout, supervised or not (found through their locks),
    in order; SIGKILL after a timeout, with a warning. Exit 0 only when nothing is left."""
    try:
        s = load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    procs = supervise.live_processes(s)
    if not procs:
        live.revoke(s)
        typer.echo("not running")
        return
    typer.echo(f"stopping {supervise.describe(procs)} ...")
    left = supervise.shutdown(s, term_wait_s=s.stop_timeout_s, warn=_lifecycle_log(s))
    if left:
        typer.echo(f"still running: {supervise.describe(left)}", err=True)
        raise typer.Exit(1)
    live.revoke(s)  # the next start asks again
    typer.echo("stopped")


@app.command()
def restart(daemon: Annotated[str, typer.Argument(help="|".join(DAEMONS))]) -> None:
    """Restart one daemon."""
    s = _settings()
    if daemon not in DAEMONS:
        typer.echo(f"unknown daemon {daemon!r}; one of {', '.join(DAEMONS)}", err=True)
        raise typer.Exit(2)
    if supervise.running_pid(s) is None:
        typer.echo("the stack is not running (start it with `main.py start`)", err=True)
        raise typer.Exit(1)
    startguard.clear(daemon, s.state_dir / "startfail")  # asked for: try it again
    try:
        server = supervise.rpc(s).supervisor
        if server.getProcessInfo(daemon)["statename"] == "RUNNING":
            server.stopProcess(daemon)
        server.startProcess(daemon)
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError) as exc:
        typer.echo(f"restart {daemon} failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{daemon} restarted")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One table: every daemon's state from the status topic and supervisor, then positions."""
    from mytrading.process.status import StatusCollector

    s = _settings()
    c = StatusCollector(s)
    try:
        c.wait_for_all()
        procs = supervise.process_info(s)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "supervisor": {k: v.get("statename") for k, v in procs.items()},
                        "daemons": {k: _to_builtins(v.status) for k, v in c.daemons.items()},
                        "positions": [_to_builtins(p) for p in c.positions.values()],
                    },
                    indent=2,
                )
            )
        else:
            typer.echo(c.render(procs))
            if not procs:
                typer.echo("\n(supervisord is not running for this checkout: `main.py start`)")
    finally:
        c.close()
    if len(c.daemons) < len(DAEMONS):
        raise typer.Exit(1)


def _to_builtins(msg: wire.Msg) -> Any:
    import msgspec

    return msgspec.to_builtins(msgspec.structs.asdict(msg))


@app.command()
def logs(
    daemon: Annotated[str | None, typer.Argument(help="one daemon; all when omitted")] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
    lines: Annotated[int, typer.Option("-n")] = 30,
) -> None:
    """Show the daemons' logs, readable (the files hold JSON lines)."""
    s = _settings()
    names = [daemon] if daemon else list(DAEMONS)
    files = {n: supervise.log_path(s, n) for n in names}
    handles = {}
    for n, path in files.items():
        if not path.exists():
            typer.echo(f"({path} does not exist yet)")
            continue
        with open(path, encoding="utf-8") as f:
            for line in f.readlines()[-lines:]:
                typer.echo(_pretty(line))
        if follow:
            handles[n] = open(path, encoding="utf-8")  # noqa: SIM115
            handles[n].seek(0, os.SEEK_END)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a follow
            while follow:
                moved = False
                for h in handles.values():
                    for line in h.readlines():
                        typer.echo(_pretty(line))
                        moved = True
                if not moved:
                    time.sleep(0.2)
    finally:
        for h in handles.values():
            h.close()


def _pretty(line: str) -> str:
    try:
        ev = json.loads(line)
    except json.JSONDecodeError:
        return line.rstrip()
    ts, level = ev.pop("timestamp", "")[:23], ev.pop("level", "?")
    head = f"{ts} {level:<7} {ev.pop('daemon', '?'):<10} {ev.pop('event', '')}"
    exc = ev.pop("exception", None)
    rest = " ".join(f"{k}={v}" for k, v in ev.items())
    return f"{head}  {rest}" + (f"\n{exc}" if exc else "")


@app.command()
def chain(
    underlying: Annotated[str, typer.Argument(help="an index or a stock with options")] = "NIFTY",
    expiry: Annotated[str, typer.Option(help="YYYY-MM-DD; default: the nearest")] = "",
    strikes: Annotated[int, typer.Option(min=1, max=50, help="strikes each side of ATM")] = 10,
    hz: Annotated[float, typer.Option(min=0.5, max=10, help="redraws per second")] = 10.0,
) -> None:
    """A live option chain from the bus (the running stack's feed): LTP, bid/ask, OI and
    its change, IV and Greeks per strike, ATM highlighted, PCR and max pain."""
    from mytrading.commands import chain as chainview

    s = _settings()
    try:
        refdata = load_refdata(s.config_dir, MasterIndex.load(s.instruments_db))
        refdata.underlying(underlying)
        day = datetime.strptime(expiry, "%Y-%m-%d").date() if expiry else None
    except (RefDataError, ValueError) as exc:
        typer.echo(f"chain: {exc}", err=True)
        raise typer.Exit(2) from None
    chainview.run(s, refdata, underlying, day, strikes, hz)


@app.command("kill-switch")
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
    detail = _command(
        wire.Command(command="kill_switch", value=value, reason=reason, issued_by=_who()),
        lambda d: d.get("kill_mode") == value,
        f"kill switch {value}",
    )
    if value == "off":
        return
    if detail.get("entries_halted"):
        from mytrading.process.status import StatusCollector

        s = _settings()
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


@risk_app.callback(invoke_without_command=True)
def risk_show(ctx: typer.Context) -> None:
    """Trading states, limits and their use, P&L per strategy (from the running stack)."""
    if ctx.invoked_subcommand is not None:
        return
    from mytrading.process.status import StatusCollector

    s = _settings()
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


@risk_app.command("events")
def risk_events(
    n: Annotated[int, typer.Option("-n", help="how many, newest first")] = 30,
) -> None:
    """Risk events from DuckDB (MT_RISK_DB): rejections, triggers, exits, state changes."""
    import duckdb

    from mytrading.risk.events import outbox_path, read_events

    s = _settings()
    if not s.risk_db.exists() and not outbox_path(s.risk_db).exists():
        typer.echo(f"no risk events yet ({s.risk_db})", err=True)
        raise typer.Exit(1)
    try:
        rows = read_events(s.risk_db, n)
    except duckdb.Error as exc:
        typer.echo(f"{s.risk_db} cannot be read now: {exc}", err=True)
        raise typer.Exit(1) from None
    for row in rows:
        ts, strategy, kind, rule, thr, val, action, reason, oids = row
        typer.echo(
            f"{ts}  {strategy:<22} {kind:<15} {rule:<18} threshold {thr:g} value {val:g} "
            f"{action}  {reason}" + (f"  orders {','.join(oids)}" if oids else "")
        )


@risk_app.command("state")
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

    _command(
        wire.Command(command="state", value=value, reason=reason, issued_by=_who(), target=target),
        done,
        f"{'stack' if target == '*' else target} {value.upper()}",
    )


def _who() -> str:
    return f"cli:{os.getuid()}"


def _command(cmd: wire.Command, confirmed: Any, what: str) -> dict[str, Any]:
    """Push a command to risk and wait (5 s) until its heartbeat shows the result;
    returns risk's detail then."""
    from mytrading.process.status import StatusCollector

    s = _settings()
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


def _read_db(s: Settings) -> Any:
    import duckdb

    from mytrading.stores.recording import connect

    if not s.record_db.exists():
        typer.echo(f"no recording at {s.record_db}", err=True)
        raise typer.Exit(1)
    try:
        return connect(s.record_db, read_only=True)
    except duckdb.IOException as exc:
        typer.echo(
            f"{s.record_db} is locked by its writer (the feed): stop the stack first ({exc})",
            err=True,
        )
        raise typer.Exit(1) from None


@data_app.command("list")
def data_list() -> None:
    """What was recorded: per day and instrument, ticks, bars and the time span."""
    s = _settings()
    con = _read_db(s)
    rows = con.execute(
        """SELECT strftime(CAST(t.ts AS DATE), '%Y-%m-%d') AS day, t.exchange, t.symbol,
                  count(*) AS ticks,
                  epoch_ms(min(t.ts)) AS first, epoch_ms(max(t.ts)) AS last,
                  (SELECT count(*) FROM bars b WHERE b.exchange = t.exchange
                     AND b.symbol = t.symbol AND CAST(b.start AS DATE) = CAST(t.ts AS DATE)) AS bars
           FROM ticks t GROUP BY ALL ORDER BY day, exchange, symbol"""
    ).fetchall()
    con.close()
    if not rows:
        typer.echo("nothing recorded yet")
        return
    typer.echo(f"{'DAY':<12}{'EXCHANGE':<11}{'SYMBOL':<26}{'TICKS':>9}{'BARS':>7}  FIRST     LAST")
    for day, ex, sym, ticks, first, last, bars in rows:
        first, last = (
            datetime.fromtimestamp(x / 1000, IST).strftime("%H:%M:%S") for x in (first, last)
        )
        typer.echo(f"{day!s:<12}{ex:<11}{sym:<26}{ticks:>9}{bars:>7}  {first}  {last}")


@data_app.command("export")
def data_export(
    day: Annotated[str, typer.Option("--date", help="YYYY-MM-DD")],
    out: Annotated[Path, typer.Option("--out", help="file to write: .csv or .parquet")],
    symbol: Annotated[str | None, typer.Option("--symbol")] = None,
    kind: Annotated[str, typer.Option("--kind", help="ticks | bars")] = "bars",
) -> None:
    """Export one day's ticks or bars (optionally one symbol) to CSV or Parquet."""
    from datetime import date as _date

    s = _settings()
    try:
        _date.fromisoformat(day)
    except ValueError:
        typer.echo(f"--date {day!r} is not YYYY-MM-DD", err=True)
        raise typer.Exit(2) from None
    if kind not in ("ticks", "bars") or out.suffix not in (".csv", ".parquet"):
        typer.echo("--kind is ticks or bars; --out ends in .csv or .parquet", err=True)
        raise typer.Exit(2)
    con = _read_db(s)
    col = "ts" if kind == "ticks" else "start"
    where = f"CAST({col} AS DATE) = ?" + (" AND symbol = ?" if symbol else "")
    params = [day, symbol] if symbol else [day]
    # DuckDB writes CSV and Parquet itself; the selection is a parameterised temp table.
    con.execute(
        f"CREATE TEMP TABLE export AS SELECT * FROM {kind} WHERE {where} ORDER BY {col}", params
    )
    n = con.execute("SELECT count(*) FROM export").fetchone()[0]
    fmt = "FORMAT csv, HEADER" if out.suffix == ".csv" else "FORMAT parquet"
    target = str(out.resolve()).replace("'", "''")
    con.execute(f"COPY export TO '{target}' ({fmt})")
    con.close()
    typer.echo(f"{n} {kind} written to {out}")


@sim_app.callback(invoke_without_command=True)
def sim(ctx: typer.Context) -> None:
    """Run the OpenAlgo-compatible simulator server alone (REST on MT_SIM_REST_PORT)."""
    if ctx.invoked_subcommand is not None:
        return
    _settings()
    from mytrading.sim.server.main import main as sim_main

    sim_main()


@sim_app.command("reset")
def sim_reset() -> None:
    """Start a fresh simulated account: the simulator's books of the day (orders, trades,
    positions, funds) and the stack's own record of that account (the router's journal,
    risk's trading states and day marks: a kill switch or a halt of the old account goes
    with it) are removed. Refused while any process of this checkout runs."""
    s = _settings()
    if not supervise.uses_simserver(s):
        typer.echo("the broker is not the simulator server: nothing to reset", err=True)
        raise typer.Exit(2)
    live = supervise.live_processes(s)
    if live:
        typer.echo(
            f"stop the stack first (`python3 main.py stop`): {supervise.describe(live)}",
            err=True,
        )
        raise typer.Exit(1)
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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(ctx: typer.Context) -> None:
    """Lint with ruff, type-check the package with mypy (strict on the cores: ``[tool.mypy]``),
    then run the full test suite in three pytest-xdist workers (extra arguments go to
    pytest: ``-m "not integration"`` is the fast suite, ``-n 0`` runs in one process)."""
    lint = subprocess.call([sys.executable, "-m", "ruff", "check", "."], cwd=PROJECT_ROOT)
    if lint:
        typer.echo("ruff found problems (see above); fix them first", err=True)
        raise typer.Exit(lint)
    types = subprocess.call([sys.executable, "-m", "mypy"], cwd=PROJECT_ROOT)
    if types:
        typer.echo("mypy found problems (see above); fix them first", err=True)
        raise typer.Exit(types)
    # three workers on two cores: most process tests wait on market time and on their
    # daemons (a stack test uses ~15 s of CPU in 35 s), so a third overlaps the waits
    # (489 s against 582 s with two, measured 2026-11-25 on the 2-core VM)
    # one test at a time to a free worker (the longest are collected first, conftest.py):
    # xdist's default batches left one worker running the tail alone for up to a minute
    # (607 s and 663 s for the same commit on 2026-11-26)
    workers = (
        []
        if any(a.startswith(("-n", "--numprocesses")) for a in ctx.args)
        else ["-n", "3", "--maxschedchunk=1"]
    )
    cmd = [sys.executable, "-m", "pytest", *workers, *ctx.args]
    raise typer.Exit(subprocess.call(cmd, cwd=PROJECT_ROOT))
