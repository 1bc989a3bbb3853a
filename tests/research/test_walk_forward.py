"""``walk_forward``: windows cut on the exchange calendar; each in-sample search and each
out-of-sample run a real backtest; the stitched result, its figures, its report on trading
time; every mistake refused before work starts."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mytrading.backtest.data import trading_days
from mytrading.domain.refdata import IST
from mytrading.research import InputError, backtest, optimize, walk_forward
from mytrading.research.windows import Length, cut, length
from mytrading.settings import Settings
from mytrading.stores.recording import connect
from tests.procs import cli


def test_windows_roll_anchor_and_take_days_bars_or_months(refdata) -> None:  # type: ignore[no-untyped-def]
    days = trading_days(refdata, "NFO", date(2026, 9, 1), date(2026, 10, 30))
    w = cut(days, length("10d", "i"), length(5, "o"))
    assert [(x.is_days, x.oos_days) for x in w[:2]] == [(10, 5), (10, 5)]
    for a, b in itertools.pairwise(w):
        assert days.index(b.oos_start) == days.index(a.oos_end) + 1  # contiguous, no overlap
        assert days.index(a.oos_start) == days.index(a.is_end) + 1  # right after its sample
    assert w[-1].oos_end == days[-1]
    assert w[-1].oos_days <= 5
    anchored = cut(days, Length(10, "d"), Length(5, "d"), anchored=True)
    assert {x.is_start for x in anchored} == {days[0]}
    assert anchored[2].is_days == 20
    assert length("750b", "x") == Length(2, "d")  # 375 one-minute bars a session
    months = cut(days, length("1M", "i"), length("10d", "o"))
    assert months[0].is_start == date(2026, 9, 1) and months[0].is_end == date(2026, 9, 30)
    for bad in ("0d", "six", "6Y", -3):
        with pytest.raises(InputError, match="positive length"):
            length(bad, "in_sample")
    with pytest.raises(InputError, match="leaves no out-of-sample window"):
        cut(days[:8], Length(10, "d"), Length(5, "d"))
    # a step shorter than the out-of-sample window: windows would overlap and their shared
    # days count twice in the stitched result; refused, whatever the units
    for step in (Length(3, "d"), length("2d", "s")):
        with pytest.raises(InputError, match="would overlap"):
            cut(days, Length(10, "d"), Length(5, "d"), step=step)
    longer = trading_days(refdata, "NFO", date(2026, 6, 1), date(2026, 10, 30))
    with pytest.raises(InputError, match="would overlap"):
        cut(longer, length("1M", "i"), length("1M", "o"), step=length("10d", "s"))
    # months of in-sample and days of step: a month's trading days vary, and a window
    # would start before the last ended; it starts after it
    drift = cut(longer, length("1M", "i"), length("10d", "o"))
    assert all(b.oos_start > a.oos_end for a, b in itertools.pairwise(drift))
    # a month's step over a month's windows, over two years: equal lengths, whatever each
    # month's trading days (refused once when the month stepped over had fewer)
    years = trading_days(refdata, "NFO", date(2024, 11, 1), date(2026, 10, 30))
    monthly = cut(years, length("6M", "i"), length("1M", "o"), step=length("1M", "s"))
    assert len(monthly) >= 17
    assert all(b.oos_start > a.oos_end for a, b in itertools.pairwise(monthly))
    wide = cut(days, Length(10, "d"), Length(5, "d"), step=Length(8, "d"))  # gaps: allowed
    assert all(b.oos_start > a.oos_end for a, b in itertools.pairwise(wide))


CONTRACT = "NIFTY27OCT26FUT"


def _bars_file(path: Path, refdata) -> Path:  # type: ignore[no-untyped-def]
    """The generated history of one future, September and October 2026, as a file: every
    run below reads the same bars whatever its first day."""
    from mytrading.backtest.data import GeneratedBars

    src = GeneratedBars(refdata, 42, date(2025, 8, 1))
    parts = list(src.batches("NFO", CONTRACT, date(2026, 9, 1), date(2026, 10, 21)))
    start = pd.to_datetime(np.concatenate([b.start_ns for b in parts]), utc=True)
    df = pd.DataFrame({"tf": "1m", "exchange": "NFO", "symbol": CONTRACT, "start": start,
                       **{k: np.concatenate([getattr(b, k) for b in parts])
                          for k in ("open", "high", "low", "close", "volume")}})  # fmt: skip
    con = connect(path)
    con.register("frame", df)
    con.execute("INSERT INTO bars SELECT * FROM frame")
    con.close()
    return path


@pytest.mark.integration  # worker processes or the command line
def test_a_walk_forward_of_a_real_strategy(
    tmp_env: dict[str, str],
    settings: Settings,
    tmp_path: Path,
    refdata,  # type: ignore[no-untyped-def]
) -> None:
    grid = {"fast": [5, 8], "slow": [20, 30]}
    data = str(_bars_file(tmp_path / "oct.duckdb", refdata))
    fixed = {"contract": CONTRACT}
    wf = walk_forward(
        "sma_crossover", grid, in_sample="5d", out_of_sample="3d", start="2026-10-01",
        end="2026-10-21", maximize="net_pnl", workers=2, data=data, params=fixed,
    )  # fmt: skip
    w = wf.windows
    assert len(w) == 3  # 14 trading days (Dussehra on 20 Oct): 5 in, then 3 + 3 + 1 out
    chosen = wf.chosen()
    # each window's choice is the in-sample optimum: the same search over that window alone
    first = w.iloc[0]
    alone = optimize("sma_crossover", grid, maximize="net_pnl", start=first["is_start"],
                     end=first["is_end"], store_trials=False, workers=2, data=data,
                     params=fixed)  # fmt: skip
    assert alone.best_params == chosen.iloc[0].to_dict()
    assert first["is_trials"] == 4
    # each out-of-sample run is a backtest from its first day, warmed up from the bars
    # before it (the run's own warm-up), never from its own days
    second = w.iloc[1]
    params = chosen.iloc[1].to_dict()
    solo = backtest("sma_crossover", {**params, **fixed}, start=second["oos_start"],
                    end=second["oos_end"], data=data)  # fmt: skip
    assert solo.stats["trades"] > 0
    assert second["oos_net_pnl"] == pytest.approx(solo.stats["net_pnl"], abs=0.01)
    f = wf.fills
    assert len(f) and set(f["window"]) <= {1, 2, 3}
    for n, g in f.groupby("window"):
        assert g["time"].dt.date.min() >= w.loc[n, "oos_start"]
        assert g["time"].dt.date.max() <= w.loc[n, "oos_end"]
    # the stitched curve: window by window, each one's P&L carried into the next
    eq = wf.equity["equity"]
    assert eq.index.is_monotonic_increasing
    assert eq.iloc[-1] - 1_000_000 == pytest.approx(w["oos_net_pnl"].sum(), abs=0.01)
    assert wf.stats["net_pnl"] == pytest.approx(w["oos_net_pnl"].sum(), abs=0.01)
    assert wf.stats["start"] == w["oos_start"].iloc[0] and wf.stats["end"] == w["oos_end"].iloc[-1]
    # the figures, from their parts
    is_annual = np.mean([p.is_annual for p in wf.parts])
    oos_annual = wf.returns.mean() * 252
    if is_annual > 0:
        assert wf.efficiency == pytest.approx(oos_annual / is_annual)
    else:
        assert np.isnan(wf.efficiency) and any("efficiency" in n for n in wf.notes)
    mode = chosen["fast"].mode().iloc[0]
    assert wf.stability.loc["fast", "most_chosen"] == mode
    assert wf.stability.loc["fast", "share"] == pytest.approx((chosen["fast"] == mode).mean())
    assert wf.oos_psr is not None and wf.oos_psr.n_trials == 1
    # stored, listed, reported on trading time
    assert wf.run_id in cli("backtest", "list", env=tmp_env).stdout
    paths = wf.report()
    page = Path(paths["html"]).read_text()
    for text in ("Walk-forward efficiency", "Deflated Sharpe ratio", "PBO", "Bailey"):
        assert text in page
    fig = wf.plot()
    x = np.asarray(fig.data[0].x)
    assert (np.diff(x) == 1).all() and x[-1] == len(wf.equity) - 1  # no night, no weekend
    assert Path(paths["equity"]).read_bytes()[:4] == b"\x89PNG"


def test_walk_forward_refuses_bad_input_before_work(tmp_path: Path, settings: Settings) -> None:
    base = {"start": "2026-10-01", "end": "2026-10-21"}
    for kw, msg in [
        # slow 400 one-minute bars is more than a day of warm-up: a 1-day sample is too short
        ({"grid": {"slow": [400]}, "in_sample": "1d"}, "shorter than the warm-up of 400 bars"),
        ({"grid": {"fast": [5]}, "in_sample": "30d"}, "leaves no out-of-sample window"),
        ({"grid": {}}, "empty grid"),
        ({"grid": {"period": [3]}}, "its parameters: contract, fast"),
        ({"grid": {"fast": [1.5]}}, "fast = 1.5"),
    ]:
        with pytest.raises(InputError, match=msg):
            walk_forward("sma_crossover", **{"in_sample": "5d", "out_of_sample": "3d", **base,  # type: ignore[arg-type]
                                             **kw})  # fmt: skip
    # a range outside the data: the error gives the data's range
    path = tmp_path / "bars.duckdb"
    con = connect(path)
    t0 = datetime(2026, 11, 2, 9, 15, tzinfo=IST)
    rows = [("1m", "NFO", "NIFTY24NOV26FUT", t0 + pd.Timedelta(minutes=i), 1, 2, 0.5, 1.5, 10)
            for i in range(375)]  # fmt: skip
    df = pd.DataFrame(rows, columns=["tf", "exchange", "symbol", "start", "open", "high", "low",
                                     "close", "volume"])  # fmt: skip
    con.register("frame", df)
    con.execute("INSERT INTO bars SELECT * FROM frame")
    con.close()
    with pytest.raises(InputError, match=r"the data hold 2026-11-02\.\.2026-11-02"):
        walk_forward("sma_crossover", {"fast": [5]}, in_sample="5d", out_of_sample="3d",
                     data=str(path), params={"contract": "NIFTY24NOV26FUT"}, **base)  # fmt: skip
