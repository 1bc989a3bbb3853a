"""Webhook strategies in SQLite: validation, ids shown once and stored hashed, rotation,
passphrases, symbol mappings, the audit, migrations, and a reopened file keeping it all."""

from __future__ import annotations

import sqlite3
from datetime import date, time
from pathlib import Path

import pytest

from mytrading.webhook.model import StrategyFields, SymbolMap
from mytrading.webhook.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    StoreError,
    WebhookStore,
    hash_id,
)
from tests.procs import cli


def test_times_and_names_are_validated() -> None:
    StrategyFields(name="tv_nifty", start=time(9, 15), end=time(15, 30), squareoff=time(15, 30))
    bad = [
        {"name": "TV"},  # upper case
        {"name": "nifty scalper"},  # a space: it would split its bus topics
        {"name": "a" * 33},  # too long
        {"name": ""},
        {"name": "ok_name", "start": time(9, 0)},
        {"name": "ok_name", "end": time(15, 31), "squareoff": time(15, 31)},
        {"name": "ok_name", "start": time(10, 0), "end": time(10, 0)},
        {"name": "ok_name", "end": time(15, 20), "squareoff": time(15, 10)},
        {"name": "ok_name", "mode": "SIDEWAYS"},
        {"name": "ok_name", "color": "red"},  # unknown field
    ]
    for b in bad:
        with pytest.raises(ValueError):
            StrategyFields(**b)


def test_the_id_is_shown_once_stored_hashed_and_rotates(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    store = WebhookStore(path)
    rec, wid = store.create(StrategyFields(name="tv_nifty", mode="BOTH"), passphrase="pw")
    assert len(wid) == 22 and rec.id_hint == wid[:6]  # 128 random bits, URL-safe
    raw = path.read_bytes() + (tmp_path / "w.sqlite-wal").read_bytes()
    assert wid.encode() not in raw and hash_id(wid).encode() in raw  # only the hash kept
    assert store.by_webhook_id(wid).name == "tv_nifty"  # type: ignore[union-attr]
    assert store.by_webhook_id(wid[:-1] + ("A" if wid[-1] != "A" else "B")) is None
    assert store.passphrase_ok(rec, "pw") and not store.passphrase_ok(rec, "nope")
    assert not store.passphrase_ok(rec, None)
    new = store.rotate("tv_nifty")
    assert store.by_webhook_id(wid) is None and store.by_webhook_id(new) is not None
    with pytest.raises(StoreError, match="exists already"):
        store.create(StrategyFields(name="tv_nifty"))
    with pytest.raises(StoreError, match="square-off"):
        store.update("tv_nifty", end=time(15, 20), squareoff=time(15, 10))
    assert store.update("tv_nifty", enabled=False).fields.enabled is False


def test_mappings_and_audit_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    store = WebhookStore(path)
    store.create(StrategyFields(name="ci_scan", mode="LONG"))
    m = SymbolMap(
        external="nifty1!", exchange="NFO", symbol="NIFTY29DEC26FUT", lots=2, product="NRML"
    )
    store.add_symbol("ci_scan", m)
    assert m.external == "NIFTY1!"
    audit_id = store.log_request("ci_scan", "abc123", "127.0.0.1", 200, "queued", b"{}", ["i-1"])
    store.set_outcome(audit_id, "filled")
    store.close()
    again = WebhookStore(path)
    assert again.symbols("ci_scan") == {"NIFTY1!": m}
    (row,) = again.audit("ci_scan")
    assert row["intents"] == ["i-1"] and row["outcome"] == "filled" and row["status"] == 200
    again.remove_symbol("ci_scan", "NIFTY1!")
    assert again.symbols("ci_scan") == {}
    with pytest.raises(StoreError):
        again.remove_symbol("ci_scan", "NIFTY1!")
    again.delete("ci_scan")
    assert again.all() == [] and len(again.audit()) == 1  # the audit outlives it


def test_migrations_version_the_file_and_a_newer_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    WebhookStore(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer than this program"):
        WebhookStore(path)


def test_a_file_of_an_older_version_is_migrated_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    con = sqlite3.connect(path)  # what version 1 of this program left
    con.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    con.close()
    v1 = WebhookStore.__new__(WebhookStore)  # write a strategy through the v1 tables only
    v1.path, v1.con = path, sqlite3.connect(path, isolation_level=None)
    v1.con.row_factory = sqlite3.Row
    _, wid = v1.create(StrategyFields(name="old_one"))
    v1.con.close()
    store = WebhookStore(path)  # migrates to the current version
    assert store.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.by_webhook_id(wid).name == "old_one"
    assert store.squared_off_on("old_one", "paper-sim") is None
    store.mark_squared_off("old_one", date(2026, 11, 20), "paper-sim")
    store.close()
    again = WebhookStore(path)
    assert again.squared_off_on("old_one", "paper-sim") == date(2026, 11, 20)
    assert again.squared_off_on("old_one", "live-x") is None  # a square-off is one venue's


def test_the_cli_manages_strategies(tmp_env: dict[str, str]) -> None:
    # the passphrase never on the command line: from the environment (or a prompt)
    on_argv = cli("webhook", "new", "tv_x", "--passphrase", "pw", env=tmp_env)
    assert on_argv.returncode == 2 and "unexpected extra argument" in on_argv.stderr.lower()
    pw_env = {**tmp_env, "MT_WEBHOOK_PASSPHRASE": "pw"}
    r = cli("webhook", "new", "tv_nifty", "--mode", "both", "--passphrase", env=pw_env)
    assert r.returncode == 0, r.stderr
    url = next(line for line in r.stdout.splitlines() if "/strategy/webhook/" in line)
    port = tmp_env["MT_SIGNALS_PORT"]
    assert url.startswith(f"http://127.0.0.1:{port}/strategy/webhook/")
    assert len(url.split("/")[-1]) == 22
    add = cli(
        "webhook",
        "symbols",
        "add",
        "tv_nifty",
        "NIFTY1!",
        "--symbol",
        "NFO:NIFTY29DEC26FUT",
        "--lots",
        "2",
        "--product",
        "NRML",
        env=tmp_env,
    )
    assert add.returncode == 0, add.stderr
    for bad, why in (
        (["NFO:NIFTY"], "quoted on NSE_INDEX"),
        (["NSE_INDEX:NIFTY"], "is an index"),
        (["NFO:NIFTY29DEC26FUT", "--product", "CNC"], "CNC is for delivery"),
    ):
        r2 = cli("webhook", "symbols", "add", "tv_nifty", "X", "--symbol", *bad, env=tmp_env)
        assert r2.returncode == 2 and why in r2.stderr, r2.stderr
    shown = cli("webhook", "show", "tv_nifty", env=tmp_env)
    assert "NIFTY29DEC26FUT" in shown.stdout and url.split("/")[-1] not in shown.stdout
    assert cli("webhook", "new", "late", "--start", "09:00", env=tmp_env).returncode == 2
    one = cli("webhook", "new", "tv_one", "--map", "NIFTY1!=NFO:NIFTY29DEC26FUT", env=tmp_env)
    assert one.returncode == 0 and "curl -s -X POST" in one.stdout, one.stdout + one.stderr
    assert "NIFTY1! -> NFO:NIFTY29DEC26FUT, 1 lot(s) MIS" in one.stdout
    bad = cli("webhook", "new", "tv_two", "--map", "NIFTY1!=NFO:NIFTY", env=tmp_env)
    assert bad.returncode == 2 and "tv_two" not in cli("webhook", "list", env=tmp_env).stdout
    clash = cli("webhook", "new", "sma_crossover", env=tmp_env)  # a Python strategy's name
    assert clash.returncode == 2 and "name of a Python strategy" in clash.stderr, clash.stderr
    assert cli("webhook", "disable", "tv_nifty", env=tmp_env).returncode == 0
    listed = cli("webhook", "list", env=tmp_env)
    assert "tv_nifty" in listed.stdout and "no" in listed.stdout and "+passphrase" in listed.stdout
    rot = cli("webhook", "rotate", "tv_nifty", env=tmp_env)
    assert rot.returncode == 0 and url not in rot.stdout
    assert cli("webhook", "delete", "tv_nifty", "--yes", env=tmp_env).returncode == 0
    assert cli("webhook", "show", "tv_nifty", env=tmp_env).returncode == 2
