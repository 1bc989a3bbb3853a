"""Running the stack and watching it: run, start, stop, restart, status, logs, the live
option chain, and the test command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import typer

from mytrading import compiled, venue
from mytrading.commands.common import config_or_exit, refuse_while_running, settings_or_exit, who
from mytrading.commands.config import check_bus
from mytrading.domain.accounts import load_accounts
from mytrading.domain.refdata import IST, RefDataError, load_refdata
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.process import live, startguard, supervise
from mytrading.settings import PROJECT_ROOT, ConfigError, Settings, load_settings


def _backtest_mode() -> None:
    """MT_MODE=backtest: no daemons; the strategies of MT_STRATEGIES over history, in this
    process, with the backtest command's defaults."""
    s = settings_or_exit()
    if s.mode != "backtest":
        return
    from mytrading.config import load_strategies

    try:
        load_strategies(s)
    except ConfigError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None
    from mytrading.backtest.cli import backtest

    backtest(_NoSub(), strategy=",".join(s.enabled_strategies()))  # type: ignore[arg-type]  # reads only .invoked_subcommand
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
    os.environ[live.TOKEN_ENV] = live.confirm(s, found, who())
    reported = live.reported(live.confirmed(s, accounts))
    typer.echo(f"orders: {venue.current(s, accounts, reported).banner()}")


def _make_private(s: Settings) -> None:
    """Files an older version wrote 0644 become 0600 (directories 0700) at start."""
    from mytrading.process.rundir import make_private

    dbs = {
        p.parent
        for p in (s.stores.record_db, s.stores.risk_db, s.stores.history_db, s.stores.backtest_db)
    }
    dbs |= {
        p.parent
        for p in (
            s.stores.instruments_db,
            s.stores.alerts_db,
            s.stores.webhook_db,
            s.stores.control_db,
        )
    }
    n = make_private(s.log_dir, s.state_dir, s.stores.report_dir, *sorted(dbs))
    if n:
        typer.echo(f"made {n} files and directories private (0600/0700)")


def _launch(foreground: bool, live_flag: bool = False) -> tuple[Settings, subprocess.Popen[bytes]]:
    """Validate everything, say where orders go (live: confirmed), then start supervisord;
    exit 2 on bad config or an unconfirmed live start, 1 if running."""
    s = settings_or_exit(keys=True)
    config_or_exit(s)
    check_bus(s)
    refuse_while_running(s, "this checkout is already running")
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

    setup_logging("cli", s.log_dir, s.logs.level, console=False, rotation=s.logs.rotation())
    log = structlog.get_logger("cli")

    def warn(event: str, **fields: Any) -> None:
        log.warning(event, **fields)
        with contextlib.suppress(OSError):
            typer.echo(
                f"warning: {event} " + " ".join(f"{k}={v}" for k, v in fields.items()), err=True
            )

    return warn


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
        left = supervise.shutdown(
            s, term_wait_s=s.liveness.stop_timeout_s, warn=warn
        )  # by the locks
        if not left:
            live.revoke(s)  # the next start asks again
        out.write("stopped\n" if not left else f"still running: {supervise.describe(left)}\n")
    if left:
        raise typer.Exit(1)


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
    left = supervise.shutdown(s, term_wait_s=s.liveness.stop_timeout_s, warn=_lifecycle_log(s))
    if left:
        typer.echo(f"still running: {supervise.describe(left)}", err=True)
        raise typer.Exit(1)
    live.revoke(s)  # the next start asks again
    typer.echo("stopped")


def restart(daemon: Annotated[str, typer.Argument(help="|".join(DAEMONS))]) -> None:
    """Restart one daemon."""
    s = settings_or_exit()
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


def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One table: every daemon's state from the status topic and supervisor, then positions."""
    from mytrading.process.status import StatusCollector

    s = settings_or_exit()
    c = StatusCollector(s)
    try:
        c.wait_for_all()
        procs = supervise.process_info(s)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "supervisor": {k: v.get("statename") for k, v in procs.items()},
                        "build": compiled.build(),
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


def logs(
    daemon: Annotated[str | None, typer.Argument(help="one daemon; all when omitted")] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
    lines: Annotated[int, typer.Option("-n")] = 30,
) -> None:
    """Show the daemons' logs, readable (the files hold JSON lines)."""
    s = settings_or_exit()
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


def chain(
    underlying: Annotated[str, typer.Argument(help="an index or a stock with options")] = "NIFTY",
    expiry: Annotated[str, typer.Option(help="YYYY-MM-DD; default: the nearest")] = "",
    strikes: Annotated[int, typer.Option(min=1, max=50, help="strikes each side of ATM")] = 10,
    hz: Annotated[float, typer.Option(min=0.5, max=10, help="redraws per second")] = 10.0,
) -> None:
    """A live option chain from the bus (the running stack's feed): LTP, bid/ask, OI and
    its change, IV and Greeks per strike, ATM highlighted, PCR and max pain."""
    from mytrading.commands import chain as chainview

    s = settings_or_exit()
    try:
        from mytrading.master.store import MasterIndex

        refdata = load_refdata(s.config_dir, MasterIndex.load(s.stores.instruments_db))
        refdata.underlying(underlying)
        day = datetime.strptime(expiry, "%Y-%m-%d").date() if expiry else None
    except (RefDataError, ValueError) as exc:
        typer.echo(f"chain: {exc}", err=True)
        raise typer.Exit(2) from None
    chainview.run(s, refdata, underlying, day, strikes, hz)


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
    # the fast suite (``-m "not integration"``) waits on nothing: a worker per core (three
    # on two cores made it 61 s against 42 s, 2026-11-27)
    fast = any("not integration" in a for a in ctx.args)
    workers = (
        []
        if any(a.startswith(("-n", "--numprocesses")) for a in ctx.args)
        else ["-n", str(os.cpu_count() or 2) if fast else "3", "--maxschedchunk=1"]
    )
    built = compiled.build()
    typer.echo(f"mytrading build: {built}", err=True)
    if os.environ.get("REQUIRE_COMPILED") and not built.startswith("compiled"):
        typer.echo("REQUIRE_COMPILED is set and the build is not compiled", err=True)
        raise typer.Exit(1)
    env = bytecode_kept(os.environ)
    cmd = [sys.executable, "-m", "pytest", *workers, *ctx.args]
    first = subprocess.call(cmd, cwd=PROJECT_ROOT, env=env)
    again = interpreted_pass(ctx.args, built)
    if again is None:
        raise typer.Exit(first)
    typer.echo("the tests that prove the source through the interpreter, interpreted:", err=True)
    second = subprocess.call(again, cwd=PROJECT_ROOT, env={**env, "MT_PURE_PYTHON": "1"})
    raise typer.Exit(first or (0 if second == 5 else second))  # 5: none in this selection


def interpreted_pass(args: list[str], built: str) -> list[str] | None:
    """After a run against the compiled build, the pytest command that runs the tests it
    skipped (``interpreted_only``: a profile of Python frames, a method patched on a
    class) under ``MT_PURE_PYTHON=1``, within the same ``-m`` selection; ``None`` where the
    run was interpreted already or named its own tests (a path, ``-k``)."""
    if not built.startswith("compiled"):
        return None
    chosen: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-m" and i + 1 < len(args):
            chosen.append(args[i + 1])
            i += 2
            continue
        if a.startswith("-m") and len(a) > 2:
            chosen.append(a[2:])
        elif a.startswith("-k") or a.endswith(".py") or "/" in a or "::" in a:
            return None
        i += 1
    mark = " and ".join(["interpreted_only", *(f"({m})" for m in chosen)])
    return [sys.executable, "-m", "pytest", "-n", "0", "-q", "-m", mark]


def bytecode_kept(environ: Mapping[str, str]) -> dict[str, str]:
    """The suite's environment, with Python's bytecode cache on. A machine told not to
    write it (``PYTHONDONTWRITEBYTECODE``: this VM and CI's) compiles every module of ours
    again in every process, and the suite starts hundreds (daemons, CLI calls, workers):
    pytest's collection took 12 s of CPU in each worker instead of 3, a daemon's imports
    1.1 s instead of 0.5 (2026-11-27). The cache is ``__pycache__`` beside the sources
    (ignored by git), checked against each source's time as Python always does."""
    return {k: v for k, v in environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_cmd(
    pure: Annotated[bool, typer.Option("--pure", help="remove the build: run interpreted")] = False,
) -> None:
    """Build the hot modules as C with mypyc (mytrading/compiled.py; about a minute and a
    half on 2 cores, needs a C compiler; `run`, `test` and the other commands that trade
    or backtest do it themselves when the build is missing or stale). Used by every
    process while the sources are unchanged; MT_PURE_PYTHON=1 runs interpreted with the
    build in place."""
    import shutil

    if pure:
        shutil.rmtree(compiled.OUT, ignore_errors=True)
        typer.echo(f"removed {compiled.OUT}: the stack runs interpreted")
        return
    try:
        compiled.compile_modules()
    except (RuntimeError, ImportError, OSError) as exc:
        typer.echo(f"not compiled, the stack runs interpreted: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo("used by every process started from now on (MT_PURE_PYTHON=1: interpreted)")


def register(root: typer.Typer) -> None:
    """Add this area's commands to the top level of ``root``."""
    root.command()(run)
    root.command()(start)
    root.command()(stop)
    root.command()(restart)
    root.command()(status)
    root.command()(logs)
    root.command()(chain)
    root.command("compile")(compile_cmd)
    root.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(test)
