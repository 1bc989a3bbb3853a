from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest

from mytrading.domain.clock import _trading_sessions
from mytrading.domain.refdata import (
    IST,
    Calendar,
    RefData,
    RefDataError,
    future_symbol,
    load_refdata,
    option_symbol,
    round_to_tick,
)
from mytrading.settings import PROJECT_ROOT


def test_symbols_follow_openalgo_format() -> None:
    assert future_symbol("NIFTY", date(2025, 12, 30)) == "NIFTY30DEC25FUT"
    assert option_symbol("NIFTY", date(2025, 12, 30), 26000, "CE") == "NIFTY30DEC2526000CE"
    assert option_symbol("VEDL", date(2024, 4, 25), 292.5, "CE") == "VEDL25APR24292.5CE"


def test_instrument_parsing(refdata: RefData) -> None:
    fut = refdata.instrument("NFO", "NIFTY30DEC25FUT")
    assert (fut.kind, fut.lot_size, fut.freeze_qty, fut.expiry) == (
        "FUT",
        65,
        1800,
        date(2025, 12, 30),
    )
    opt = refdata.instrument("BFO", "SENSEX04DEC2581000PE")
    assert (opt.kind, opt.strike, opt.lot_size) == ("PE", 81000.0, 20)
    idx = refdata.instrument("NSE_INDEX", "NIFTY")
    assert idx.kind == "INDEX" and not idx.tradable


def test_an_option_by_its_parts_is_the_one_its_symbol_gives() -> None:
    """``RefData.option`` (the simulated market's listing) builds without parsing: the
    same contract ``instrument`` parses from the symbol, for a whole and a half strike."""
    by_parts = load_refdata(PROJECT_ROOT / "config")
    by_symbol = load_refdata(PROJECT_ROOT / "config")
    for name, strike in (("NIFTY", 24550.0), ("BANKNIFTY", 51700.0), ("SENSEX", 81000.0)):
        u = by_parts.underlying(name)
        for right in ("CE", "PE"):
            got = by_parts.option(u, date(2026, 6, 30), strike, right)
            sym = option_symbol(name, date(2026, 6, 30), strike, right)
            assert got == by_symbol.instrument(u.fo_exchange, sym)
            assert by_parts.instrument(u.fo_exchange, sym) is got  # one cache


@pytest.mark.parametrize(
    "exchange, symbol, why",
    [
        ("NSE", "NIFTY30DEC25FUT", "trades on NFO"),
        ("NFO", "NOPE30DEC25FUT", "unknown underlying"),
        ("NFO", "NIFTY30DEC2526025CE", "not a multiple"),
        ("NFO", "NIFTY31FEB25FUT", "bad expiry"),
        ("NFO", "garbage", "unknown instrument"),
        ("NFO", "NIFTY", "quoted on NSE_INDEX"),
    ],
)
def test_bad_instruments(refdata: RefData, exchange: str, symbol: str, why: str) -> None:
    with pytest.raises(RefDataError, match=why):
        refdata.instrument(exchange, symbol)


@pytest.mark.parametrize(
    "price, tick, want",
    [
        (100.02, 0.05, 100.0),
        (100.03, 0.05, 100.05),
        (24500.075, 0.05, 24500.1),
        (0.1 + 0.2, 0.05, 0.3),
        (99.99, 0.1, 100.0),
    ],
)
def test_round_to_tick(price: float, tick: float, want: float) -> None:
    assert round_to_tick(price, tick) == want


def test_calendar_sessions_and_holidays(refdata: RefData) -> None:
    cal = refdata.calendar
    assert cal.is_open("NFO", datetime(2026, 11, 23, 9, 15, tzinfo=IST))
    assert not cal.is_open("NFO", datetime(2026, 11, 23, 9, 14, 59, tzinfo=IST))
    assert not cal.is_open("NFO", datetime(2026, 11, 23, 15, 30, tzinfo=IST))
    assert not cal.is_open("NFO", datetime(2026, 11, 24, 10, 0, tzinfo=IST))  # Guru Nanak Jayanti
    assert not cal.is_open("BFO", datetime(2026, 11, 22, 10, 0, tzinfo=IST))  # Sunday
    assert cal.is_open("NSE", datetime(2025, 10, 21, 14, 0, tzinfo=IST))  # Muhurat session
    assert not cal.is_open("NSE", datetime(2025, 10, 21, 10, 0, tzinfo=IST))
    with pytest.raises(ValueError, match="naive"):
        cal.is_open("NSE", datetime(2026, 11, 23, 10, 0))
    assert cal.last_trading_day("NSE", date(2026, 11, 22)) == date(2026, 11, 20)
    # a special session's day (Muhurat on a holiday, a Saturday's) is traded, in its
    # hours, but is no regular trading day: expiries still move off it
    assert cal.has_session("NSE", date(2025, 10, 21)) and not cal.is_trading_day(
        "NSE", date(2025, 10, 21))  # fmt: skip
    assert not cal.has_session("NSE", date(2026, 11, 24))
    saturday = date(2026, 11, 28)
    special = Calendar(cal.sessions, cal.holidays, [(saturday, {"NSE"}, time(9, 15), time(15, 30))])
    assert special.has_session("NSE", saturday) and not special.has_session("NFO", saturday)
    assert special.is_open("NSE", datetime(2026, 11, 28, 10, 0, tzinfo=IST))
    # the market clock runs through it (before, the simulator's clock skipped a Saturday's
    # session to Monday's, and the feed took every tick for one 38 hours ahead)
    spans = _trading_sessions(special, date(2026, 11, 27), 3, "NSE", None)
    opens = [datetime.fromtimestamp(o / 1e9, IST) for o, _ in spans]
    assert [o.date() for o in opens] == [date(2026, 11, 27), saturday, date(2026, 11, 30)]


def test_expiries_move_for_holidays(refdata: RefData) -> None:
    cal = refdata.calendar
    nifty, sensex, bank = (refdata.underlying(n) for n in ("NIFTY", "SENSEX", "BANKNIFTY"))
    # Last Tuesday of Nov 2026 is the 24th, a holiday: the expiry moves to Monday the 23rd.
    assert cal.monthly_expiry(nifty, 2026, 11) == date(2026, 11, 23)
    assert cal.near_future_expiry(nifty, date(2026, 11, 24)) == date(2026, 12, 29)
    assert cal.near_option_expiry(nifty, date(2026, 11, 20)) == date(2026, 11, 23)
    assert cal.near_option_expiry(nifty, date(2026, 11, 25)) == date(2026, 12, 1)
    assert cal.near_option_expiry(sensex, date(2026, 11, 20)) == date(2026, 11, 26)
    assert cal.near_option_expiry(bank, date(2026, 11, 2)) == date(2026, 11, 23)  # monthly only


def test_expiry_weekdays_follow_the_exchanges_rules_by_date(refdata: RefData) -> None:
    """NIFTY expired on Thursdays until NSE moved every expiry to Tuesday from 2025-09-01;
    BANKNIFTY lost its weeklies in November 2024; stock monthlies moved with NIFTY's."""
    cal = refdata.calendar
    nifty, bank, sensex = (refdata.underlying(n) for n in ("NIFTY", "BANKNIFTY", "SENSEX"))
    june = cal.near_option_expiry(nifty, date(2025, 6, 2))
    assert june == date(2025, 6, 5) and june.strftime("%a") == "Thu"
    assert cal.monthly_expiry(nifty, 2025, 6) == date(2025, 6, 26)  # last Thursday
    nov = cal.near_option_expiry(nifty, date(2025, 11, 3))
    assert nov == date(2025, 11, 4) and nov.strftime("%a") == "Tue"
    assert cal.monthly_expiry(nifty, 2025, 11) == date(2025, 11, 25)  # last Tuesday
    # the week the rule changed: Thursday 28 Aug, then Tuesday 2 Sep
    assert cal.weekly_expiries(nifty, date(2025, 8, 25), 2) == [date(2025, 8, 28), date(2025, 9, 2)]
    assert cal.near_option_expiry(bank, date(2024, 11, 11)) == date(2024, 11, 13)  # last weekly
    assert cal.near_option_expiry(bank, date(2024, 11, 18)) == date(2024, 11, 27)  # monthly (Wed)
    assert cal.weekly_expiries(bank, date(2026, 11, 2), 4) == []
    assert cal.near_option_expiry(sensex, date(2024, 6, 3)) == date(2024, 6, 7)  # Friday, then
    stock = refdata.underlying(next(n for n, u in refdata.underlyings.items() if u.kind == "STOCK"))
    assert cal.monthly_expiry(stock, 2025, 6).strftime("%a") == "Thu"
    assert cal.monthly_expiry(stock, 2025, 10).strftime("%a") == "Tue"
    # what the exchange lists on a day: 4 weeklies, 3 monthlies, 3 quarterlies
    listed = cal.listed_expiries(nifty, date(2026, 11, 20))
    assert listed[:4] == [
        date(2026, 11, 23),
        date(2026, 12, 1),
        date(2026, 12, 8),
        date(2026, 12, 15),
    ]
    assert listed[4:] == [date(2026, 12, 29), date(2027, 1, 26), date(2027, 3, 30),
                          date(2027, 6, 29), date(2027, 9, 28)]  # fmt: skip
    assert cal.listed_expiries(bank, date(2026, 11, 20))[0] == date(2026, 11, 23)


@pytest.mark.parametrize(
    "rules, why",
    [
        ('[{ from = "2025-09-01", weekly = "TUE" }]', "exactly from, weekly, monthly"),
        ('[{ from = "soon", weekly = "TUE", monthly = "TUE" }]', "is not a date"),
        ('[{ from = "2025-09-01", weekly = "SAT", monthly = "TUE" }]', "not in MON..FRI"),
        ('[{ from = "2025-09-01", weekly = "TUE", monthly = "" }]', "monthly is required"),
        (
            '[{ from = "2025-09-01", weekly = "", monthly = "TUE" },'
            ' { from = "2025-01-01", weekly = "", monthly = "THU" }]',
            "is not after",
        ),
        ('[{ from = "2025-09-01", weekly = "WED", monthly = "TUE" }]', "disagrees"),
    ],
)
def test_bad_expiry_rules_are_refused(tmp_path: Path, rules: str, why: str) -> None:
    for f in ("sessions.toml", "holidays.toml", "stocks.toml"):
        (tmp_path / f).write_text((PROJECT_ROOT / "config" / f).read_text())
    text = (PROJECT_ROOT / "config" / "instruments.toml").read_text()
    start = text.index("[underlyings.NIFTY]")
    head, rest = text[:start], text[start:]
    block_end = rest.index("\n[", 1)
    nifty = rest[:block_end]
    nifty = nifty[: nifty.index("expiry_rules")] + f"expiry_rules = {rules}\n"
    (tmp_path / "instruments.toml").write_text(head + nifty + rest[block_end:])
    with pytest.raises(RefDataError, match=why):
        load_refdata(tmp_path)


def test_bad_config_is_reported(tmp_path: Path) -> None:
    (tmp_path / "instruments.toml").write_text("[underlyings.X]\nlot_size = 1\n")
    (tmp_path / "sessions.toml").write_text("")
    (tmp_path / "holidays.toml").write_text("")
    with pytest.raises(RefDataError, match=r"instruments.toml \[X\]"):
        load_refdata(tmp_path)
    (tmp_path / "instruments.toml").write_text("not toml [")
    with pytest.raises(RefDataError, match="config"):
        load_refdata(tmp_path)
