"""The stack as a systemd service: the unit ``main.py service install`` writes, and its
install, status and removal.

The unit runs the stack's own commands (``main.py start`` / ``main.py stop``), so a service
start validates the configuration, says where orders go and starts supervisord exactly as
an operator's start does; systemd tracks supervisord through its pid file and starts the
stack again when it dies (``Restart=on-failure``) or the host boots. supervisord restarts
a single daemon that dies; systemd restarts the whole stack only when supervisord itself
is gone.

The settings come from the checkout's ``.env``, read by the stack itself (the unit's
working directory is the checkout): systemd's ``EnvironmentFile`` would parse the file
by other rules (JSON values with quotes, ``#`` inside values), so it is not used.

The runtime directory (supervisord's socket and pid file, the ipc sockets) is the unit's
own ``RuntimeDirectory`` (``/run/mytrading``, or ``$XDG_RUNTIME_DIR/mytrading`` for a user
unit): the default under ``/tmp`` would be emptied by systemd-tmpfiles after ten days
unused, and a shell with ``XDG_RUNTIME_DIR`` set would look elsewhere. Install puts the
same ``MT_RUN_DIR`` in the checkout's ``.env``, so ``status``, ``stop`` and ``logs`` from a
shell find the service's stack.

Live mode is confirmed once, at install, by the operator (``--live``, typed): the unit then
carries ``start --live``, which is that confirmation for every later start, boots
included. Without ``--live`` a unit for ``MT_MODE=live`` is refused: a service that cannot
be confirmed would fail at every boot.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mytrading.settings import PROJECT_ROOT, Settings

UNIT_NAME = "mytrading.process.service"


@dataclass(frozen=True)
class UnitPlace:
    """Where the unit goes and how systemctl is asked about it."""

    directory: Path
    user: bool  # a user unit (``systemctl --user``): no root needed, runs while logged in

    @property
    def path(self) -> Path:
        return self.directory / UNIT_NAME

    def systemctl(self, *args: str) -> list[str]:
        return ["systemctl", *(["--user"] if self.user else []), *args]


def place(user: bool, directory: Path | None = None) -> UnitPlace:
    if directory is not None:
        return UnitPlace(directory, user)
    if user:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return UnitPlace(base / "systemd" / "user", True)
    return UnitPlace(Path("/etc/systemd/system"), False)


def run_dir(user: bool) -> Path:
    """The unit's runtime directory, as the stack will see it (``%t/mytrading``)."""
    if user:
        return Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}") / "mytrading"
    return Path("/run/mytrading")


def unit_text(s: Settings, python: str, user: bool, live_flag: bool, after: str = "") -> str:
    """The unit file for this checkout. ``python``: the interpreter that runs ``main.py``
    (the checkout's venv, so a boot does not reinstall anything); ``after``: another
    unit the stack should start after (``openalgo.service`` on the same host)."""
    home = PROJECT_ROOT
    main = home / "main.py"
    start = f"{python} {main} start" + (" --live" if live_flag else "")
    pid = run_dir(user) / "supervisord.pid"
    after_units = " ".join(["network-online.target", *([after] if after else [])])
    lines = [
        "# Written by `main.py service install`; remove it with `main.py service uninstall`.",
        "[Unit]",
        f"Description=mytrading trading stack ({home})",
        "Documentation=file://" + str(home / "docs" / "deployment.md"),
        f"After={after_units}",
        "Wants=network-online.target",
        # at most 5 stack restarts in 10 minutes: a stack that cannot start is left failed
        # (an alert and `systemctl status` say so) rather than hammering a broker
        "StartLimitIntervalSec=600",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=forking",
        f"WorkingDirectory={home}",
        f"PIDFile={pid}",
        f"ExecStart={start}",
        f"ExecStop={python} {main} stop",
        "Restart=on-failure",
        "RestartSec=15",
        "TimeoutStartSec=180",
        f"TimeoutStopSec={int(s.liveness.stop_timeout_s) * 3 + 30}",
        # supervisord and its daemons are stopped by ExecStop, in order; what is left
        # after it (nothing, normally) is killed with the unit's cgroup
        "KillMode=mixed",
        "UMask=0077",
        # private, not cleaned by tmpfiles, removed when the unit stops
        "RuntimeDirectory=mytrading",
        "RuntimeDirectoryMode=0700",
        f"Environment=MT_RUN_DIR={run_dir(user)}",
        "Environment=PYTHONUNBUFFERED=1",
        "Environment=TZ=Asia/Kolkata",
    ]
    if not user:
        lines.append(f"User={getpass.getuser()}")
    lines += [
        "",
        "[Install]",
        f"WantedBy={'default.target' if user else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def verify(path: Path) -> tuple[bool, str]:
    """``systemd-analyze verify`` on the unit file, where systemd-analyze is present:
    (ok, what it said); (True, "not available") where it is not. A setting it ignores
    (``path:line: ... ignoring``) fails too: it exits 0 for those."""
    exe = shutil.which("systemd-analyze")
    if exe is None:
        return True, "systemd-analyze not available here: the unit was not verified"
    r = subprocess.run([exe, "verify", str(path)], capture_output=True, text=True, timeout=60)
    said = (r.stdout + r.stderr).strip()
    ignored = [ln for ln in said.splitlines() if ln.startswith(f"{path}:")]
    return r.returncode == 0 and not ignored, said


def pin_run_dir(env_file: Path, run: Path) -> str:
    """Make the checkout's ``.env`` name the unit's runtime directory (so the shell's
    commands find the service's stack); what was done, in a sentence."""
    line = f"MT_RUN_DIR={run}"
    text = env_file.read_text() if env_file.exists() else ""
    have = [ln for ln in text.splitlines() if ln.strip().startswith("MT_RUN_DIR=")]
    if have == [line]:
        return f"{env_file} already has {line}"
    if have:
        return f"{env_file} sets {have[-1]}; the unit uses {line}: make them the same"
    with env_file.open("a") as fh:
        fh.write(("" if not text or text.endswith("\n") else "\n")
                 + "# the systemd unit's runtime directory (main.py service install)\n"
                 + line + "\n")  # fmt: skip
    os.chmod(env_file, 0o600)
    return f"added {line} to {env_file}"


def systemctl(where: UnitPlace, *args: str) -> tuple[bool, str]:
    """Run systemctl (for ``where``'s scope); (ok, its output). Not ok, with the reason,
    where systemd is not running (a container, a host without it)."""
    if shutil.which("systemctl") is None:
        return False, "systemctl not found: systemd is not this host's service manager"
    try:
        r = subprocess.run(where.systemctl(*args), capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return r.returncode == 0, (r.stdout + r.stderr).strip()
