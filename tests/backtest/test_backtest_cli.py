"""``main.py backtest`` as a user runs it: the demo on a fresh checkout, the stored runs,
exports, the report in a real browser, sweeps, and a clear refusal (exit 2) for each bad
input with nothing stored."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mytrading.domain.refdata import IST
from mytrading.stores.recording import connect
from tests.procs import cli

pytestmark = pytest.mark.integration  # real processes or servers

WINDOW = ("--from", "2026-11-02", "--to", "2026-11-04")


def _run_id(stdout: str) -> str:
    m = re.search(r"backtest (\d{8}-\d{6}-[0-9a-f]{4})", stdout)
    assert m, stdout
    return m.group(1)


def test_the_demo_runs_stores_reports_and_exports(tmp_env: dict[str, str], tmp_path: Path) -> None:
    r = cli("backtest", "--strategy", "sma_crossover", env=tmp_env)
    assert r.returncode == 0, r.stderr
    assert "bars/s" in r.stderr  # the progress bar
    for label in ("Net P&L (after charges)", "Charges", "Sharpe", "Max drawdown", "Trades"):
        assert label in r.stdout
    first = _run_id(r.stdout)
    report = Path(re.search(r"report: (\S+)", r.stdout).group(1))  # type: ignore[union-attr]
    assert report.exists() and report.parent.parent == Path(tmp_env["MT_REPORT_DIR"])
    for png in ("price.png", "equity.png", "monthly.png"):
        data = (report.parent / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000  # a drawn chart
    assert (report.parent.parent / "plotly.min.js").stat().st_size > 1_000_000
    # a second run (another seed) to compare with
    r2 = cli("backtest", "-s", "sma_crossover", "--seed", "7", *WINDOW, "-p", "fast=8", env=tmp_env)
    assert r2.returncode == 0, r2.stderr
    second = _run_id(r2.stdout)
    listed = cli("backtest", "list", env=tmp_env)
    assert first in listed.stdout and second in listed.stdout, listed.stdout
    shown = cli("backtest", "show", first, env=tmp_env)
    assert shown.returncode == 0 and "sharpe" in shown.stdout and "report:" in shown.stdout
    cmp = cli("backtest", "compare", first, second, env=tmp_env)
    assert cmp.returncode == 0 and first in cmp.stdout and second in cmp.stdout
    for fmt in ("csv", "parquet"):
        out = tmp_path / fmt
        ex = cli("backtest", "export", first, "--out", str(out), "--format", fmt, env=tmp_env)
        assert ex.returncode == 0, ex.stderr
        fills = out / f"{first}-fills.{fmt}"
        rows = duckdb.connect().execute(f"SELECT count(*) FROM '{fills}'").fetchone()[0]
        con = duckdb.connect(tmp_env["MT_BACKTEST_DB"], read_only=True)
        n = con.execute("SELECT count(*) FROM fills WHERE run_id = ?", [first]).fetchone()[0]
        trades = con.execute("SELECT count(*) FROM trades WHERE run_id = ?", [first]).fetchone()
        con.close()
        assert rows == n > 0 and trades[0] > 0


def _browser() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("REQUIRE_BROWSER"):
        pytest.fail("REQUIRE_BROWSER is set and chromium is not installed")
    return found


CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_report_renders_in_a_browser(tmp_env: dict[str, str], tmp_path: Path) -> None:
    chromium = _browser()
    if chromium is None:
        pytest.skip("chromium is not installed (CI installs it; see .ci/run)")
    r = cli("backtest", "-s", "sma_crossover", *WINDOW, env=tmp_env)
    assert r.returncode == 0, r.stderr
    report = Path(re.search(r"report: (\S+)", r.stdout).group(1))  # type: ignore[union-attr]
    flags = [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1300,2400"]
    dom = subprocess.run(
        [chromium, *flags, "--virtual-time-budget=5000", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
    ).stdout
    # plotly drew every chart (its SVG exists only once the script ran in the page)
    assert dom.count('class="main-svg"') >= 6, dom[:500]
    assert "Price with entries and exits" in dom and "Monthly returns" in dom
    assert 'id="metrics"' in dom and "Net P&amp;L (after charges)" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    colours = {tuple(px) for px in (img[::8, ::8, :3] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 40  # charts and tables, not a blank or error page


@pytest.mark.parametrize(
    "args, expect",
    [
        (["-s", "no_such"], "unknown strategy ['no_such']"),
        (["-s", "sma_crossover", "--from", "2026-11-10", "--to", "2026-11-02"], "empty date range"),
        (["-s", "sma_crossover", "--from", "2026-11-14", "--to", "2026-11-15"], "no trading day"),
        (["-s", "sma_crossover", "-p", "fast=abc"], "fast: Input should be a valid integer"),
        (["-s", "sma_crossover", "-p", "nosuch=1"], "no strategy has a parameter 'nosuch'"),
        (["-s", "sma_crossover", "-p", "underlying=NOPE"], "unknown underlying 'NOPE'"),
        (["-s", "sma_crossover", "--data", "history"], "no data file"),
        (["-s", "sma_crossover", "--from", "2026-13-01"], "is not a date"),
        (["-s", "sma_crossover", "--sweep", "fast=5:1:1"], "need start <= stop"),
        (["-s", "sma_crossover", "--from", "2021-01-04", "--to", "2021-01-08"], "charges.toml"),
        (
            ["-s", "sma_crossover", "--from", "2027-01-04", "--to", "2027-01-08"],
            "no holidays for 2027",
        ),
    ],
)
def test_bad_input_exits_2_and_stores_nothing(
    tmp_env: dict[str, str], args: list[str], expect: str
) -> None:
    r = cli("backtest", *args, env=tmp_env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expect in " ".join(r.stderr.split()), r.stderr
    assert not Path(tmp_env["MT_BACKTEST_DB"]).exists()
    assert not Path(tmp_env["MT_REPORT_DIR"]).exists()


def test_missing_days_are_listed_and_refused(tmp_env: dict[str, str], tmp_path: Path) -> None:
    """A history file with two of three days: exit 2 naming the missing day."""
    path = tmp_path / "part.duckdb"
    con = connect(path)
    rows = []
    for day in (2, 4):  # 2026-11-03 is missing
        t0 = datetime(2026, 11, day, 9, 15, tzinfo=IST)
        for i in range(375):
            rows.append(
                ("1m", "NFO", "NIFTY24NOV26FUT", t0 + pd.Timedelta(minutes=i), 1, 2, 0.5, 1.5, 10)
            )
    df = pd.DataFrame(
        rows,
        columns=["tf", "exchange", "symbol", "start", "open", "high", "low", "close", "volume"],
    )
    con.register("frame", df)
    con.execute("INSERT INTO bars SELECT * FROM frame")
    con.close()
    args = ["-s", "sma_crossover", *WINDOW, "--data", str(path), "-p", "contract=NIFTY24NOV26FUT"]
    r = cli("backtest", *args, env=tmp_env)
    assert r.returncode == 2, r.stdout
    assert "1 trading day(s) without data: 2026-11-03" in " ".join(r.stderr.split())
    assert not Path(tmp_env["MT_BACKTEST_DB"]).exists()
    ok = cli("backtest", *args, "--allow-holes", env=tmp_env)
    assert ok.returncode == 0, ok.stderr
    assert "ran without 1 day(s) of data" in ok.stdout


def test_a_sweep_uses_every_worker_and_stores_each_run(tmp_env: dict[str, str]) -> None:
    r = cli(
        "backtest",
        "-s",
        "sma_crossover",
        *WINDOW,
        "--sweep",
        "fast=5,10",
        "--sweep",
        "slow=20:30:10",
        "--workers",
        "2",
        "--rank",
        "net_pnl",
        env=tmp_env,
    )
    assert r.returncode == 0, r.stderr
    assert "4 combinations of fast, slow on 2 processes" in " ".join(r.stderr.split())
    sweep = re.search(r"(sweep-\S+)/heatmap.png", r.stdout).group(1)  # type: ignore[union-attr]
    heat = Path(tmp_env["MT_REPORT_DIR"]) / sweep
    assert (heat / "heatmap.png").stat().st_size > 10_000 and (heat / "heatmap.html").exists()
    con = duckdb.connect(tmp_env["MT_BACKTEST_DB"], read_only=True)
    got = con.execute(
        "SELECT r.params, m.value FROM runs r JOIN metrics m USING (run_id) "
        "WHERE r.sweep = ? AND m.strategy = '*' AND m.name = 'net_pnl'",
        [sweep],
    ).fetchall()
    con.close()
    assert len(got) == 4
    pnl = [v for _, v in got]
    ranked = re.findall(r"│\s+(\d+)\s+│\s+(\d+)\s+│\s+(-?[\d.,e+-]+)", r.stdout)
    assert len(ranked) == 4
    shown = [float(x[2].replace(",", "")) for x in ranked]
    assert shown == sorted(shown, reverse=True)  # best first
    assert sorted(pnl, reverse=True)[0] == pytest.approx(shown[0], rel=1e-3)


def test_recorded_ticks_replay_from_the_command_line(tmp_env: dict[str, str]) -> None:
    """--data recorded --fills ticks: the simulated broker fills on the recorded ticks."""
    import numpy as np

    rng = np.random.default_rng(5)
    t0 = datetime(2026, 11, 20, 9, 15, 5, tzinfo=IST)
    n = 4 * 90  # a tick every 15 s for 90 minutes
    prices = np.round((24_600 + np.cumsum(rng.normal(0, 4, n))) * 20) / 20
    rows = [
        (
            t0 + pd.Timedelta(seconds=15 * i),
            "NFO",
            "NIFTY23NOV26FUT",
            float(p),
            float(p) - 0.05,
            float(p) + 0.05,
            650,
            650,
            1000 + i,
            0,
        )
        for i, p in enumerate(prices)
    ]
    con = connect(Path(tmp_env["MT_RECORD_DB"]))
    frame = pd.DataFrame(
        rows,
        columns=[
            "ts",
            "exchange",
            "symbol",
            "ltp",
            "bid",
            "ask",
            "bid_qty",
            "ask_qty",
            "volume",
            "oi",
        ],
    )
    con.register("frame", frame)
    con.execute("INSERT INTO ticks SELECT * FROM frame")
    con.close()
    r = cli(
        "backtest",
        "-s",
        "sma_crossover",
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-20",
        "--data",
        "recorded",
        "--fills",
        "ticks",
        "-p",
        "fast=2",
        "-p",
        "slow=4",
        env=tmp_env,
    )
    assert r.returncode == 0, r.stderr
    run_id = _run_id(r.stdout)
    con = duckdb.connect(tmp_env["MT_BACKTEST_DB"], read_only=True)
    fills = con.execute(
        "SELECT action, price FROM fills WHERE run_id = ? ORDER BY time", [run_id]
    ).fetchall()
    con.close()
    assert len(fills) >= 3
    tick_prices = {round(p - 0.05, 2) for p in prices} | {round(p + 0.05, 2) for p in prices}
    assert all(round(price, 2) in tick_prices for _, price in fills)  # at a recorded touch


def test_a_run_that_cannot_be_stored_leaves_no_report(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    """The results file unusable (here a directory): exit 1 saying so, no report kept."""
    bad = tmp_path / "not-a-file.duckdb"
    bad.mkdir()
    env = {**tmp_env, "MT_BACKTEST_DB": str(bad)}
    r = cli("backtest", "-s", "sma_crossover", *WINDOW, env=env)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "the run was not stored" in r.stderr and "Is a directory" in r.stderr
    reports = Path(tmp_env["MT_REPORT_DIR"])
    assert not [p for p in reports.glob("*") if p.is_dir()]  # plotly.min.js may stay
