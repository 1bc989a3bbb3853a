"""A strategy hook that does not return is contained: the others keep trading.

Hooks run one at a time on the engine's loop, so one that loops for ever (``while True``),
sleeps (``time.sleep(30)``) or waits on the network without a timeout would freeze every
strategy of the engine. Two deadlines, armed around every hook call:

* **Soft** (``MT_HOOK_TIMEOUT_S``, 3 s): ``SIGALRM`` raises ``HookTimeout`` inside the hook,
  wherever it is: a Python loop, a ``sleep``, a blocking ``recv`` (the signal interrupts
  the system call, and the raised exception ends it). ``HookTimeout`` is a
  ``BaseException``, so a strategy's ``except Exception`` does not swallow it. The runner
  quarantines the strategy at once (hooks off, entries cancelled, protective orders kept);
  risk keeps managing its positions (exits, the kill switch, the MIS square-off), as for
  any quarantined strategy.
* **Hard** (``MT_HOOK_KILL_S``, 15 s): a hook the signal cannot stop (a C call that holds
  the interpreter, a strategy that catches ``BaseException``) is ended with the process.
  A watchdog *process* (this module run as a program; a thread could not run while C
  code holds the interpreter) reads the slot the engine writes at every hook call
  (``hook.slot``, an ``mmap``: the strategy, the hook, when it began; a memory write, no
  system call) and sends ``SIGABRT`` to an engine whose hook has run past the deadline;
  ``faulthandler`` (enabled at start, signal-safe) writes every thread's traceback to
  ``stuck.trace`` and the process ends. supervisord starts the engine again, which finds
  the trace and the slot and quarantines that strategy for the rest of the day
  (``stuck-<day>.json``), with an alert. A ``kill -9`` leaves no trace: no strategy is
  blamed for it.
"""

from __future__ import annotations

import faulthandler
import json
import mmap
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

SLOT_BYTES = 128
_ARMED = struct.Struct("<d")  # the slot: when the hook began (monotonic), then its name
WATCH_EVERY_S = 0.25


class HookTimeout(BaseException):
    """Raised inside a hook that ran past its soft deadline."""


class HookDeadline:
    """Arms both deadlines around a hook call (main thread only: signals go there)."""

    def __init__(self, state_dir: Path, soft_s: float, hard_s: float) -> None:
        self.soft_s = soft_s
        self.hard_s = hard_s
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.current = ""  # "strategy hook" while one runs
        self.timeouts = 0
        slot = self.dir / "hook.slot"
        fd = os.open(slot, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, SLOT_BYTES)
            self._slot = mmap.mmap(fd, SLOT_BYTES)
        finally:
            os.close(fd)
        self._slot[:SLOT_BYTES] = bytes(SLOT_BYTES)
        self._trace = open(self.dir / "stuck.trace", "a")  # noqa: SIM115 - faulthandler's, for life
        faulthandler.enable(file=self._trace, all_threads=True)
        signal.signal(signal.SIGALRM, self._alarm)
        self._watcher = subprocess.Popen(
            [sys.executable, "-m", "mytrading.engine.watchdog", str(slot), str(os.getpid()),
             str(hard_s)],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def arm(self, strategy: str, kind: str) -> None:
        self.current = f"{strategy} {kind}"
        name = f"{strategy}\t{kind}".encode()[: SLOT_BYTES - _ARMED.size - 1]
        self._slot[_ARMED.size : _ARMED.size + len(name) + 1] = name + b"\0"
        self._slot[: _ARMED.size] = _ARMED.pack(time.monotonic())  # last: armed
        signal.setitimer(signal.ITIMER_REAL, self.soft_s)

    def disarm(self) -> None:
        self.current = ""  # first: an alarm from here on finds no hook and does nothing
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._slot[: _ARMED.size] = _ARMED.pack(0.0)

    def _alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.current:
            self.timeouts += 1
            raise HookTimeout(f"{self.current} ran over {self.soft_s:g}s")

    def close(self) -> None:
        self.disarm()
        self._watcher.terminate()
        try:
            self._watcher.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._watcher.kill()
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        faulthandler.disable()
        self._slot.close()
        self._trace.close()


def _slot_hook(raw: bytes) -> tuple[float, str, str]:
    """(when it began, strategy, hook) from a slot's bytes; 0.0: no hook running."""
    (began,) = _ARMED.unpack_from(raw)
    name = raw[_ARMED.size :].split(b"\0", 1)[0].decode(errors="replace")
    strategy, _, hook = name.partition("\t")
    return began, strategy, hook


def watch(slot: Path, pid: int, hard_s: float) -> None:
    """The watchdog process: SIGABRT to ``pid`` once a hook has run past ``hard_s``
    (SIGKILL if that does not end it); returns when ``pid`` is gone."""
    parent = os.getppid()
    fd = os.open(slot, os.O_RDONLY)
    try:
        view = mmap.mmap(fd, SLOT_BYTES, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    while os.getppid() == parent:
        began, _, _ = _slot_hook(view[:SLOT_BYTES])
        if began and time.monotonic() - began > hard_s:
            os.kill(pid, signal.SIGABRT)  # faulthandler writes the traceback, it ends
            time.sleep(3.0)
            if os.getppid() == parent:
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(WATCH_EVERY_S)


def stuck_at_last_exit(state_dir: Path) -> tuple[str, str, str] | None:
    """(strategy, hook, traceback) when the previous engine was ended by the hard
    deadline inside a strategy's hook; the evidence is consumed (read once)."""
    trace_file = state_dir / "stuck.trace"
    slot_file = state_dir / "hook.slot"
    try:
        trace = trace_file.read_text(errors="replace")
    except FileNotFoundError:
        return None
    if not trace.strip():
        return None
    trace_file.write_text("")
    try:
        raw = slot_file.read_bytes()
    except FileNotFoundError:
        return None
    if len(raw) < SLOT_BYTES:
        return None
    began, strategy, hook = _slot_hook(raw)
    if not began or not strategy:
        return None  # it ended outside a hook (a crash of the engine's own)
    return strategy, hook, trace[-4000:]


def stuck_today(state_dir: Path, day: str) -> dict[str, str]:
    """Strategies ended by the hard deadline today, with the reason: quarantined at every
    start until the day ends."""
    try:
        got = json.loads((state_dir / f"stuck-{day}.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): str(v) for k, v in got.items()} if isinstance(got, dict) else {}


def mark_stuck(state_dir: Path, day: str, strategy: str, reason: str) -> None:
    kept = stuck_today(state_dir, day)
    kept[strategy] = reason
    tmp = state_dir / f"stuck-{day}.json.tmp"
    tmp.write_text(json.dumps(kept, indent=1))
    os.replace(tmp, state_dir / f"stuck-{day}.json")
    for old in state_dir.glob("stuck-*.json"):  # earlier days' are done with
        if old.name != f"stuck-{day}.json":
            old.unlink(missing_ok=True)


if __name__ == "__main__":
    watch(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's resident set now (``/proc/self/statm``: a few µs)."""
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * _PAGE


class MemoryGuard:
    """A strategy that allocates without bound is stopped by its own limit, not by the
    host's OOM killer (which would take every strategy with it).

    Once a second the engine's RSS is compared with ``MT_ENGINE_MAX_RSS_MB``. Above it, the
    runner measures RSS around each hook call for ``ATTRIBUTE_S`` (a few µs a call, only
    then); the strategy whose hooks grew it most is quarantined and its own attributes
    dropped (``StrategyRunner.release``: its books stay, what it allocated goes), with an
    alert. Growth outside any hook (the engine's own) is said, not blamed on a strategy."""

    ATTRIBUTE_S = 2.0

    def __init__(self, limit_mb: float) -> None:
        self.limit = int(limit_mb * 2**20)
        self.since = 0.0  # monotonic time attribution began (0.0: not attributing)
        self.said_unattributed = False

    def over(self) -> bool:
        return bool(self.limit) and rss_bytes() > self.limit
