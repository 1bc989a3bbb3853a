"""Starting, querying and stopping supervisord for one checkout (one runtime directory)."""

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

from mytrading.bus import DAEMONS
from mytrading.settings import PROJECT_ROOT, Settings

CONF = PROJECT_ROOT / "supervisord.conf"


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
        PYTHONUNBUFFERED="1",
    )
    return env


def uses_simserver(settings: Settings) -> bool:
    return settings.broker == "openalgo" and settings.sim_server


def programs(settings: Settings) -> tuple[str, ...]:
    """The supervisor programs this configuration runs."""
    return (("simserver",) if uses_simserver(settings) else ()) + DAEMONS


def _prepare_dirs(settings: Settings) -> None:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    run = settings.runtime_dir()
    run.mkdir(parents=True, exist_ok=True)
    os.chmod(run, 0o700)


def launch(settings: Settings, foreground: bool) -> subprocess.Popen[bytes]:
    """Start supervisord: as our child (``-n``) for ``run``, daemonized for ``start``."""
    if running_pid(settings):
        raise SupervisorError(
            f"the stack is already running (supervisord pid {running_pid(settings)}); "
            "use `main.py stop` first"
        )
    _prepare_dirs(settings)
    cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(CONF)]
    if foreground:
        cmd.append("-n")
    # A new session: Ctrl-C in the terminal reaches only the CLI, which then stops
    # supervisord with TERM so that it stops each daemon in order.
    return subprocess.Popen(cmd, env=stack_env(settings), start_new_session=True)


def rpc(settings: Settings) -> Any:
    sock = settings.runtime_dir() / "supervisor.sock"
    transport = SupervisorTransport(None, None, f"unix://{sock}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def running_pid(settings: Settings) -> int | None:
    pidfile = settings.runtime_dir() / "supervisord.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


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


def shutdown(settings: Settings, timeout: float = 20.0) -> bool:
    """Stop every daemon and supervisord; True when nothing is left running."""
    pid = running_pid(settings)
    if pid is None:
        return True
    children = child_pids(settings)
    try:
        rpc(settings).supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in [pid, *children]):
            return True
        time.sleep(0.1)
    return False


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
