#!/usr/bin/env python3
"""mytrading's entry point.

Run it with any Python 3.11+: the first time it creates ``.venv`` beside this file and
installs the project into it from ``requirements.lock`` (exact versions, checked against
their hashes; ``test`` adds ``requirements-dev.lock``'s test tools), again whenever
``pyproject.toml`` or a lock changes, then re-runs
itself inside that environment. ``run``, ``test`` and the other commands that trade or
backtest then build the hot modules as C (mypyc, ``mytrading/compiled.py``) when that build
is missing or stale: a minute and a half, once. Everything after that is the typer CLI in
``mytrading/commands/``: ``python3 main.py run`` · ``python3 main.py test`` · ``--help``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VPY = VENV / "bin" / "python"
STAMP = VENV / ".mytrading-installed"


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


LOCK = ROOT / "requirements.lock"  # what the stack runs on: exact versions, hashes
DEV_LOCK = ROOT / "requirements-dev.lock"  # ... and what the tests need (pytest, playwright)
BUILD_LOCK = ROOT / "requirements-build.lock"  # what builds the project itself (setuptools)
# the commands that make the compiled build first when it is missing or stale (once: a
# minute and a half on 2 cores; mytrading/compiled.py), so what they run runs as C
BUILDS_FIRST = frozenset({"run", "start", "restart", "test", "backtest", "simulate"})
LOCKED_PYTHON = (3, 11)  # the interpreter the locks were resolved for (pip-compile)


def _wanted_stamp(lock: Path) -> str:
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + lock.read_bytes() + BUILD_LOCK.read_bytes()
    )
    return f"{lock.name}:{digest.hexdigest()}"


def _installed(want: str) -> bool:
    """The venv holds ``want`` already (or the dev lock, which holds the runtime one)."""
    have = STAMP.read_text().split() if STAMP.exists() else []
    return want in have


def _ensure_venv(dev: bool) -> None:
    """Create the virtual environment if missing and install it from the lock file:
    the runtime lock for running the stack, the dev lock (runtime + test tools) for
    ``test``. Every package at its locked version and checked against its hash."""
    if not VPY.exists():
        print(f"creating {VENV} ...", file=sys.stderr, flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    lock = DEV_LOCK if dev else LOCK
    want = _wanted_stamp(lock)
    if _installed(want) or (not dev and _installed(_wanted_stamp(DEV_LOCK))):
        return
    pip = [str(VPY), "-m", "pip", "--disable-pip-version-check", "-q"]
    if sys.version_info[:2] == LOCKED_PYTHON:
        print(f"installing mytrading from {lock.name} ...", file=sys.stderr, flush=True)
        for each in (BUILD_LOCK, lock):  # the build tools first: the lock's versions win
            subprocess.check_call(
                [*pip, "install", "--require-hashes", "--no-deps", "-r", str(each)]
            )
        # the project itself: its dependencies are all in the lock, its build tools too
        subprocess.check_call(
            [*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)]
        )
    else:
        print(
            f"warning: the lock files are for Python {'.'.join(map(str, LOCKED_PYTHON))}; this "
            f"is {sys.version.split()[0]}: installing from pyproject.toml's ranges instead "
            "(not reproducible)",
            file=sys.stderr,
            flush=True,
        )
        subprocess.check_call([*pip, "install", "-e", f"{ROOT}[dev]" if dev else str(ROOT)])
    # The openalgo SDK compiles ~20 numba kernels on its first import (~12 s); do it
    # now, once, rather than in the first process that talks to OpenAlgo.
    subprocess.check_call([str(VPY), "-c", "import openalgo"])
    # ... and ours (the simulated market's model, option Greeks): ~1 s, once
    subprocess.check_call([str(VPY), "-c", "from mytrading.sim.paths import warm; warm()"])
    kept = [w for w in (STAMP.read_text().split() if STAMP.exists() else []) if w != want]
    STAMP.write_text(" ".join([*kept, want]))


if __name__ == "__main__":
    if sys.version_info < (3, 11):  # noqa: UP036 - this line runs under any system Python
        sys.exit(f"mytrading needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not _in_venv():
        _ensure_venv(dev=sys.argv[1:2] == ["test"])
        os.execv(str(VPY), [str(VPY), str(Path(__file__).resolve()), *sys.argv[1:]])
    os.umask(0o077)  # every file the stack writes is private (docs/security.md)
    if sys.argv[1:2] and sys.argv[1] in BUILDS_FIRST:
        from mytrading import compiled  # before any module it compiles is imported

        compiled.ensure(say=lambda line: print(line, file=sys.stderr, flush=True))
    from mytrading.commands.main import app

    app()
