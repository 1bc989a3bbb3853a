"""One copy of each process per checkout, and no process outliving its supervisor.

**The lock.** Every daemon (and the simulator server) takes an exclusive POSIX record lock
on ``<state>/<name>.lock`` before it binds a socket, and writes its pid into the file. A
second copy finds the lock held and exits at once, naming the holder. The kernel drops
the lock when the holder dies, however it dies (``kill -9`` included), so a stale file
never blocks a start. Anyone can ask who holds a lock (``F_GETLK``) without taking it:
that is how ``main.py start`` refuses beside a live copy and how ``main.py stop`` finds
every process of the checkout, supervised or not.

POSIX record locks rather than ``flock``: ``F_GETLK`` names the holder's pid without
acquiring anything (a probe with ``flock`` would take the lock for an instant and could
make a daemon starting at that instant refuse), and a record lock is not inherited by a
forked child, so it cannot outlive the daemon in some helper process.

**The parent.** A process supervised by supervisord asks the kernel for SIGHUP when its
parent dies (``PR_SET_PDEATHSIG``) and also watches ``getppid()`` in its loop; either way
it then stops in order, exactly as on SIGTERM. So ``kill -9`` of supervisord, or of the
``main.py run`` that owns it, leaves no daemon running with nobody watching.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# struct flock on 64-bit Linux: short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid, padded to 32 bytes.
_FLOCK = "hhqqi4x"
_PR_SET_PDEATHSIG = 1
# Loaded now, not in die_with_parent: that also runs in a forked child before exec, where
# loading a library could wait forever on a lock another thread held at the fork.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class AlreadyRunningError(RuntimeError):
    """Another live process of this checkout holds the lock."""

    def __init__(self, name: str, pid: int | None, path: Path) -> None:
        who = f"pid {pid}" if pid else "another process"
        super().__init__(
            f"{name} is already running in this checkout ({who} holds {path}); "
            "stop it with `python3 main.py stop`"
        )
        self.name, self.pid, self.path = name, pid, path


def lock_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.lock"


@dataclass
class InstanceLock:
    """The held lock of one process; released when the process exits."""

    name: str
    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor drops the record lock
            self.fd = -1


def acquire(state_dir: Path, name: str) -> InstanceLock:
    """Take ``<state_dir>/<name>.lock`` or raise ``AlreadyRunningError`` naming the holder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(state_dir, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise AlreadyRunningError(name, holder(path), path) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return InstanceLock(name, path, fd)


def holder(path: Path) -> int | None:
    """The pid of the live process holding ``path``'s lock, or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        probe = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        l_type, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, probe))
    finally:
        os.close(fd)
    return pid if l_type != fcntl.F_UNLCK and pid > 0 else None


def holders(state_dir: Path, names: tuple[str, ...]) -> dict[str, int]:
    """Each of ``names`` whose lock is held, with the holder's pid."""
    out = {}
    for name in names:
        pid = holder(lock_path(state_dir, name))
        if pid is not None:
            out[name] = pid
    return out


def supervised() -> bool:
    """True when supervisord started this process (it sets SUPERVISOR_ENABLED)."""
    return os.environ.get("SUPERVISOR_ENABLED") == "1"


def die_with_parent(sig: int = signal.SIGHUP) -> int:
    """Ask the kernel to send ``sig`` when the parent process dies (Linux); return the
    parent's pid as seen now, for a ``getppid()`` watch that also covers the moment
    before the request took effect and kernels without it."""
    if _LIBC is not None and _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return os.getppid()


def parent_gone(expected_ppid: int) -> bool:
    """The parent we started under has died: we were re-parented, or the parent we saw at
    start was already init (it died before we could ask to be told)."""
    return expected_ppid == 1 or os.getppid() != expected_ppid
