"""A strategy's days and hours (``risk/schedule.py``): the plan from the exchange calendar
(weekends and holidays off, expiry days from the underlying's expiries, named weekdays),
the schedule's checks, and risk following it: halted outside the hours, armed at the
start (its own halt only: an operator's pause stays), a new day armed with nobody looking.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import IST, RefData
from mytrading.domain.trading_states import describe
from mytrading.messaging import wire
from mytrading.risk.daemon import build_core
from mytrading.risk.schedule import Schedule, Scheduler, load_schedules
from mytrading.settings import ConfigError, load_settings
from tests.risk.test_risk_core import NS, Broker, LivePorts

NAME = "straddle"


def _next(refdata: RefData, start: date, want_expiry: bool) -> date:
    """The first trading day from ``start`` that is (or is not) a NIFTY expiry day."""
    cal, u = refdata.calendar, refdata.underlying("NIFTY")
    d = start
    while not (cal.is_trading_day("NSE", d) and (cal.near_option_expiry(u, d) == d) == want_expiry):
        d += timedelta(days=1)
    return d


def test_the_plan_follows_the_exchange_calendar(refdata: RefData) -> None:
    expiry = _next(refdata, date(2026, 12, 1), True)
    plain = _next(refdata, date(2026, 12, 1), False)
    sat = date(2026, 12, 5)
    assert sat.weekday() == 5
    holiday = date(2026, 12, 25)  # Christmas: in config/holidays.toml
    assert not refdata.calendar.is_trading_day("NSE", holiday)
    sch = Scheduler(
        {
            "exp": Schedule(days="expiry", underlying="NIFTY", start="09:20", stop="15:10"),
            "non": Schedule(days="non_expiry", underlying="NIFTY"),
            "all": Schedule(),
            "monwed": Schedule(days=["mon", "wed"]),
        },
        refdata,
    )
    assert sch.plan("exp", expiry).trades and not sch.plan("exp", plain).trades
    assert "not a NIFTY expiry day" in sch.plan("exp", plain).why
    assert sch.plan("non", plain).trades and not sch.plan("non", expiry).trades
    assert not sch.plan("all", sat).trades and "not a trading day" in sch.plan("all", sat).why
    assert not sch.plan("all", holiday).trades
    monday = date(2026, 12, 7)
    assert sch.plan("monwed", monday).trades
    assert not sch.plan("monwed", monday + timedelta(days=1)).trades
    t = datetime.combine(expiry, datetime.min.time(), IST)
    assert sch.phase("exp", t.replace(hour=9, minute=19)) == "before"
    assert sch.phase("exp", t.replace(hour=9, minute=20)) == "during"
    assert sch.phase("exp", t.replace(hour=15, minute=10)) == "after"
    today = sch.today(t.replace(hour=10))
    assert today["exp"]["trades_today"] and today["exp"]["phase"] == "during"


@pytest.mark.parametrize(
    ("table", "expect"),
    [
        ('start = "15:00"\nstop = "09:15"', "must be before stop"),
        ('start = "9:15"', "start: String should match"),
        ("days = []", "days: an empty list"),
        ('days = ["sun"]', "days"),
        ('days = "expiry"', "expiry days need an underlying"),
        ('days = "expiry"\nunderlying = "NOPE"', "unknown underlying 'NOPE'"),
        ('exchange = "XX"', "no session hours for exchange 'XX'"),
        ("when = 1", "when: Extra inputs"),
    ],
)
def test_a_bad_schedule_names_the_strategy_and_the_field(
    refdata: RefData, tmp_path: Path, table: str, expect: str
) -> None:
    path = tmp_path / "strategies.toml"
    path.write_text(f"[{NAME}]\nlots = 1\n\n[{NAME}.schedule]\n{table}\n")
    with pytest.raises(ConfigError) as e:
        load_schedules(path, [NAME], refdata, {NAME: {}})
    assert f"[{NAME}.schedule]" in str(e.value) and expect in str(e.value), str(e.value)


def test_the_underlying_for_expiry_days_comes_from_the_strategys_params(
    refdata: RefData, tmp_path: Path
) -> None:
    path = tmp_path / "strategies.toml"
    path.write_text(f'[{NAME}]\nunderlying = "BANKNIFTY"\n[{NAME}.schedule]\ndays = "expiry"\n')
    got = load_schedules(path, [NAME, "other"], refdata, {NAME: {"underlying": "BANKNIFTY"}})
    assert got[NAME].underlying == "BANKNIFTY" and "other" not in got


def test_risk_halts_outside_the_hours_and_arms_at_the_start(
    refdata: RefData, tmp_env: dict[str, str]
) -> None:
    day = _next(refdata, date(2026, 12, 1), False)
    t = [datetime.combine(day, datetime.min.time(), IST).replace(hour=8)]
    now_ns = lambda: int(t[0].timestamp() * NS)  # noqa: E731
    ports = LivePorts(Broker())
    core = build_core(
        load_settings(), refdata, Accounts(by_name={}), ports, lambda: t[0], "sc", None,
        now_ns, lambda: now_ns() / NS,
        schedules={NAME: Schedule(start="09:20", stop="15:00")},
    )  # fmt: skip
    states = core.book.states

    def step(h: int, m: int, d: date | None = None) -> str:
        t[0] = t[0].replace(hour=h, minute=m) if d is None else t[0].replace(day=d.day, hour=h,
                                                                            minute=m)  # fmt: skip
        core.step()
        return states.own(NAME)

    assert step(8, 0) == "halted"  # before its start
    assert states.why[NAME].by == "schedule" and "before its start 09:20" in states.why[NAME].reason
    assert "armed by its schedule at its next start" in describe(states.as_dict(), NAME)
    assert step(9, 19) == "halted"
    assert step(9, 20) == "active"  # armed
    assert [e.action for e in ports.events if e.rule == "schedule"] == ["halted", "active"]
    assert step(15, 0) == "halted" and "after its stop 15:00" in states.why[NAME].reason

    # an operator's resume out of hours holds until the next change; their pause is
    # theirs: the start does not lift it
    core.on_command(wire.Command(command="state", value="active", target=NAME, reason="x",
                                 issued_by="cli:op"))  # fmt: skip
    assert step(15, 30) == "active"
    nxt = _next(refdata, day + timedelta(days=1), False)
    assert step(9, 0, nxt) == "halted"  # a new day, before its start: nobody looking
    core.on_command(wire.Command(command="state", value="halted", target=NAME, reason="lunch",
                                 issued_by="cli:op"))  # fmt: skip
    assert step(9, 20) == "halted" and states.why[NAME].reason == "lunch"
