"""Starting, querying and stopping supervisord and every process of one checkout.

supervisord never writes to a terminal: it runs silent (``-s``) with its standard streams
on a file, so a terminal that goes away cannot kill it halfway through a shutdown. Under
``run`` it is also told to stop (SIGTERM, an orderly shutdown) when the CLI that owns it
dies, however it dies. Each daemon holds a lock of the checkout (``process/instance.py``), which
is how ``stop`` finds every process, supervised or orphaned, and how ``start`` refuses
beside one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from mytrading.messaging.bus import DAEMONS
from mytrading.process import instance
from mytrading.process.rundir import ensure_private_dir
from mytrading.process.shell import STOP_ORDER
from mytrading.settings import PROJECT_ROOT, Settings

CONF = PROJECT_ROOT / "supervisord.conf"
ALL_PROGRAMS: tuple[str, ...] = ("simserver", *DAEMONS, "telegram")
# The module each program runs (``python -m``), as supervisord.conf starts it
MODULES: dict[str, str] = (
    {"simserver": "mytrading.sim.server"}
    | {d: f"mytrading.{d}" for d in DAEMONS}
    | {"telegram": "mytrading.control"}
)


class SupervisorError(RuntimeError):
    """supervisord cannot be started as asked (e.g. it is already running)."""


def stack_env(settings: Settings, anchor_ns: int | None = None) -> dict[str, str]:
    """The environment supervisord and therefore every daemon starts with."""
    env = dict(os.environ)
    env.update(
        MT_PYTHON=sys.executable,
        MT_HOME=str(settings.home),
        MT_LOG_DIR=str(settings.log_dir.resolve()),
        MT_RUN_DIR=str(settings.runtime_dir()),
        MT_STATE_DIR=str(settings.state_dir.resolve()),
        MT_CLOCK_ANCHOR_NS=str(anchor_ns or settings.clock_anchor_ns or time.time_ns()),
        MT_SIM_SERVER_AUTOSTART=str(uses_simserver(settings)).lower(),
        **{f"MT_{d.upper()}_AUTOSTART": str(d in settings.daemons).lower() for d in DAEMONS},
        MT_TELEGRAM_AUTOSTART=str(uses_telegram(settings)).lower(),
        PYTHONUNBUFFERED="1",
    )
    return env


def uses_simserver(settings: Settings) -> bool:
    """The embedded simulator runs beside the router: on the host whose MT_DAEMONS has it
    (another host reaches it at MT_SIM_SERVER_HOST: docs/deployment.md)."""
    return settings.broker == "openalgo" and settings.sim_server and "router" in settings.daemons


def uses_telegram(settings: Settings) -> bool:
    """The Telegram control bot runs when config/control.toml enables it, on the host
    that runs risk (the keeper of the states it commands)."""
    from mytrading.control.config import load_control

    if "risk" not in settings.daemons:
        return False
    return load_control(settings.config_dir / "control.toml").telegram.enabled


def programs(settings: Settings) -> tuple[str, ...]:
    """The supervisor programs this configuration runs."""
    here = tuple(d for d in DAEMONS if d in settings.daemons)
    bot = ("telegram",) if uses_telegram(settings) else ()
    return (("simserver",) if uses_simserver(settings) else ()) + here + bot


def _prepare_dirs(settings: Settings) -> None:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    ensure_private_dir(settings.runtime_dir())


def live_processes(settings: Settings) -> dict[str, int]:
    """Every live process of this checkout: supervisord (by its pid file) and each
    program holding its lock, supervised or not."""
    out = {}
    sup = running_pid(settings)
    if sup is not None:
        out["supervisord"] = sup
    out.update(instance.holders(settings.state_dir, ALL_PROGRAMS))
    return out


def describe(procs: dict[str, int]) -> str:
    return ", ".join(f"{name} pid {pid}" for name, pid in procs.items())


def launch(settings: Settings, foreground: bool) -> subprocess.Popen[bytes]:
    """Start supervisord: as our child (``-n``) for ``run``, daemonized for ``start``.
    Refused while any process of this checkout is alive."""
    live = live_processes(settings)
    if live:
        raise SupervisorError(
            f"this checkout is already running: {describe(live)}; "
            "stop every one of them with `python3 main.py stop`"
        )
    _prepare_dirs(settings)
    cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(CONF), "-s"]
    if foreground:
        cmd.append("-n")
    console = open(settings.log_dir / "supervisord.console.log", "ab")  # noqa: SIM115
    try:
        # A new session: a terminal's Ctrl-C or hang-up reaches only the CLI, which then
        # stops supervisord with TERM so that it stops each daemon in order.
        return subprocess.Popen(
            cmd,
            env=stack_env(settings),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            preexec_fn=_term_with_parent if foreground else None,
        )
    finally:
        console.close()


def _term_with_parent() -> None:
    """In the forked child before exec: SIGTERM when ``run`` (the parent) dies."""
    instance.die_with_parent(signal.SIGTERM)


def rpc(settings: Settings) -> Any:
    sock = settings.runtime_dir() / "supervisor.sock"
    transport = SupervisorTransport(None, None, f"unix://{sock}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def running_pid(settings: Settings) -> int | None:
    """supervisord's pid from its pid file, if that process is alive and is supervisord
    (a stale file's pid may belong to some other process by now)."""
    pidfile = settings.runtime_dir() / "supervisord.pid"
    try:
        pid = int(pidfile.read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            is_supervisord = b"supervisord" in f.read()
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid if is_supervisord and alive(pid) else None


def process_info(settings: Settings) -> dict[str, dict[str, Any]]:
    """Supervisor's view of each program, or {} when supervisord is not answering."""
    try:
        return {p["name"]: p for p in rpc(settings).supervisor.getAllProcessInfo()}
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return {}


def wait_running(settings: Settings, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = process_info(settings)
        if info and all(info.get(d, {}).get("statename") == "RUNNING" for d in programs(settings)):
            return True
        time.sleep(0.2)
    return False


def child_pids(settings: Settings) -> list[int]:
    return [p["pid"] for p in process_info(settings).values() if p.get("pid")]


def shutdown(
    settings: Settings, timeout: float = 20.0, term_wait_s: float = 8.0, warn: Any = None
) -> dict[str, int]:
    """Stop every process of this checkout; return what is still alive ({} = all gone).

    supervisord first (it stops its programs in priority order), then every process that
    still holds a lock of the checkout (an orphan, or one supervisord failed to stop), in
    ``STOP_ORDER`` with SIGTERM, each escalated to SIGKILL after ``term_wait_s`` with a
    warning through ``warn(event, **fields)``."""
    warn = warn or (lambda *_a, **_k: None)
    sup = running_pid(settings)
    children = child_pids(settings) if sup is not None else []
    if sup is not None:
        try:
            rpc(settings).supervisor.shutdown()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            os.kill(sup, signal.SIGTERM)
        if not _wait_gone([sup, *children], timeout):
            warn("supervisord did not stop in time; stopping what is left", pid=sup)
    left = instance.holders(settings.state_dir, ALL_PROGRAMS)
    for name in sorted(left, key=lambda n: STOP_ORDER.index(n) if n in STOP_ORDER else -1):
        _stop_one(name, left[name], term_wait_s, warn)
    if sup is not None and alive(sup):
        _stop_one("supervisord", sup, term_wait_s, warn)
    for pid in children:  # e.g. crashwatch, which has no lock
        if alive(pid):
            _stop_one("supervisor child", pid, term_wait_s, warn)
    return live_processes(settings)


def _stop_one(name: str, pid: int, term_wait_s: float, warn: Any) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_gone([pid], term_wait_s):
        return
    warn("did not stop on SIGTERM, sending SIGKILL", process=name, pid=pid, after_s=term_wait_s)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_gone([pid], 5.0)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def alive(pid: int) -> bool:
    """True for a live process; a zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def log_path(settings: Settings, daemon: str) -> Path:
    return settings.log_dir / f"{daemon}.log"
