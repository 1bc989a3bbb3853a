"""Helpers for tests that start real daemon processes."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS, Subscriber
from mytrading.settings import PROJECT_ROOT, Settings


def spawn(daemon: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {
        **os.environ,
        **env,
        "MT_CLOCK_ANCHOR_NS": env.get("MT_CLOCK_ANCHOR_NS", str(time.time_ns())),
    }
    return subprocess.Popen(
        [sys.executable, "-m", f"mytrading.{daemon}"],
        env=full,
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process still running, then wait for each."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=10)


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python main.py <args>`` with these MT_* variables on top of the environment."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``main.py <args>`` in this process (typer's runner) with these MT_* variables: the
    same commands as ``run_cli`` without a Python start-up each (about 1.2 s here), for
    commands that start no process of the stack. Returns what ``run_cli`` returns."""
    from typer.testing import CliRunner

    from mytrading.commands.main import app

    mt = {k: v for k, v in env.items() if k.startswith("MT_") or k.isupper()}
    # A command may set up logging on the runner's own streams, closed once it returns:
    # what this process logged with before comes back after.
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(app, list(args), env=mt, catch_exceptions=False)
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def temp_vars(base: Path, run_dir: str) -> dict[str, str]:
    """MT_* variables that keep a stack's logs, sockets and state under ``base`` (its
    sockets in ``run_dir``): a test's ``tmp_env``, and the benches' stacks."""
    from tests.simhelpers import free_port

    return {
        "MT_LOG_DIR": str(base / "logs"),
        "MT_RUN_DIR": run_dir,
        "MT_STATE_DIR": str(base / "state"),
        "MT_RECORD_DB": str(base / "data" / "marketdata.duckdb"),
        "MT_RISK_DB": str(base / "data" / "risk.duckdb"),
        "MT_HISTORY_DB": str(base / "data" / "history.duckdb"),
        "MT_BACKTEST_DB": str(base / "data" / "backtests.duckdb"),
        "MT_REPORT_DIR": str(base / "backtests"),
        "MT_WEBHOOK_DB": str(base / "data" / "webhooks.sqlite"),
        "MT_ALERTS_DB": str(base / "data" / "alerts.sqlite"),
        "MT_CONTROL_DB": str(base / "data" / "control.sqlite"),
        "MT_INSTRUMENTS_DB": str(base / "data" / "instruments.duckdb"),
        "MT_SIGNALS_PORT": str(free_port()),  # tests run beside a user's stack on 5100
        # ... and its dashboard on 9108: one test's monitor still closing, or a stack of
        # another test run at once, would hold the port and count an error
        "MT_MONITOR_PORT": str(free_port()),
        # Process tests that start single daemons use the in-process simulated broker;
        # the full-stack test switches to the default OpenAlgo path with its own server.
        "MT_BROKER": "sim",
        # One strategy unless a test asks for more: order counts stay predictable.
        "MT_STRATEGIES": "sma_crossover",
        # Indices only unless a test asks for stocks: 40 fewer symbols to quote on 2 cores
        "MT_SIM_STOCKS": "",
        # each test's simulator its own key: a client that reached another test's server
        # (a port taken twice) is refused, never trading in the wrong books
        "MT_SIM_API_KEY": f"test-{secrets.token_hex(8)}",
        # one market clock for every process a test starts, as the launcher gives the
        # stack one: a daemon started later (a restart) is not minutes behind the others
        # (risk refuses an intent decided "minutes ago" as stale)
        "MT_CLOCK_ANCHOR_NS": str(time.time_ns()),
    }


def stack_env(tmp_env: dict[str, str], monkeypatch: Any, **overrides: str) -> dict[str, str]:
    """The default path (the simulator server under supervisord, REST + WebSocket) in the
    test's temp dir, fast enough to trade within seconds (one 1-minute bar per second);
    set in this process too, so ``load_settings()`` here sees the same stack."""
    env = {**os.environ, **stack_vars(tmp_env), **overrides}
    for k, v in env.items():
        if k.startswith("MT_"):
            monkeypatch.setenv(k, v)
    return env


def stack_vars(tmp_env: dict[str, str]) -> dict[str, str]:
    """``tmp_env`` made the default path's stack (``stack_env``), nothing else read."""
    from tests.simhelpers import free_port

    return {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_SIM_REST_PORT": str(free_port()),
        "MT_SIM_WS_PORT": str(free_port()),
        "MT_SIM_SPEED": "60",
        "MT_STRATEGY_PARAMS": json.dumps({"sma_crossover": {"fast": 2, "slow": 4}}),
        "MT_RECON_INTERVAL_S": "2",
    }


def stop_all(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 10) -> None:
    """SIGTERM to every process at once, then wait for each (killed if it outlasts
    ``timeout``): a test's daemons stopped in parallel, none left behind."""
    procs = list(procs)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=timeout)


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a process started with ``env`` loads."""
    from mytrading.settings import load_settings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def confirm_live(env: dict[str, str]) -> dict[str, str]:
    """What ``main.py start --live`` does, for tests that start daemons themselves: ask
    each account's OpenAlgo (here a simulator server standing in for a real one) who it
    is, write the confirmation, and return ``env`` with its token. ``env`` must already
    say ``MT_MODE=live`` and name the accounts."""
    from mytrading.domain.accounts import load_accounts
    from mytrading.process import live

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        s = settings_of(env)
        accounts = load_accounts(s)  # reads the accounts' key variables from the environment
        token = live.confirm(s, live.identify(s, accounts), "test")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {**env, live.TOKEN_ENV: token}


def config_copy(env: dict[str, str], name: str) -> Path:
    """A copy of the configuration ``env`` reads, beside its state directory, to edit."""
    base = Path(env.get("MT_CONFIG_DIR") or PROJECT_ROOT / "config")
    out = Path(env["MT_STATE_DIR"]).parent / name
    shutil.copytree(base, out, dirs_exist_ok=True)
    return out


def all_day_config(env: dict[str, str]) -> dict[str, str]:
    """``env`` with a configuration whose markets are open all day today, yesterday and
    tomorrow (IST, weekends too): special sessions 00:00-23:59, and risk's entry and exit
    windows as wide. Live refuses MT_RISK_ANY_HOUR (a test-only setting); a live test run
    at night trades on this instead, through the same calendar code as production."""
    import re
    from datetime import datetime, timedelta

    from mytrading.domain.refdata import IST

    out = config_copy(env, "config-allday")
    today = datetime.now(IST).date()
    exchanges = '["NSE", "NFO", "BSE", "BFO", "NSE_INDEX", "BSE_INDEX"]'
    days = "".join(
        f'\n[[special_sessions]]\ndate = "{today + timedelta(days=d)}"\n'
        f'exchanges = {exchanges}\nopen = "00:00"\nclose = "23:59"\n'
        for d in (-1, 0, 1)
    )
    hol = out / "holidays.toml"
    hol.write_text(hol.read_text() + days)
    sess = out / "sessions.toml"
    sess.write_text(
        re.sub(r'mis_squareoff = "[0-9:]+"', 'mis_squareoff = "23:59"', sess.read_text())
    )
    risk = out / "risk.toml"
    risk.write_text(
        re.sub(r'(entry|exit)_window = "[0-9:-]+"', r'\1_window = "00:00-23:59"', risk.read_text())
    )
    return {**env, "MT_CONFIG_DIR": str(out)}


def live_on(env: dict[str, str], host: str) -> dict[str, str]:
    """``env`` made live against the OpenAlgo-compatible server at ``host`` as the main
    account (a simulator standing in for a real OpenAlgo), confirmed. MT_RISK_ANY_HOUR
    (refused live) becomes a configuration open all day (``all_day_config``)."""
    from tests.simhelpers import WS_URL

    if env.get("MT_RISK_ANY_HOUR", "").lower() == "true":
        env = all_day_config({k: v for k, v in env.items() if k != "MT_RISK_ANY_HOUR"})
    return confirm_live(
        {
            **env,
            "MT_MODE": "live",
            "MT_SIM_SERVER": "false",
            "MT_SIM_START": "",  # live runs on the wall clock
            "MT_OPENALGO_HOST": host,
            "MT_OPENALGO_WS_URL": WS_URL[host],
        }
    )


MIN_WAIT_S = 90.0


class Watcher:
    """Subscribes to every daemon's topics and waits for conditions on what it saw."""

    def __init__(self, settings: Settings, prefixes: tuple[str, ...] = ("",)) -> None:
        from mytrading.messaging.curve import TOOLS, secure_bus

        secure_bus(settings, TOOLS, lambda *_a, **_k: None)  # tcp: as the operator's tools
        self.ctx = zmq.Context()
        eps = settings.endpoints()
        self.sub = Subscriber(self.ctx, [eps.pub(d) for d in DAEMONS], prefixes)
        self.status: dict[str, wire.Status] = {}
        self.seen: list[tuple[str, wire.Msg]] = []

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.sub.sock.poll(int(left * 1000) + 1):
                topic, msg = self.sub.recv()
                self.seen.append((topic, msg))
                if isinstance(msg, wire.Status):
                    self.status[msg.name] = msg

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait for ``cond``: something that must happen. ``timeout`` is what a quiet
        machine needs; the bound used is at least ``MIN_WAIT_S``, as on a 2-core machine
        shared with CI's other work a daemon's start or a restart took several times
        longer (30 s for every heartbeat in a fresh clone's run, 2026-11-26), and a fault
        never makes the condition true however long the wait."""
        timeout = max(timeout, MIN_WAIT_S)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            self.pump(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def kill_9(self, daemon: str, timeout: float = 15) -> float:
        """``kill -9`` a daemon (its pid from its heartbeat); wait for the process that
        replaces it. Returns the seconds from the kill to the new process's first
        heartbeat, by that heartbeat's own send stamp: what every peer sees, whatever the
        backlog of this watcher."""
        old = self.status[daemon].pid
        os.kill(old, signal.SIGKILL)
        killed_ns = time.time_ns()
        self.wait(lambda: self.status[daemon].pid != old, timeout, f"{daemon} back")
        new = self.status[daemon].pid
        first = next(
            m
            for _, m in self.seen
            if isinstance(m, wire.Status) and m.name == daemon and m.pid == new
        )
        return (first.ts - killed_ns) / 1e9

    def close(self) -> None:
        self.sub.close()
        self.ctx.destroy(linger=0)


def loose_files(*roots: Any) -> list[str]:
    """Every file under ``roots`` readable by anyone but its owner, or a directory others
    may enter (sockets aside: their directory guards them), as "mode path"."""
    import stat as st

    loose = []
    for root in map(Path, roots):
        if not root.exists():
            continue
        for p in [root, *root.rglob("*")]:
            mode = p.lstat().st_mode
            if st.S_ISSOCK(mode) or st.S_ISLNK(mode):
                continue
            if mode & 0o077:
                loose.append(f"{oct(mode & 0o777)} {p}")
    return loose
