"""The broker's master contract: every instrument type parsed; a file in paise converted;
a broken, swapped, shrunken or wildly different file refused with the one in force kept;
a real sync from the simulator server over HTTP; the CLI."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest

from mytrading.master.check import compare
from mytrading.master.contract import MasterError, normalize
from mytrading.master.store import MasterIndex, MasterStore
from mytrading.master.sync import sync, sync_rows
from mytrading.master.synthetic import master_rows
from tests.procs import cli

DAY = date(2026, 11, 20)


def row(
    ex: str,
    sym: str,
    itype: str,
    lot: object = 1,
    tick: object = 0.05,
    expiry: str = "",
    strike: object = -1,
    name: str = "",
) -> dict:
    return {
        "exchange": ex,
        "symbol": sym,
        "name": name or sym,
        "instrumenttype": itype,
        "lotsize": lot,
        "tick_size": tick,
        "expiry": expiry,
        "strike": strike,
        "token": sym,
    }


EVERY_TYPE = [
    row("NSE", "RELIANCE", "EQ", tick=0.1),
    row("NSE", "NIFTYBEES", "", tick=0.01),  # an ETF, no type given
    row("BSE", "SBIN", "EQ"),
    row("NSE_INDEX", "NIFTY", "INDEX"),
    row("BSE_INDEX", "SENSEX", ""),
    row("NFO", "NIFTY23NOV26FUT", "FUTIDX", 65, expiry="23-NOV-26", name="NIFTY"),
    row("NFO", "SBIN24NOV26FUT", "FUTSTK", 750, expiry="24-NOV-26", name="SBIN"),
    row("NFO", "NIFTY23NOV2624500CE", "OPTIDX", 65, expiry="23-NOV-26", strike=24500, name="NIFTY"),
    row("NFO", "SBIN24NOV26800PE", "OPTSTK", 750, expiry="24-NOV-26", strike="800.0", name="SBIN"),
    row("BFO", "SENSEX26NOV2681000CE", "CE", 20, expiry="26-NOV-26", strike=81000, name="SENSEX"),
    row("MCX", "CRUDEOIL19DEC26FUT", "FUTCOM", 100, expiry="19-DEC-26", name="CRUDEOIL"),
    row("NSE", "GSEC2030", "GS"),  # a type we do not trade: skipped, counted
]


def test_every_instrument_type_is_read() -> None:
    p = normalize(EVERY_TYPE)
    f = p.frame.set_index("symbol")
    assert f.loc["RELIANCE", "kind"] == "EQ" and f.loc["NIFTYBEES", "kind"] == "EQ"
    assert f.loc["NIFTY", "kind"] == "INDEX" and f.loc["SENSEX", "kind"] == "INDEX"
    assert f.loc["SBIN24NOV26FUT", "kind"] == "FUT" and f.loc["SBIN24NOV26FUT", "lot"] == 750
    assert f.loc["SBIN24NOV26FUT", "expiry"] == date(2026, 11, 24)
    assert f.loc["SBIN24NOV26800PE", "kind"] == "PE" and f.loc["SBIN24NOV26800PE", "strike"] == 800
    assert f.loc["SENSEX26NOV2681000CE", "kind"] == "CE"
    assert f.loc["CRUDEOIL19DEC26FUT", "kind"] == "FUT"
    assert f.loc["RELIANCE", "strike"] == 0 and f.loc["RELIANCE", "expiry"] is None
    assert p.skipped == {"GS": 1} and not p.in_paise and len(f) == len(EVERY_TYPE) - 1


def test_a_file_in_paise_is_converted_and_said() -> None:
    paise = [dict(r, tick_size=float(r["tick_size"]) * 100) for r in EVERY_TYPE]
    p = normalize(paise)
    assert p.in_paise and set(p.frame["tick"]) <= {0.05, 0.1, 0.01}


@pytest.mark.parametrize(
    ("rows", "why"),
    [
        ([], "empty"),
        ([{"exchange": "NSE", "symbol": "X"}], "lacks columns"),
        (
            [row("NFO", "NIFTY23NOV26FUT", "FUTIDX", lot=0.05, tick=65, expiry="23-NOV-26")],
            "lot and tick swapped",
        ),
        ([row("NSE", "X", "EQ", tick=0)], "no positive tick"),
        ([row("NFO", "NIFTY23NOV26FUT", "FUTIDX", 65, expiry="sometime")], "no readable expiry"),
    ],
)
def test_a_broken_file_says_why(rows: list, why: str) -> None:
    with pytest.raises(MasterError, match=why):
        normalize(rows)


def test_a_refused_sync_keeps_the_file_in_force(tmp_path: Path) -> None:
    store = MasterStore(tmp_path / "m.duckdb")
    good = master_rows(stocks=20, nse_equities=200, bse_equities=100, strikes=10)
    assert sync_rows(store, good, DAY, "t").accepted
    in_force = store.current()
    swapped = copy.deepcopy(good)
    for r in swapped:
        if r["exchange"] == "NFO" and r["name"].startswith("STOCK"):
            r["lotsize"], r["tick_size"] = 5, float(r["lotsize"])  # whole-number "lot"
    bad = {
        "half": good[: len(good) // 3],
        "swapped": swapped,
        "ticks": [dict(r, tick_size=0.25) for r in good],
        "lots": [
            dict(r, lotsize=int(r["lotsize"]) * 2) if r["exchange"] == "NFO" else r for r in good
        ],
        "broken": [dict(r, lotsize="x") for r in good],
    }
    for name, rows in bad.items():
        r = sync_rows(store, rows, DAY, name)
        assert not r.accepted and r.verdict.reasons, name
        assert store.current().equals(in_force), name
    reasons = {src: rep for _, _, src, ok, _, rep in store.history(20) if not ok}
    assert "under half" in reasons["half"] and "swapped" in reasons["swapped"]
    assert "tick size changed" in reasons["ticks"] and "lot size changed" in reasons["lots"]
    assert "whole number" in reasons["broken"]
    forced = sync_rows(store, bad["lots"], DAY, "forced", force=True)
    assert forced.accepted and "accepted by --force" in " ".join(forced.verdict.notes)
    assert store.last_accepted_day() == DAY


def test_a_lot_revision_in_a_few_contracts_is_accepted_and_listed() -> None:
    old = normalize(master_rows(stocks=20, nse_equities=200, bse_equities=100, strikes=10)).frame
    new = old.copy()
    sbin = new["name"] == "STOCK0003"
    new.loc[sbin, "lot"] = new.loc[sbin, "lot"] + 25
    v = compare(new, old)
    assert v.ok and "STOCK0003" in v.notes[0]


@pytest.mark.integration  # a simulator server process: out of the fast suite
def test_sync_from_the_simulator_server_and_an_index_lookup(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.simhelpers import KEY, start_server

    proc, host = start_server(tmp_env)
    try:
        r = sync(tmp_path / "m.duckdb", host, KEY, DAY)
        assert r.accepted and r.per_exchange["NFO"] > 10 and r.per_exchange["NSE_INDEX"] >= 1
        idx = MasterIndex.load(tmp_path / "m.duckdb")
        fut = idx.get("NFO", "NIFTY23NOV26FUT")
        assert (fut.kind, fut.lot, fut.tick, fut.expiry) == ("FUT", 65, 0.05, date(2026, 11, 23))
        wrong = sync(tmp_path / "m.duckdb", host, "not-the-key", DAY)
        assert not wrong.accepted and "HTTP 403" in wrong.verdict.reasons[0]
        assert "not-the-key" not in str(wrong.verdict)
        assert MasterIndex.load(tmp_path / "m.duckdb").get("NFO", "NIFTY23NOV26FUT") == fut
        # the CLI against the same server
        env = {**tmp_env, "MT_SIM_REST_PORT": host.rsplit(":", 1)[1], "MT_SIM_API_KEY": KEY}
        out = cli("instruments", "sync", env=env)
        assert out.returncode == 0 and "master contract in force" in out.stdout, out.stderr
        found = cli("instruments", "search", "banknifty", "-n", "3", env=env)
        assert "BANKNIFTY" in found.stdout and found.returncode == 0
        shown = cli("instruments", "show", "NFO:NIFTY23NOV26FUT", env=env)
        assert '"lot": 65' in shown.stdout and "instruments.toml: FUT lot 65" in shown.stdout
        refused = cli("instruments", "sync", env={**env, "MT_SIM_API_KEY": "nope"})
        assert refused.returncode == 1 and "ALERT: master contract refused" in refused.stderr
        assert "REFUSED" in cli("instruments", "history", env=env).stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_master_contract_is_the_source_and_overrides_win(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    import shutil
    from datetime import datetime

    from mytrading.domain.refdata import IST, future_symbol, load_refdata
    from mytrading.settings import PROJECT_ROOT

    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    plain = load_refdata(config)
    u = plain.underlying("NIFTY")
    fut = future_symbol("NIFTY", plain.calendar.near_future_expiry(u, datetime.now(IST).date()))
    expiry = plain.instrument("NFO", fut).expiry.strftime("%d-%b-%y").upper()
    db = tmp_path / "m.duckdb"
    rows = [
        row("NFO", fut, "FUTIDX", 75, expiry=expiry, name="NIFTY"),  # a revised lot
        row("NSE", "RELIANCE", "EQ", tick=0.1),
        row("NSE_INDEX", "NIFTY", "INDEX"),
    ]
    store = MasterStore(db)
    assert sync_rows(store, rows, DAY, "t").accepted
    store.close()

    ref = load_refdata(config, MasterIndex.load(db))
    f = ref.instrument("NFO", fut)
    assert (f.kind, f.lot_size, f.freeze_qty) == ("FUT", 75, 1800)  # freeze from the toml
    assert ref.source("NFO", fut) == "master contract"
    eq = ref.instrument("NSE", "RELIANCE")
    assert (eq.kind, eq.lot_size, eq.tick_size, eq.tradable) == ("EQ", 1, 0.1, True)
    strip = f"{fut[:-3]}24500CE"  # not in this master: read against instruments.toml
    assert ref.instrument("NFO", strip).lot_size == 65
    assert ref.source("NFO", strip) == "config/instruments.toml"

    with open(config / "instruments.toml", "a") as fh:
        fh.write(f'\n[overrides."NFO:{fut}"]\nfreeze = 900\n')
    ref = load_refdata(config, MasterIndex.load(db))
    assert ref.instrument("NFO", fut).freeze_qty == 900
    assert ref.source("NFO", fut) == "master contract + override"
    out = cli(
        "config",
        "check",
        env={**tmp_env, "MT_CONFIG_DIR": str(config), "MT_INSTRUMENTS_DB": str(db)},
    )
    assert out.returncode == 0, out.stderr
    assert "reference data: master contract, 3 contracts" in out.stdout
    assert "NIFTY: instruments.toml says lot 65 tick 0.05, the master contract lot 75" in out.stdout
    assert f"override NFO:{fut} {{'freeze': 900}}" in out.stdout


@pytest.mark.integration  # a simulator server process: out of the fast suite
def test_the_daily_sync_at_start_runs_once_a_day_and_never_stops_a_start(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    from mytrading.master.sync import daily
    from mytrading.settings import load_settings
    from tests.simhelpers import KEY, start_server

    proc, host = start_server(tmp_env)
    try:
        live = load_settings(
            broker="openalgo",
            sim_server=False,
            openalgo_host=host,
            openalgo_api_key=KEY,
            instruments_db=tmp_path / "m.duckdb",
        )
        assert "contracts synced" in daily(live, DAY)
        assert "synced today already" in daily(live, DAY)
        assert MasterIndex.load(tmp_path / "m.duckdb").get("NFO", "NIFTY23NOV26FUT").lot == 65
        wrong = live.replaced(openalgo_api_key=live.openalgo.api_key.__class__("x"))
        line = daily(wrong, date(2026, 11, 23))  # the next day, a bad key: refused, kept
        assert line.startswith("ALERT: master contract sync refused") and "403" in line
        assert MasterIndex.load(tmp_path / "m.duckdb").get("NFO", "NIFTY23NOV26FUT") is not None
        sim = load_settings(instruments_db=tmp_path / "m.duckdb")  # the embedded default
        assert "come from config/" in daily(sim, DAY)
        off = live.replaced(instruments_sync_at_start=False)
        assert "off" in daily(off, date(2026, 11, 24))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_junk_rows_are_refused_one_by_one_and_listed(tmp_path: Path) -> None:
    """Each kind of junk a broker's file has carried: the row is refused and counted by
    reason, the rest synced (no traceback, no -9223372036854775808 lot)."""
    good = master_rows(stocks=20, nse_equities=200, bse_equities=100, strikes=10)
    fut, opt = "NIFTY23NOV26FUT", "NIFTY23NOV2624500CE"
    junk = [
        row("NFO", "J1" + fut, "FUTIDX", lot="inf", expiry="23-NOV-26", name="NIFTY"),
        row("NFO", "J2" + fut, "FUTIDX", lot="1e30", expiry="23-NOV-26", name="NIFTY"),
        row("NFO", "J3" + fut, "FUTIDX", lot=2.5, expiry="23-NOV-26", name="NIFTY"),
        row("NFO", "J4" + fut, "FUTIDX", lot=65, tick="inf", expiry="23-NOV-26", name="NIFTY"),
        row("NSE", "J5", "EQ", tick="nan"),
        row("NFO", "J6" + opt, "OPTIDX", 65, expiry="23-NOV-26", strike="inf", name="NIFTY"),
        row("NFO", "J7" + opt, "OPTIDX", 65, expiry="23-NOV-26", strike=-5, name="NIFTY"),
        row("NFO", "J8" + fut, "FUTIDX", 65, expiry="31-DEC-99", name="NIFTY"),
        row("NFO", "J9" + fut, "FUTIDX", 65, expiry="garbage", name="NIFTY"),
    ]
    store = MasterStore(tmp_path / "m.duckdb")
    r = sync_rows(store, good + junk, DAY, "junk")
    assert r.accepted, r.verdict.reasons
    cur = store.current()
    assert not cur["symbol"].str.startswith("J").any()
    assert cur["lot"].min() >= 1 and cur["tick"].max() <= 1000
    (report,) = [rep for *_, rep in store.history(1)]
    notes = " ".join(json.loads(report)["notes"])
    assert "rows refused" in notes
    assert "'lot size that is not a whole number in [1, 1000000]': 3" in notes
    assert "'no positive tick size (or not finite, or above 1000)': 2" in notes
    assert "'option strike that is not a finite number in (0, 10000000]': 2" in notes
    assert "'no readable expiry (from 2000 on)': 2" in notes
