"""``main.py service``: the systemd unit it writes (checked by ``systemd-analyze verify``
where the host has it, and shown to fail on a broken unit, so the check can fail), live
confirmed once at install, the runtime directory pinned in ``.env``, and removal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mytrading.process import service
from tests.procs import cli


def test_install_writes_a_unit_systemd_accepts(tmp_env: dict[str, str], tmp_path: Path) -> None:
    units = tmp_path / "units"
    r = cli("service", "install", "--unit-dir", str(units), env=tmp_env)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (units / service.UNIT_NAME).read_text()
    lines = set(text.splitlines())
    assert any(ln.startswith("ExecStart=") and ln.endswith("main.py start") for ln in lines)
    assert any(ln.startswith("ExecStop=") and ln.endswith("main.py stop") for ln in lines)
    for want in (
        "Type=forking",
        "Restart=on-failure",
        "PIDFile=/run/mytrading/supervisord.pid",
        "RuntimeDirectory=mytrading",
        "Environment=MT_RUN_DIR=/run/mytrading",
        "WantedBy=multi-user.target",
    ):
        assert want in lines, want
    if shutil.which("systemd-analyze") is None:
        assert "not verified" in r.stdout
        pytest.skip("systemd-analyze not on this host: the unit was written, not verified")
    assert "systemd-analyze verify: ok" in r.stdout
    # the check can fail: a setting systemd would ignore, and a relative ExecStart
    bad = units / "bad.service"
    bad.write_text(text.replace("Type=forking", "Type=forkng"))
    assert not service.verify(bad)[0]
    bad.write_text(text.replace("ExecStart=/", "ExecStart="))
    assert not service.verify(bad)[0]


def test_a_user_unit_and_removal(tmp_env: dict[str, str], tmp_path: Path) -> None:
    units = tmp_path / "user-units"
    r = cli("service", "install", "--user", "--unit-dir", str(units), env=tmp_env)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (units / service.UNIT_NAME).read_text()
    assert "WantedBy=default.target" in text and "User=" not in text
    assert cli("service", "status", "--unit-dir", str(units), env=tmp_env).returncode == 0
    r = cli("service", "uninstall", "--unit-dir", str(units), env=tmp_env)
    assert r.returncode == 0 and not (units / service.UNIT_NAME).exists()
    assert cli("service", "status", "--unit-dir", str(units), env=tmp_env).returncode == 3


def test_live_is_confirmed_once_at_install(tmp_env: dict[str, str], tmp_path: Path) -> None:
    units = tmp_path / "units"
    live = {
        **tmp_env,
        "MT_MODE": "live",
        "MT_BROKER": "openalgo",
        "MT_SIM_SERVER": "false",
        "MT_OPENALGO_API_KEY": "k" * 64,
    }
    r = cli("service", "install", "--unit-dir", str(units), env=live)
    assert r.returncode == 2 and "--live" in r.stderr
    assert not (units / service.UNIT_NAME).exists()
    r = cli("service", "install", "--live", "--unit-dir", str(units), env=tmp_env)
    assert r.returncode == 2 and "MT_MODE=paper" in r.stderr  # --live where nothing is live
    r = cli("service", "install", "--live", "--unit-dir", str(units), env=live)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "main.py start --live" in (units / service.UNIT_NAME).read_text()


def test_the_run_dir_is_pinned_in_env_once(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("MT_MODE=paper")
    run = Path("/run/mytrading")
    assert service.pin_run_dir(env, run).startswith("added")
    assert service.pin_run_dir(env, run).endswith("already has MT_RUN_DIR=/run/mytrading")
    assert env.read_text().splitlines()[0] == "MT_MODE=paper"
    assert env.read_text().count("MT_RUN_DIR=") == 1
    assert "make them the same" in service.pin_run_dir(env, Path("/run/other"))
