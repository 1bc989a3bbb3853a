"""The stack is never half-alive: real supervisord, real daemons, real terminals and pipes.

Every test asserts, by pid, that nothing of the checkout is left running afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest

from mytrading import venue
from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.process import instance, supervise
from mytrading.router.journal import read as read_journal
from mytrading.settings import PROJECT_ROOT, Settings, load_settings
from tests.procs import Watcher, run_cli, stack_env

pytestmark = pytest.mark.integration
MAIN = str(PROJECT_ROOT / "main.py")


@dataclass
class Rig:
    env: dict[str, str]
    s: Settings
    w: Watcher
    pids: set[int] = field(default_factory=set)  # what the test saw of the checkout


@pytest.fixture
def rig(tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The default path (the simulator server under supervisord), fast enough to trade;
    whatever the test leaves of the checkout is killed afterwards."""
    env = stack_env(tmp_env, monkeypatch)
    s = load_settings()
    r = Rig(env, s, Watcher(s))
    yield r
    r.w.close()
    _kill_all(s, r.pids)


def _kill_all(s: Settings, pids: Iterable[int]) -> None:
    """Cleanup whatever happened: nothing of the checkout survives a failed test."""
    for p in set(pids) | set(supervise.live_processes(s).values()):
        if supervise.alive(p):
            os.kill(p, signal.SIGKILL)


def _checkout_pids(s: Settings, w: Watcher | None = None) -> set[int]:
    """Every process of the checkout we can see: supervisord, its children, the lock
    holders, and every pid that sent a heartbeat."""
    pids = set(supervise.live_processes(s).values()) | set(supervise.child_pids(s))
    if w is not None:
        pids |= {m.pid for _, m in w.seen if isinstance(m, wire.Status)}
    return pids


def _wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if supervise.alive(p)]
        time.sleep(0.05)
    return left


def test_crash_loop_second_copies_and_a_killed_supervisord(rig: Rig) -> None:
    env, s, w = rig.env, rig.s, rig.w
    r = run_cli("start", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    w.wait(lambda: set(w.status) == set(DAEMONS), 30, "a heartbeat from every daemon")

    # A crash loop of one daemon: five kill -9, each restarted, each one crashes.log line,
    # and no event discarded by supervisord (at start or since).
    for _ in range(5):
        w.kill_9("reconciler")
    crashes = [json.loads(x) for x in (s.log_dir / "crashes.log").read_text().splitlines()]
    # (a crash within startsecs of the restart before is a BACKOFF, a later one EXITED)
    assert [c["process"] for c in crashes] == ["reconciler"] * 5, crashes
    assert {c["event"] for c in crashes} <= {"exited", "backoff"}, crashes
    assert "discarding event" not in (s.log_dir / "supervisord.log").read_text()

    # A second copy of each program, started by hand, is refused with the holder's pid.
    held = instance.holders(s.state_dir, supervise.ALL_PROGRAMS)
    assert set(held) == set(supervise.programs(s)), held
    rig.pids |= _checkout_pids(s, w)
    copies = {
        name: subprocess.Popen(
            [sys.executable, "-m", supervise.MODULES[name]],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in held
    }
    rig.pids |= {p.pid for p in copies.values()}  # a failure below must not leave them
    for name, p in copies.items():
        _, err = p.communicate(timeout=60)
        assert p.returncode == instance_exit_code(), (name, p.returncode, err)
        assert f"pid {held[name]}" in err and "main.py stop" in err, err
    # ... and the running ones are untouched: same holders, still beating.
    assert instance.holders(s.state_dir, supervise.ALL_PROGRAMS) == held
    w.seen.clear()
    w.pump(1.5)
    beating = {m.name: m.pid for _, m in w.seen if isinstance(m, wire.Status)}
    assert beating == {d: held[d] for d in DAEMONS}

    # start beside a running checkout is refused, naming every pid and the way out.
    r = run_cli("start", env=env)
    assert r.returncode == 1
    assert all(f"{n} pid {p}" in r.stderr for n, p in held.items()), r.stderr
    assert "python3 main.py stop" in r.stderr

    # kill -9 of supervisord: every daemon stops by itself, in order (its rank's stagger,
    # about 2 s for the last), within 3 s on a quiet machine: 10 s allowed here, as on a
    # loaded 2-core one in the full suite the teardowns (journal, recordings) ran past 3 s,
    # and past 6 s in a fresh clone's run on a slow afternoon (2026-11-26).
    sup = supervise.running_pid(s)
    assert sup is not None
    rig.pids |= _checkout_pids(s, w)
    os.kill(sup, signal.SIGKILL)
    left = _wait_gone(rig.pids, 10.0)
    assert not left, f"still alive 10 s after supervisord died: {left}"
    for d in DAEMONS:
        log = (s.log_dir / f"{d}.log").read_text()
        assert '"supervisor gone, stopping"' in log and '"stopped"' in log, d
    r = run_cli("stop", env=env)
    assert r.returncode == 0 and "not running" in r.stdout, r.stdout + r.stderr


def instance_exit_code() -> int:
    from mytrading.process.shell import EXIT_ALREADY_RUNNING

    return EXIT_ALREADY_RUNNING


HUNG_DAEMON = """
import signal, sys, time
from pathlib import Path
from mytrading.process import instance
signal.signal(signal.SIGTERM, signal.SIG_IGN)
lock = instance.acquire(Path(sys.argv[1]), "risk")
print("held", flush=True)
time.sleep(600)
"""


def test_start_refuses_beside_orphans_and_stop_finds_and_stops_them(
    tmp_env: dict[str, str],
) -> None:
    env = {**os.environ, **tmp_env, "MT_STOP_TIMEOUT_S": "2"}
    s = load_settings()
    # A router started by hand and abandoned: its shell exits at once, nobody supervises it.
    out = subprocess.run(
        [
            "sh",
            "-c",
            f"'{sys.executable}' -m mytrading.router </dev/null >/dev/null 2>&1 & echo $!",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = int(out.stdout)
    # And a hung process holding risk's lock that ignores SIGTERM.
    hung = subprocess.Popen(
        [sys.executable, "-c", HUNG_DAEMON, str(s.state_dir)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hung.stdout is not None and hung.stdout.readline() == "held\n"
        deadline = time.monotonic() + 30
        router_lock = instance.lock_path(s.state_dir, "router")
        while instance.holder(router_lock) != orphan and time.monotonic() < deadline:
            time.sleep(0.1)
        assert instance.holder(router_lock) == orphan
        with open(f"/proc/{orphan}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) != os.getpid()  # not our child

        r = run_cli("start", env=env)
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"router pid {orphan}" in r.stderr and f"risk pid {hung.pid}" in r.stderr
        assert "python3 main.py stop" in r.stderr
        assert supervise.running_pid(s) is None  # nothing was started beside them

        r = run_cli("stop", env=env)
        assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
        assert not supervise.alive(orphan)
        assert hung.wait(timeout=5) == -signal.SIGKILL
        assert '"stopped"' in (s.log_dir / "router.log").read_text()  # an orderly stop
        warning = (s.log_dir / "cli.log").read_text()
        assert "did not stop on SIGTERM, sending SIGKILL" in warning and '"risk"' in warning
        r = run_cli("stop", env=env)
        assert r.returncode == 0 and "not running" in r.stdout
    finally:
        _kill_all(s, [orphan, hung.pid])


class Terminal:
    """A pseudo-terminal that a command runs in as its controlling terminal, like an ssh
    session's; ``hang_up`` closes it as a dropped session does (the kernel then sends
    SIGHUP to the command)."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            cmd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.screen = bytearray()
        self._hang_up = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        """Keep the terminal drained (a full one would block the command's writes); close
        it from this thread when asked, so no read holds it open."""
        while not self._hang_up.is_set():
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    break
                self.screen = (self.screen + data)[-20000:]
        os.close(self.master)

    def hang_up(self) -> None:
        self._hang_up.set()
        self._reader.join(timeout=5)


def _unanswered_sends(s: Settings) -> list[str]:
    rep = read_journal(venue.current(s).dir / "router" / "journal.bin")
    return [oid for oid, jo in rep.orders.items() if jo.state == "sent"]


def test_a_lost_terminal_then_a_dead_pipe_leave_nothing_and_a_second_run_reconciles(
    rig: Rig,
) -> None:
    env, s, w = rig.env, rig.s, rig.w
    # 1. `run` in a terminal, trading; then the terminal is closed.
    term = Terminal([sys.executable, MAIN, "run"], env)
    w.wait(lambda: set(w.status) == set(DAEMONS), 40, "a heartbeat from every daemon")
    w.wait(lambda: any(isinstance(m, wire.Fill) for _, m in w.seen), 60, "a fill")
    w.pump(1.0)
    pids = _checkout_pids(s, w)
    rig.pids |= pids
    assert len(pids) >= len(DAEMONS) + 3  # + supervisord, simserver, crashwatch
    assert b"Ctrl-C stops every process" in term.screen
    term.hang_up()
    left = _wait_gone([*pids, term.proc.pid], 10.0)
    assert not left, f"still alive 10 s after the terminal closed: {left}"
    assert _unanswered_sends(s) == []
    held = {
        (m.symbol, m.account): m.quantity for _, m in w.seen if isinstance(m, wire.PositionSnapshot)
    }
    assert any(held.values()), "the first run ended flat: the second would prove little"

    # 2. `run | reader` on the same simulated day: the simulator remembers its books,
    #    so the reconciler finds nothing to report, from its first check on.
    w.close()  # a new watcher: the old one's socket still holds the first run's beats
    w = rig.w = Watcher(s)
    run2 = subprocess.Popen(
        [sys.executable, MAIN, "run"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert run2.stdout is not None and run2.stderr is not None
    w.wait(
        lambda: (
            "reconciler" in w.status
            and w.status["reconciler"].pid not in pids  # not a beat of the first run
            and w.status["reconciler"].detail["checks"] >= 3
        ),
        60,
        "three reconciliations in the second run",
    )
    rec = w.status["reconciler"].detail
    assert rec["mismatches"] == 0 and rec["order_mismatches"] == 0, rec
    assert not [m for _, m in w.seen if isinstance(m, wire.ReconEvent)]
    pids = _checkout_pids(s, w)
    rig.pids |= pids
    # The reader exits (tee killed by the same Ctrl-C), then Ctrl-C reaches `run`.
    run2.stdout.close()
    run2.send_signal(signal.SIGINT)
    left = _wait_gone([*pids, run2.pid], 10.0)
    assert not left, f"still alive 10 s after Ctrl-C: {left}"
    err = run2.stderr.read().decode(errors="replace")
    assert run2.wait(timeout=5) == 0, err
    assert "Traceback" not in err, err
    assert _unanswered_sends(s) == []
