"""The private runtime directory is ours or refused; files are made private; live refuses
the settings made for tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mytrading.process.rundir import RunDirError, ensure_private_dir, make_private
from mytrading.settings import ConfigError, FaultSwitches, load_settings
from tests.procs import cli


def test_the_runtime_dir_is_created_private(tmp_path: Path) -> None:
    d = ensure_private_dir(tmp_path / "a" / "run")
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    ensure_private_dir(d)  # ours already: fine


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_foreign_runtime_dir_is_refused_and_start_says_why(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    run = Path(tmp_env["MT_RUN_DIR"])
    run.mkdir(mode=0o700)
    os.chown(run, 65534, 65534)  # another user made it first (it is predictable)
    try:
        with pytest.raises(RunDirError, match="belongs to uid 65534, not to you"):
            ensure_private_dir(run)
        r = cli("start", env=tmp_env)
        assert r.returncode == 2 and "belongs to uid 65534" in r.stderr, r.stdout + r.stderr
    finally:
        os.chown(run, os.getuid(), os.getgid())
        run.rmdir()


def test_a_wide_or_linked_runtime_dir_is_refused(tmp_path: Path) -> None:
    wide = tmp_path / "wide"
    wide.mkdir()
    os.chmod(wide, 0o755)
    with pytest.raises(RunDirError, match="is mode 0o755"):
        ensure_private_dir(wide)
    link = tmp_path / "link"
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    link.symlink_to(mine)
    with pytest.raises(RunDirError, match="not a directory"):
        ensure_private_dir(link)


def test_what_an_older_version_left_readable_is_made_private(tmp_path: Path) -> None:
    (tmp_path / "state" / "router").mkdir(parents=True)
    old = tmp_path / "state" / "router" / "journal.bin"
    old.write_bytes(b"x")
    os.chmod(old, 0o644)
    os.chmod(tmp_path / "state", 0o755)
    assert make_private(tmp_path / "state") >= 2
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert make_private(tmp_path / "state") == 0


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("journal_fsync", False, "MT_JOURNAL_FSYNC=false"),
        ("router_crash_at", "sent", "MT_ROUTER_CRASH_AT=sent"),
        ("risk_any_hour", True, "MT_RISK_ANY_HOUR=true"),
        ("sim_faults", True, "MT_SIM_FAULTS=true"),
        ("sim_faults", True, "MT_SIM_FAULTS=seed=1,lose_place=0.3,clock_offset_s=-60"),
        ("bus_curve", False, "MT_BUS_CURVE=false"),
    ],
)
def test_live_refuses_each_test_only_setting(
    tmp_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    value: object,
    named: str,
) -> None:
    live = {"mode": "live", "broker": "openalgo", "sim_server": False, "openalgo_api_key": "k"}
    given: dict[str, object] = {setting: value}
    if setting in FaultSwitches.model_fields:  # a test hook: not a setting, read from the env
        var, _, val = named.partition("=")
        monkeypatch.setenv(var, val)
        given = {}
        with pytest.raises(TypeError, match="not settings"):
            load_settings(**{setting: value})
    with pytest.raises(ConfigError, match="refuses settings meant for tests") as exc:
        load_settings(**live, **given)
    assert named in str(exc.value)
    load_settings(**given)  # paper takes it


def test_live_names_every_test_only_setting_at_once(tmp_env: dict[str, str]) -> None:
    live = {"mode": "live", "broker": "openalgo", "sim_server": False, "openalgo_api_key": "k"}
    with pytest.raises(ConfigError) as exc:
        load_settings(**live, journal_fsync=False, risk_any_hour=True)
    assert "MT_JOURNAL_FSYNC=false" in str(exc.value) and "MT_RISK_ANY_HOUR" in str(exc.value)
