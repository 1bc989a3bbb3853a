#!/usr/bin/env python3
"""mytrading's entry point.

Run it with any Python 3.11+: the first time it creates ``.venv`` beside this file and
installs the project into it (again whenever ``pyproject.toml`` changes), then re-runs
itself inside that environment. Everything after that is the typer CLI in
``mytrading/cli.py``:  ``python3 main.py run``  ·  ``python3 main.py test``  ·  ``--help``.
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


def _wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def _ensure_venv() -> None:
    """Create and install the virtual environment if it is missing or out of date."""
    if not VPY.exists():
        print(f"creating {VENV} ...", file=sys.stderr, flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    want = _wanted_stamp()
    have = STAMP.read_text().strip() if STAMP.exists() else ""
    if have != want:
        print("installing mytrading and its dependencies ...", file=sys.stderr, flush=True)
        pip = [str(VPY), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.check_call([*pip, "install", "-e", f"{ROOT}[dev]"])
        # The openalgo SDK compiles ~20 numba kernels on its first import (~12 s); do it
        # now, once, rather than in the first process that talks to OpenAlgo.
        subprocess.check_call([str(VPY), "-c", "import openalgo"])
        STAMP.write_text(want)


if __name__ == "__main__":
    if sys.version_info < (3, 11):  # noqa: UP036 - this line runs under any system Python
        sys.exit(f"mytrading needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not _in_venv():
        _ensure_venv()
        os.execv(str(VPY), [str(VPY), str(Path(__file__).resolve()), *sys.argv[1:]])
    os.umask(0o077)  # every file the stack writes is private (docs/security.md)
    from mytrading.cli import app

    app()
