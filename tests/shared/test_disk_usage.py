"""``disk.usage``: each store's bytes, a directory's figure without the stores inside it
(the defaults keep state and databases under logs/), and ``status``'s lines."""

from __future__ import annotations

from pathlib import Path

from mytrading.process import disk
from mytrading.settings import Settings


def test_each_store_counted_once(settings: Settings, tmp_path: Path) -> None:
    s = settings.replaced(
        log_dir=tmp_path / "logs",
        state_dir=tmp_path / "logs" / "state",
        record_db=tmp_path / "logs" / "data" / "marketdata.duckdb",
    )
    (tmp_path / "logs" / "state" / "venues").mkdir(parents=True)
    (tmp_path / "logs" / "data").mkdir(parents=True)
    (tmp_path / "logs" / "router.log").write_bytes(b"x" * 1000)
    (tmp_path / "logs" / "router.log.1").write_bytes(b"x" * 500)
    (tmp_path / "logs" / "state" / "venues" / "journal.bin").write_bytes(b"j" * 300)
    (tmp_path / "logs" / "data" / "marketdata.duckdb").write_bytes(b"d" * 7000)
    (tmp_path / "logs" / "data" / "marketdata.duckdb.wal").write_bytes(b"w" * 70)
    use = disk.usage(s)
    assert use["logs"] == 1500
    assert use["state"] == 300
    assert use["recordings"] == 7070
    lines = disk.report(s)
    assert lines[0].startswith("disk: logs 1 KB") and "recordings 7 KB" in lines[0]
    assert "MB free" in lines[1]
