"""``main.py backup`` while the real stack trades, ``restore`` on a stopped one: the copy
is consistent (the journal replays whole, the DuckDB and SQLite stores open with their
rows), keys are left out unless asked, restore refuses a running stack, puts every store
back at the current configuration's places and keeps what it replaced."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from mytrading.messaging import wire
from mytrading.process import supervise
from mytrading.router.journal import read
from mytrading.settings import load_settings
from tests.procs import Watcher, run_cli, stack_env

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    e = stack_env(tmp_env, monkeypatch)
    yield e
    s = load_settings()
    for p in supervise.live_processes(s).values():
        if supervise.alive(p):
            os.kill(p, signal.SIGKILL)


def test_backup_while_trading_then_restore_on_a_stopped_stack(
    env: dict[str, str], tmp_path: Path
) -> None:
    s = load_settings()
    w = Watcher(s, ("sys.status.", "exec.fill."))
    try:
        assert run_cli("start", env=env, timeout=120).returncode == 0
        w.wait(lambda: sum(isinstance(m, wire.Fill) for _, m in w.seen) >= 2, 120, "fills")
        r = run_cli("backup", "--to", str(tmp_path / "b"), env=env, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        fills_then = {m.fill_no for _, m in w.seen if isinstance(m, wire.Fill)}
    finally:
        w.close()
    (root,) = (tmp_path / "b").iterdir()
    manifest = json.loads((root / "manifest.json").read_text())
    assert {"state", "recordings", "alerts"} <= set(manifest["stores"])
    assert not (root / "keys").exists() and manifest["with_keys"] is False
    (journal,) = (root / "stores" / "state").glob("venues/*/router/journal.bin")
    rep = read(journal)
    assert not rep.damaged and {f.fill_no for f in rep.fills} >= fills_then - {max(fills_then)}
    assert any(v.get("recordings") == 1 for v in manifest["schema"].values())
    assert any(v.get("alerts") == 1 for v in manifest["schema"].values())
    assert any(v.get("journal") == 1 for v in manifest["schema"].values())
    con = duckdb.connect(
        str(root / "stores" / "recordings" / s.stores.record_db.name), read_only=True
    )
    assert con.execute("SELECT count(*) FROM ticks").fetchone()[0] > 0  # type: ignore[index]
    con.close()

    r = run_cli("restore", str(root), "--yes", env=env)
    assert r.returncode == 1 and "stack is running" in r.stderr  # refused: it runs
    assert run_cli("stop", env=env, timeout=120).returncode == 0
    r = run_cli("restore", str(root), env=env)
    assert r.returncode == 2 and "--yes" in r.stderr  # asked, not a terminal: refused

    # restored to another configuration's places (a new host)
    other = {**env, "MT_STATE_DIR": str(tmp_path / "new" / "state"),
             "MT_RECORD_DB": str(tmp_path / "new" / "md.duckdb")}  # fmt: skip
    r = run_cli("restore", str(root), "--yes", env=other)
    assert r.returncode == 0, r.stdout + r.stderr
    (back,) = (tmp_path / "new" / "state").glob("venues/*/router/journal.bin")
    assert read(back).fills == rep.fills
    con = duckdb.connect(str(tmp_path / "new" / "md.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM ticks").fetchone()[0] > 0  # type: ignore[index]
    con.close()
    # restored in place: what was there is kept beside it
    r = run_cli("restore", str(root), "--yes", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert list(s.state_dir.parent.glob(f"{s.state_dir.name}.before-restore-*"))
