"""``mytrading.research.backtest`` as a notebook uses it: the command line's run, the
same numbers, stored and listed; a result a notebook can read; its charts on trading
time; bad input refused before anything runs."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mytrading.backtest import store
from mytrading.backtest.axis import TradingAxis
from mytrading.backtest.report import ReportInput, fig_equity, fig_price
from mytrading.domain.refdata import IST
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.research import InputError, backtest
from mytrading.settings import Settings
from tests.procs import cli

WINDOW = ("2026-11-02", "2026-11-06")


@pytest.mark.integration  # worker processes or the command line
def test_the_notebook_and_the_command_line_give_the_same_run(
    tmp_env: dict[str, str], settings: Settings
) -> None:
    r = cli("backtest", "-s", "sma_crossover", "--from", WINDOW[0], "--to", WINDOW[1],
            "-p", "fast=8", "--seed", "3", env=tmp_env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    cli_id = re.search(r"backtest (\d{8}-\d{6}-[0-9a-f]{4})", r.stdout).group(1)  # type: ignore[union-attr]
    res = backtest("sma_crossover", {"fast": 8}, start=WINDOW[0], end=WINDOW[1], seed=3)
    assert res.run_id != cli_id
    stored = store.run(settings.stores.backtest_db, cli_id)[1]["*"]
    mine = store.run(settings.stores.backtest_db, res.run_id)[1]["*"]
    assert stored.to_dict() == mine.to_dict() and len(stored) > 10
    s = res.stats
    assert s["net_pnl"] == pytest.approx(stored["net_pnl"])
    assert s["trades"] == len(res.trades) > 3
    listed = cli("backtest", "list", env=tmp_env).stdout
    assert cli_id in listed and res.run_id in listed

    # the result as pandas: figures, curve, round trips with excursions, orders, fills
    for k in ("net_pnl", "total_return", "cagr", "sharpe", "sortino", "calmar",
              "max_drawdown", "max_drawdown_duration", "win_rate", "profit_factor",
              "expectancy", "trades", "exposure", "charges", "n_trials"):  # fmt: skip
        assert k in s.index
    assert s["n_trials"] == 1
    assert s["calmar"] == pytest.approx(s["cagr"] / s["max_drawdown_pct"])
    assert s["charges"] == pytest.approx(res.fills["charges"].sum())
    assert s["net_pnl"] == pytest.approx(res.equity["equity"].iloc[-1] - 1_000_000, abs=0.01)
    t = res.trades
    assert {"entry_time", "exit_time", "entry_price", "exit_price", "quantity", "gross_pnl",
            "charges", "net_pnl", "mae", "mfe", "duration"} <= set(t.columns)  # fmt: skip
    assert (t["mae"] <= 0).all() and (t["mfe"] >= 0).all()
    # an excursion bounds what the trade made: a winner's gross is at most its MFE
    assert (t["gross_pnl"] <= t["mfe"] + 0.01).all() and (t["gross_pnl"] >= t["mae"] - 0.01).all()
    assert (t["duration"] == t["exit_time"] - t["entry_time"]).all()
    assert t["net_pnl"].sum() == pytest.approx(s["net_pnl"], abs=1.0)  # flat at the end
    assert len(res.orders) >= len(t) and len(res.fills) > len(t)  # a reversal is one fill
    assert res.returns.index[0] == date(2026, 11, 2) and len(res.returns) == 5

    # its chart: bars on trading time, hover with the real time, a grid line a day
    fig = res.plot()
    candles = next(tr for tr in fig.data if tr.type == "candlestick")
    x = np.asarray(candles.x)
    assert (np.diff(x) == 1).all()  # 5 days of minutes: no gap for a night
    assert len(x) == 5 * 375
    assert candles.hovertext[375] == "Tue 03 Nov 2026 09:15"
    assert list(fig.layout.xaxis.tickvals) == [0, 375, 750, 1125, 1500]
    assert fig.layout.xaxis.ticktext[1] == "03 Nov"
    buys = next(tr for tr in fig.data if tr.name == "BUY")
    first = res.fills[res.fills["action"] == "BUY"].iloc[0]
    minute = (first["time"] - first["time"].normalize()).seconds // 60 - (9 * 60 + 15)
    day_no = (first["time"].date() - date(2026, 11, 2)).days
    assert buys.x[0] == day_no * 375 + minute


def test_a_report_has_no_flat_nights_weekends_or_holidays() -> None:
    """Bars over a Friday, a weekend, a Monday and a holiday Tuesday (Diwali
    Balipratipada 2026, 10 Nov) are neighbours on the axis; hover and ticks give their
    days."""
    days = ["2026-11-06", "2026-11-09", "2026-11-11"]  # Fri, Mon, Wed
    idx = pd.DatetimeIndex(
        [
            pd.Timestamp(f"{d} 09:15", tz=IST) + pd.Timedelta(minutes=m)
            for d in days
            for m in range(375)
        ]
    )
    px = pd.DataFrame({"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5}, index=idx)
    # the curve is sampled as each bar closes: a minute after its start
    eq = pd.DataFrame(
        {"time": idx + pd.Timedelta(minutes=1), "equity": np.linspace(1e6, 1.1e6, len(idx))}
    )
    eq["drawdown"] = 0.0
    fills = pd.DataFrame(
        {
            "time": [idx[374], idx[375]],
            "symbol": ["X", "X"],
            "action": ["BUY", "SELL"],
            "quantity": [75, 75],
            "price": [1.5, 1.6],
        }
    )
    r = ReportInput("r", "t", {}, {}, {"equity": eq, "fills": fills}, {"X": px}, [], {})
    axis = TradingAxis.of(eq["time"], px.index)
    price, equity = fig_price(r, axis), fig_equity(eq.set_index("time"), {}, axis)
    xs = np.asarray(price.data[0].x)
    assert (np.diff(xs) == 1).all() and xs[-1] == 3 * 375 - 1
    line = equity.data[0]
    assert (np.diff(np.asarray(line.x)) == 1).all()
    assert line.customdata[374] == "Fri 06 Nov 2026 15:30"
    assert line.customdata[375] == "Mon 09 Nov 2026 09:16"  # after the weekend
    assert line.customdata[750] == "Wed 11 Nov 2026 09:16"  # after the holiday
    assert price.data[0].hovertext[375] == "Mon 09 Nov 2026 09:15"  # a bar by its start
    sell = next(tr for tr in price.data if tr.name == "SELL X")
    buy = next(tr for tr in price.data if tr.name == "BUY X")
    assert (buy.x[0], sell.x[0]) == (374, 375)  # Friday's last minute, Monday's first
    assert list(equity.layout.xaxis.tickvals) == [0, 375, 750]
    assert list(equity.layout.xaxis.ticktext) == ["06 Nov", "09 Nov", "11 Nov"]


class _Params(StrategyParams):
    period: int = 5


class _Idle(BaseStrategy[_Params]):
    name = "notebook_idle"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")


def test_a_class_from_the_notebook_and_bad_input(settings: Settings) -> None:
    res = backtest(_Idle, {"period": 9}, start=WINDOW[0], end=WINDOW[0])
    assert res.params["notebook_idle"]["period"] == 9
    assert res.stats["trades"] == 0 and math.isnan(res.stats["sharpe"])
    assert res.trades.empty and "mae" in res.trades.columns
    bad = [
        ({"strategy": "sma_crossover", "params": {"fats": 3}}, "no parameter 'fats'.*fast, "),
        ({"strategy": "sma_crossover", "params": {"fast": "many"}}, "fast: Input should be"),
        ({"strategy": "nope"}, "unknown strategy"),
        ({"strategy": "sma_crossover", "start": "2026-13-01"}, "not a date"),
        (
            {"strategy": "sma_crossover", "data": str(Path("/nope/x.duckdb"))},
            "no data file|does not exist",
        ),
    ]
    n = len(store.runs(settings.stores.backtest_db))
    for kw, msg in bad:
        with pytest.raises(InputError, match=msg):
            backtest(**kw)  # type: ignore[arg-type]
    assert len(store.runs(settings.stores.backtest_db)) == n  # nothing stored
