"""Builder strategies in the backtest, on generated history: every template over a month
(legs chosen at each entry as live chooses them, flat at the square-off every day), and
each exit and rule of the file format doing what docs/options.md says: per-leg stop and
re-entry with its delay, stop to cost, max loss, max profit, trailing stop, Supertrend
exit, expiry-day schedules, risk-profile sizing of the whole set, targets."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from mytrading.backtest.data import GeneratedBars, trading_days
from mytrading.backtest.loop import Backtest
from mytrading.backtest.loop import Spec as RunSpec
from mytrading.builder.spec import parse
from mytrading.builder.strategy import BuilderStrategy, make_class
from mytrading.builder.templates import TEMPLATES, render
from mytrading.domain.refdata import IST, RefData
from mytrading.options.chain import strike_for
from mytrading.risk.config import risk_files
from mytrading.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration

MONTH = (date(2025, 10, 1), date(2025, 10, 31))
SEED = 11


def run(
    refdata: RefData, text: str, start: date, end: date, capital: float = 1_000_000.0
) -> tuple[Any, list[dict[str, Any]], GeneratedBars]:
    """Backtest the builder file ``text``; its results and the strategy's decisions."""
    spec = parse(Path("t_builder.toml"), text, set(refdata.underlyings))
    cls = make_class("t_builder", spec, Path("t_builder.toml"))
    src = GeneratedBars(refdata, SEED, origin=start - timedelta(days=60))
    bt = Backtest(
        RunSpec([(cls, {})], start, end, capital=capital),
        refdata,
        risk_files(PROJECT_ROOT / "config", {}),
        src,
    )
    res = bt.run()
    strategy = bt.runner.strategies["t_builder"]
    assert isinstance(strategy, BuilderStrategy)
    return res, list(strategy.decisions), src


def hours_of(refdata: RefData, day: date) -> time:
    hours = refdata.calendar.hours("NFO", day)
    assert hours is not None
    return hours[0]


def at(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, IST)


def by_day(fills: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    out: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for f in fills:
        out[at(f["time"]).date()].append(f)
    return out


def flat_each_day(fills: list[dict[str, Any]]) -> None:
    for day, rows in by_day(fills).items():
        net: dict[str, int] = defaultdict(int)
        for f in rows:
            net[f["symbol"]] += f["quantity"] if f["action"] == "BUY" else -f["quantity"]
        assert not any(net.values()), (day, dict(net))
        assert all(at(f["time"]).time() <= time(15, 12) for f in rows), day


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_every_template_backtests_a_month(refdata: RefData, template: str) -> None:
    text = render("t_builder", template)
    res, _, src = run(refdata, text, *MONTH)
    spec = parse(Path("x.toml"), text)
    days = by_day(res.fills)
    trading = trading_days(refdata, "NFO", *MONTH)  # Diwali's Muhurat session included
    assert sorted(days) == trading  # it entered every trading day
    flat_each_day(res.fills)
    assert not [e for e in res.events if e["kind"] == "rejected"], res.events[:3]
    for day, rows in days.items():
        first = min(f["time"] for f in rows)
        opened = []  # the entry: each leg's first fill, within 2 minutes (a stop may follow)
        for f in sorted(rows, key=lambda f: f["time"]):
            if f["time"] - first < 120e9 and all(o["symbol"] != f["symbol"] for o in opened):
                opened.append(f)
        opens = max(time(9, 30), hours_of(refdata, day))
        assert (
            opens <= at(first).time() < (datetime.combine(day, opens) + timedelta(minutes=4)).time()
        )
        kinds = sorted((f["symbol"][-2:], f["action"]) for f in opened)
        assert kinds == sorted((leg.instrument, leg.action) for leg in spec.legs), (day, kinds)
        # an offset leg's strike is the one live would choose from the index at entry
        index = next(iter(src.batches("NSE_INDEX", "NIFTY", day, day)))
        minute = int((first - index.start_ns[0]) // 60e9) - 1  # the bar before the entry fill
        spot = float(index.close[max(minute, 0)])
        for leg in spec.legs:
            rule = leg.strike_rule
            if "offset" not in rule:
                continue
            want = strike_for(spot, 50, leg.instrument, rule["offset"])
            strikes = {
                float(f["symbol"][12:-2])
                for f in opened
                if (f["symbol"][-2:], f["action"]) == (leg.instrument, leg.action)
            }
            assert any(abs(k - want) <= 50 for k in strikes), (template, day, want, strikes)
    if template == "calendar":
        assert all(len({f["symbol"][5:12] for f in rows}) == 2 for rows in days.values())


STRADDLE = """
underlying = "NIFTY"
[schedule]
entry = "09:30"
last_entry = "14:00"
squareoff = "15:10"
{extra}
[[legs]]
instrument = "CE"
action = "SELL"
{leg}
[[legs]]
instrument = "PE"
action = "SELL"
{leg}
"""


def straddle(extra: str = "", leg: str = "") -> str:
    return STRADDLE.format(extra=extra, leg=leg)


def test_a_stopped_leg_is_reentered_after_its_delay_at_most_count_times(
    refdata: RefData,
) -> None:
    text = straddle("[reentry]\ncount = 2\ndelay = 300\n", "stop_pct = 4")
    res, logs, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 10))
    stopped = [e for e in logs if e["event"] == "builder leg stopped"]
    assert len(stopped) >= 4  # a 4 % stop on an option is hit most days
    reentered = 0
    for day, rows in by_day(res.fills).items():
        sells = sorted((f for f in rows if f["action"] == "SELL"), key=lambda f: f["time"])
        for right in ("CE", "PE"):
            legs = [f for f in sells if f["symbol"].endswith(right)]
            assert 1 <= len(legs) <= 3, (day, right, legs)  # the entry and 2 re-entries
            reentered += len(legs) - 1
            for before, after in itertools.pairwise(legs):
                # its stop filled in between, and the re-entry waited 300 s after it
                stop = [
                    f
                    for f in rows
                    if f["symbol"] == before["symbol"]
                    and f["action"] == "BUY"
                    and before["time"] < f["time"] < after["time"]
                ]
                assert stop, (day, before, after)
                assert after["time"] - stop[0]["time"] >= 300e9
    assert reentered >= 3  # the case meant
    flat_each_day(res.fills)


def test_stop_to_cost_closes_the_other_leg_at_its_cost(refdata: RefData) -> None:
    text = straddle("[exits]\nstop_to_cost = true\n", "stop_pct = 6")
    res, logs, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 17))
    moved = [e for e in logs if e["event"] == "builder stop to cost"]
    closed = [e for e in logs if e["event"] == "builder leg at cost: closing it"]
    assert moved and closed
    entries = {f["symbol"]: f["price"] for f in res.fills if f["action"] == "SELL"}
    for e in closed:  # the price had come back to the leg's cost (a short: at or above it)
        assert e["ltp"] >= entries[e["leg"]], e
        assert any(m["leg"] == e["leg"] and m["cost"] == entries[e["leg"]] for m in moved)


@pytest.mark.parametrize(
    "exits, reason",
    [
        ("max_loss = 1", "max loss"),
        ("max_profit = 1", "max profit"),
        ("trail_after = 1\ntrail_by = 1", "trailing stop"),
        ('supertrend = { timeframe = "1m", period = 3, multiplier = 0.5 }', "supertrend turned"),
    ],
)
def test_strategy_exits_close_every_leg_for_the_day(
    refdata: RefData, exits: str, reason: str
) -> None:
    res, logs, _ = run(
        refdata, straddle(f"[exits]\n{exits}\n"), date(2025, 10, 6), date(2025, 10, 8)
    )
    exited = [e for e in logs if e["event"] == "builder exit"]
    assert len(exited) == 3 and all(e["reason"].startswith(reason) for e in exited), exited
    for day, rows in by_day(res.fills).items():
        sells = [f for f in rows if f["action"] == "SELL"]
        assert len(sells) == 2, (day, sells)  # no new entry after the exit
        last = max(f["time"] for f in rows)
        assert at(last).time() < time(15, 0), (day, at(last))  # well before the square-off
    flat_each_day(res.fills)


def test_a_leg_target_closes_that_leg_only(refdata: RefData) -> None:
    text = straddle("", "target_pct = 5")
    res, logs, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 8))
    hits = [e for e in logs if e["event"] == "builder leg target: closing it"]
    assert hits
    entries = {f["symbol"]: f["price"] for f in res.fills if f["action"] == "SELL"}
    for e in hits:  # a short's target: 5 % below its entry
        assert e["ltp"] <= entries[e["leg"]] * 0.95 + 1e-9


@pytest.mark.parametrize("days", ["expiry", "non_expiry"])
def test_expiry_day_schedules(refdata: RefData, days: str) -> None:
    text = straddle().replace('entry = "09:30"', f'days = "{days}"\nentry = "09:30"')
    res, _, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 17))
    u = refdata.underlying("NIFTY")
    traded = set(by_day(res.fills))
    expiries = {
        d
        for d in traded | {date(2025, 10, 7), date(2025, 10, 14)}
        if refdata.calendar.near_option_expiry(u, d) == d
    }
    assert expiries == {date(2025, 10, 7), date(2025, 10, 14)}  # NIFTY: Tuesdays
    assert traded == expiries if days == "expiry" else (traded and not traded & expiries)


def test_a_risk_profile_sizes_the_whole_set_from_margin(refdata: RefData) -> None:
    text = render("t_builder", "iron_condor").replace('mode = "fixed"', 'mode = "balanced"')
    capital = 2_000_000.0
    res, logs, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 6), capital)
    sized = next(e for e in logs if e["event"] == "builder sizing")
    sets = int(capital * 0.65 // sized["set_margin"])
    # the set: a short call (250,000 a lot on a day that is not its expiry), the put
    # beside it (70,000 more for the pair), the two wings' premiums
    assert 320_000 < sized["set_margin"] < 340_000
    assert sets >= 2  # the case meant: several sets (the first leg, a wing, is ~1,000 a lot)
    opened = [f for f in res.fills if at(f["time"]).time() < time(9, 40)]
    assert sorted(f["quantity"] for f in opened) == [sets * 65] * 4, opened


def test_a_future_leg_trades_beside_an_option(refdata: RefData) -> None:
    """A covered call: the near-month future bought, this week's call two strikes out sold;
    both every day, flat at the square-off."""
    text = """
underlying = "NIFTY"
[[legs]]
instrument = "FUT"
action = "BUY"
expiry = "monthly"
[[legs]]
instrument = "CE"
action = "SELL"
strike = "OTM2"
"""
    res, logs, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 8))
    days = by_day(res.fills)
    assert len(days) == 3
    for rows in days.values():
        opened = {f["symbol"][-3:] if f["symbol"].endswith("FUT") else f["symbol"][-2:]: f
                  for f in sorted(rows, key=lambda f: -f["time"])}  # fmt: skip
        assert set(opened) == {"FUT", "CE"}
        assert any(f["symbol"] == "NIFTY28OCT25FUT" and f["action"] == "BUY" for f in rows)
    flat_each_day(res.fills)
    assert [e["event"] for e in logs].count("builder entered") == 3


def test_a_profile_that_affords_no_set_does_not_trade(refdata: RefData) -> None:
    """Risk refuses the sized first leg (its margin is not one set's worth): the other
    legs are never sent, and the day is over."""
    text = render("t_builder", "iron_condor").replace('mode = "fixed"', 'mode = "conservative"')
    res, logs, _ = run(refdata, text, date(2025, 10, 6), date(2025, 10, 6), 300_000.0)
    assert res.fills == []
    assert [e["event"] for e in logs] == [
        "builder sizing",
        "builder sized to nothing: no entry today",
    ]
    assert any(e["rule"] == "sizing" for e in res.events), res.events
