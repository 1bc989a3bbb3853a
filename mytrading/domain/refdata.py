"""Reference data from ``config/*.toml``: instruments, trading calendar, sessions.

Symbols follow OpenAlgo's format (docs/openalgo.md §3): futures
``NIFTY25NOV26FUT``, options ``NIFTY24NOV2624500CE``, indices bare (``NIFTY``).
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import tomllib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from mytrading.domain.ids import Instrument as InstrumentId

IST = ZoneInfo("Asia/Kolkata")
WEEKDAYS = {"MON": 0, "TUE": 1, "WED": 2, "THU": 3, "FRI": 4}
_DERIV_RE = re.compile(r"^([A-Z]+)(\d{2}[A-Z]{3}\d{2})(?:(FUT)|(\d+(?:\.\d+)?)(CE|PE))$")


class RefDataError(ValueError):
    """Bad reference data, or a symbol it cannot resolve."""


@dataclass(frozen=True)
class ExpiryRule:
    """The expiry weekdays in force from ``start``: ``weekly`` ("" = no weekly options)
    and ``monthly`` (the last such weekday of the month). Exchanges move them by circular
    (NIFTY: Thursday, then Tuesday from 2025-09-01); a contract expires by the rule in
    force when it expires, as the exchanges moved listed contracts with the rule."""

    start: date
    weekly: str
    monthly: str


@dataclass(frozen=True)
class Underlying:
    name: str
    spot_exchange: str
    fo_exchange: str
    lot_size: int
    tick_size: float
    freeze_qty: int
    strike_step: float
    weekly_expiry: str
    monthly_expiry: str
    sim_spot: float
    sim_vol: float
    kind: str = "INDEX"  # "INDEX" | "STOCK" (config/stocks.toml: an equity, maybe with F&O)
    eq_tick: float = 0.0  # a stock's own price step on NSE/BSE
    band_pct: float = 0.0  # a stock's daily price band, %
    fno: bool = True  # has futures and options (an ETF: no)
    # earlier and later rules, oldest first (instruments.toml ``expiry_rules``); without
    # them ``weekly_expiry`` and ``monthly_expiry`` hold for every date
    expiry_rules: tuple[ExpiryRule, ...] = ()

    def expiry_rule(self, on: date) -> ExpiryRule:
        """The rule in force on ``on``."""
        current = ExpiryRule(date.min, self.weekly_expiry, self.monthly_expiry)
        for r in self.expiry_rules:
            if r.start <= on:
                current = r
        return current


EQUITY_EXCHANGES = ("NSE", "BSE")


@dataclass(frozen=True)
class Instrument:
    exchange: str
    symbol: str
    underlying: str
    kind: str  # "INDEX" | "EQ" | "FUT" | "CE" | "PE"
    lot_size: int  # 1 for an index (not tradable)
    tick_size: float
    freeze_qty: int
    expiry: date | None = None
    strike: float = 0.0

    @property
    def tradable(self) -> bool:
        return self.kind != "INDEX"

    def round_price(self, price: float) -> float:
        return round_to_tick(price, self.tick_size)


@dataclass(frozen=True)
class Session:
    pre_open: time
    open: time
    close: time
    mis_squareoff: time
    holiday_list: str


_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
)}  # fmt: skip


def _expiry(text: str) -> date | None:
    """DDMMMYY (``25NOV26``) as a date, None if it is not one (``strptime`` is ~20x
    slower, and an option market lists thousands of contracts)."""
    month = _MONTHS.get(text[2:5])
    if month is None or not (text[:2].isdigit() and text[5:].isdigit()):
        return None
    try:
        return date(2000 + int(text[5:]), month, int(text[:2]))
    except ValueError:
        return None


def round_to_tick(price: float, tick: float) -> float:
    """Nearest multiple of the tick, free of binary noise (2 decimals for paise ticks)."""
    steps = round(price / tick)
    return round(steps * tick, 2 if tick >= 0.01 else 4)


@functools.lru_cache(maxsize=4096)
def fmt_expiry(d: date) -> str:
    """OpenAlgo's DDMMMYY, e.g. 25NOV26 (a strip's symbols are made on every listing:
    each expiry's text made once)."""
    return d.strftime("%d%b%y").upper()


def future_symbol(underlying: str, expiry: date) -> str:
    return f"{underlying}{fmt_expiry(expiry)}FUT"


def option_symbol(underlying: str, expiry: date, strike: float, right: str) -> str:
    s = str(int(strike)) if float(strike).is_integer() else f"{strike}"
    return f"{underlying}{fmt_expiry(expiry)}{s}{right}"


class Calendar:
    """Trading days and session hours per exchange, in IST."""

    def __init__(
        self,
        sessions: dict[str, Session],
        holidays: dict[str, set[date]],
        special: list[tuple[date, set[str], time, time]],
    ) -> None:
        self.sessions = sessions
        self.holidays = holidays
        self.special = special
        # a day's hours, asked for every tick's bar and every order's session check:
        # worked out once per (exchange, day); the calendar does not change once loaded
        self._hours: dict[tuple[str, date], tuple[time, time] | None] = {}
        self._open: dict[tuple[str, date], bool] = {}  # is_trading_day's, likewise

    def session(self, exchange: str) -> Session:
        try:
            return self.sessions[exchange]
        except KeyError:
            raise RefDataError(f"no session hours for exchange {exchange!r}") from None

    def is_trading_day(self, exchange: str, d: date) -> bool:
        """A regular trading day: a weekday that is not one of the exchange's holidays.
        A special session (Muhurat trading on Diwali, a Saturday's session) does not make
        one: expiries still move off such a day (NSE moved 2025-10-21's weekly expiry to
        the 20th). Whether the exchange trades at all that day is ``has_session``."""
        key = (exchange, d)
        try:
            return self._open[key]
        except KeyError:
            got = d.weekday() < 5 and d not in self.holidays.get(
                self.session(exchange).holiday_list, set()
            )
            self._open[key] = got
            return got

    def has_session(self, exchange: str, d: date) -> bool:
        """The exchange trades on ``d``: a regular trading day or a special session's."""
        return self.hours(exchange, d) is not None

    def hours(self, exchange: str, d: date) -> tuple[time, time] | None:
        """Continuous-trading hours on that date, or None when the exchange is shut."""
        key = (exchange, d)
        try:
            return self._hours[key]
        except KeyError:
            got = self._hours[key] = self._hours_of(exchange, d)
            return got

    def _hours_of(self, exchange: str, d: date) -> tuple[time, time] | None:
        for sd, exchanges, op, cl in self.special:
            if sd == d and exchange in exchanges:
                return op, cl
        if not self.is_trading_day(exchange, d):
            return None
        s = self.session(exchange)
        return s.open, s.close

    def is_open(self, exchange: str, when: datetime) -> bool:
        if when.tzinfo is None:
            raise ValueError("naive datetime: every timestamp must be timezone-aware")
        local = when.astimezone(IST)
        hrs = self.hours(exchange, local.date())
        return hrs is not None and hrs[0] <= local.time() < hrs[1]

    def trading_days_left(self, exchange: str, today: date, expiry: date) -> int:
        """Trading days after ``today`` up to and including ``expiry`` (0 on expiry day):
        how far a future is from its expiry, for the roll (``engine/rolls.py``)."""
        n, d = 0, today
        while d < expiry:
            d += timedelta(days=1)
            if self.is_trading_day(exchange, d):
                n += 1
        return n

    def last_trading_day(self, exchange: str, on_or_before: date) -> date:
        d = on_or_before
        for _ in range(30):
            if self.is_trading_day(exchange, d):
                return d
            d -= timedelta(days=1)
        raise RefDataError(f"no trading day for {exchange} in the 30 days before {on_or_before}")

    def _shift_back(self, exchange: str, d: date) -> date:
        """An expiry that falls on a holiday moves to the previous trading day."""
        return self.last_trading_day(exchange, d)

    def monthly_expiry(self, u: Underlying, year: int, month: int) -> date:
        """The last expiry weekday of the month (by the rule in force on the month's last
        day), moved back over holidays."""
        last = date(year, month, calendar.monthrange(year, month)[1])
        wd = WEEKDAYS[u.expiry_rule(last).monthly]
        d = last - timedelta(days=(last.weekday() - wd) % 7)
        return self._shift_back(u.fo_exchange, d)

    def near_future_expiry(self, u: Underlying, today: date) -> date:
        e = self.monthly_expiry(u, today.year, today.month)
        if e < today:
            y, m = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
            e = self.monthly_expiry(u, y, m)
        return e

    def near_option_expiry(self, u: Underlying, today: date) -> date:
        """Nearest option expiry on or after today: the weekly where the index has
        weeklies, else the monthly. A week's expiry weekday is the rule in force on its
        Monday; a weekly is never later than that month's monthly."""
        monday = today - timedelta(days=today.weekday())
        for week in range(3):
            start = monday + timedelta(days=7 * week)
            rule = u.expiry_rule(start)
            if not rule.weekly:
                return self.near_future_expiry(u, today)
            e = self._shift_back(u.fo_exchange, start + timedelta(days=WEEKDAYS[rule.weekly]))
            if e >= today:
                return min(e, self.near_future_expiry(u, today))
        raise RefDataError(f"{u.name}: no option expiry within three weeks of {today}")

    def weekly_expiries(self, u: Underlying, today: date, count: int) -> list[date]:
        """The next ``count`` weekly expiries on or after today (fewer where the index
        has no weeklies: none listed beyond its rules' weekly-free dates)."""
        out: list[date] = []
        d = today
        while len(out) < count:
            rule = u.expiry_rule(d - timedelta(days=d.weekday()))
            if not rule.weekly:
                break
            e = self.near_option_expiry(u, d)
            out.append(e)
            d = e + timedelta(days=1)
        return out

    def monthly_expiries(self, u: Underlying, today: date, count: int) -> list[date]:
        """The next ``count`` monthly expiries on or after today."""
        out: list[date] = []
        d = today
        while len(out) < count:
            e = self.near_future_expiry(u, d)
            out.append(e)
            d = e + timedelta(days=1)
        return out

    def listed_expiries(self, u: Underlying, today: date) -> list[date]:
        """The option expiries an exchange lists on ``today``, as NSE and BSE list index
        options: the next four weeklies (where the index has them), the next three
        monthlies, and the next three quarterlies (March, June, September, December)
        after those; sorted, each once."""
        months = self.monthly_expiries(u, today, 3)
        quarters: list[date] = []
        d = months[-1] + timedelta(days=1)
        while len(quarters) < 3:
            e = self.near_future_expiry(u, d)
            if e.month % 3 == 0:
                quarters.append(e)
            d = e + timedelta(days=1)
        return sorted({*self.weekly_expiries(u, today, 4), *months, *quarters})


class MasterContract(Protocol):
    """One row of a broker's master contract, as ``master/contract.py`` keeps it."""

    @property
    def exchange(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def lot(self) -> int: ...
    @property
    def tick(self) -> float: ...
    @property
    def expiry(self) -> date | None: ...
    @property
    def strike(self) -> float: ...


class MasterLookup(Protocol):
    """The synced master contract (``master.store.MasterIndex``): refdata reads it
    through this, so that it depends on no package above it."""

    def get(self, exchange: str, symbol: str) -> MasterContract | None: ...

    def __len__(self) -> int: ...


class RefData:
    """Contracts by (exchange, symbol). With a synced master contract (``master``), lot
    size, tick size, expiry, strike and type come from it, and ``instruments.toml`` adds
    what it lacks (freeze quantities); ``overrides`` (``[overrides."EX:SYMBOL"]`` in
    instruments.toml) win over both. Without one, or for a symbol it lacks (the
    simulator's own contracts), the symbol is read against ``instruments.toml``."""

    def __init__(
        self,
        underlyings: dict[str, Underlying],
        cal: Calendar,
        master: MasterLookup | None = None,
        overrides: dict[tuple[str, str], dict[str, Any]] | None = None,
    ) -> None:
        self.underlyings = underlyings
        self.calendar = cal
        self.master = master
        self.overrides = overrides or {}
        self.universes: dict[str, tuple[str, ...]] = {}  # config/stocks.toml [universes]
        self._cache: dict[tuple[str, str], Instrument] = {}
        # options by their parts (``option``): the symbol not even formatted again
        self._options: dict[tuple[str, date, float, str], Instrument] = {}

    def underlying(self, name: str) -> Underlying:
        try:
            return self.underlyings[name]
        except KeyError:
            raise RefDataError(f"unknown underlying {name!r}") from None

    def instrument(self, exchange: str, symbol: str) -> Instrument:
        """Resolve an OpenAlgo symbol to its contract details, or raise RefDataError."""
        key = (exchange, symbol)
        inst = self._cache.get(key)
        if inst is None:
            c = self.master.get(exchange, symbol) if self.master is not None else None
            inst = self._from_master(c) if c is not None else self._parse(exchange, symbol)
            o = self.overrides.get(key)
            if o:
                inst = replace(
                    inst,
                    lot_size=int(o.get("lot", inst.lot_size)),
                    tick_size=float(o.get("tick", inst.tick_size)),
                    freeze_qty=int(o.get("freeze", inst.freeze_qty)),
                )
            self._cache[key] = inst
        return inst

    def option(self, u: Underlying, expiry: date, strike: float, right: str) -> Instrument:
        """An option of ``u`` by its parts: what ``instrument`` gives for its symbol,
        without parsing the symbol back (the simulated market lists thousands of them at
        each day's open: that parse was a tenth of a simulated day's CPU)."""
        parts = (u.name, expiry, strike, right)
        inst = self._options.get(parts)
        if inst is not None:
            return inst
        sym = option_symbol(u.name, expiry, strike, right)
        key = (u.fo_exchange, sym)
        inst = self._cache.get(key)
        if inst is None:
            if self.master is not None or key in self.overrides or u.name not in self.underlyings:
                inst = self.instrument(u.fo_exchange, sym)
            else:
                k = float(strike)
                inst = Instrument(u.fo_exchange, sym, u.name, right, u.lot_size, u.tick_size,
                                  u.freeze_qty, expiry, k)  # fmt: skip
                self._cache[key] = inst
        self._options[parts] = inst
        return inst

    def source(self, exchange: str, symbol: str) -> str:
        """Where a contract's figures come from, for people."""
        found = self.master is not None and self.master.get(exchange, symbol) is not None
        src = "master contract" if found else "config/instruments.toml"
        return src + (" + override" if (exchange, symbol) in self.overrides else "")

    def _from_master(self, c: MasterContract) -> Instrument:
        if c.kind == "INDEX":
            return Instrument(c.exchange, c.symbol, c.symbol, "INDEX", 1, c.tick, 0)
        u = self.underlyings.get(c.name)
        # The master contract has no freeze quantity: instruments.toml's, else none (10^9)
        freeze = max(u.freeze_qty, c.lot) if u is not None and c.kind != "EQ" else 10**9
        return Instrument(
            c.exchange, c.symbol, c.name, c.kind, c.lot, c.tick, freeze, c.expiry, c.strike
        )

    def _parse(self, exchange: str, symbol: str) -> Instrument:
        u = self.underlyings.get(symbol)
        if u is not None and u.kind == "STOCK":
            if exchange not in EQUITY_EXCHANGES:
                raise RefDataError(f"{symbol} is an equity on NSE or BSE, not {exchange}")
            return Instrument(exchange, symbol, symbol, "EQ", 1, u.eq_tick, 10**9)
        if u is not None:
            if exchange != u.spot_exchange:
                raise RefDataError(f"{symbol} is quoted on {u.spot_exchange}, not {exchange}")
            return Instrument(exchange, symbol, symbol, "INDEX", 1, u.tick_size, 0)
        m = _DERIV_RE.match(symbol)
        if not m:
            raise RefDataError(f"unknown instrument {exchange}:{symbol}")
        base, exp, fut, strike, right = m.groups()
        u = self.underlyings.get(base)
        if u is None:
            raise RefDataError(f"unknown underlying {base!r} in {symbol}")
        if not u.fno:
            raise RefDataError(f"{base} has no futures or options")
        if exchange != u.fo_exchange:
            raise RefDataError(f"{symbol} trades on {u.fo_exchange}, not {exchange}")
        expiry = _expiry(exp)
        if expiry is None:
            raise RefDataError(f"bad expiry {exp!r} in {symbol}")
        if fut:
            return Instrument(
                exchange, symbol, base, "FUT", u.lot_size, u.tick_size, u.freeze_qty, expiry
            )
        k = float(strike)
        if not math.isclose(k / u.strike_step, round(k / u.strike_step)):
            raise RefDataError(f"strike {strike} is not a multiple of {u.strike_step} in {symbol}")
        return Instrument(
            exchange, symbol, base, right, u.lot_size, u.tick_size, u.freeze_qty, expiry, k
        )


# Stock futures and options: monthly only, the last Thursday, then (NSE, from 2025-09-01)
# the last Tuesday.
STOCK_EXPIRY_RULES = (
    ExpiryRule(date(2000, 1, 1), "", "THU"),
    ExpiryRule(date(2025, 9, 1), "", "TUE"),
)


def _expiry_rules(name: str, rows: Any) -> tuple[ExpiryRule, ...]:
    """``expiry_rules = [{from = "2025-09-01", weekly = "TUE", monthly = "TUE"}, ...]``,
    oldest first."""
    where = f"instruments.toml [{name}] expiry_rules"
    if not isinstance(rows, list):
        raise RefDataError(f"{where}: want a list of {{from, weekly, monthly}} tables")
    out: list[ExpiryRule] = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or set(r) != {"from", "weekly", "monthly"}:
            raise RefDataError(f"{where}[{i}]: want exactly from, weekly, monthly; got {r!r}")
        try:
            start = r["from"] if isinstance(r["from"], date) else date.fromisoformat(r["from"])
        except (TypeError, ValueError):
            raise RefDataError(f"{where}[{i}]: from {r['from']!r} is not a date") from None
        for wd in (r["weekly"], r["monthly"]):
            if wd and wd not in WEEKDAYS:
                raise RefDataError(f"{where}[{i}]: expiry day {wd!r} not in MON..FRI")
        if not r["monthly"]:
            raise RefDataError(f"{where}[{i}]: monthly is required")
        if out and start <= out[-1].start:
            raise RefDataError(f"{where}[{i}]: from {start} is not after {out[-1].start}")
        out.append(ExpiryRule(start, r["weekly"], r["monthly"]))
    return tuple(out)


def _hhmm(s: str, where: str) -> time:
    try:
        return datetime.strptime(s, "%H:%M").time()
    except ValueError:
        raise RefDataError(f"{where}: {s!r} is not HH:MM") from None


def _stocks(
    path: Path, indices: set[str]
) -> tuple[dict[str, Underlying], dict[str, tuple[str, ...]]]:
    """config/stocks.toml (optional): each stock an underlying of kind STOCK, its equity on
    NSE/BSE and, with ``fno``, monthly futures and options on NFO; and named universes
    (lists of its stocks) for strategies that trade many."""
    if not path.exists():
        return {}, {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RefDataError(f"config: {exc}") from None
    defaults = data.get("defaults", {})
    out: dict[str, Underlying] = {}
    for name, row in data.get("stocks", {}).items():
        r = {**defaults, **row}
        where = f"stocks.toml [stocks.{name}]"
        if name in indices:
            raise RefDataError(f"{where}: {name} is an index in instruments.toml too")
        try:
            lot = int(r["lot_size"])
            u = Underlying(
                name=name,
                spot_exchange="NSE",
                fo_exchange="NFO" if r["fno"] else "",
                lot_size=lot,
                tick_size=float(r["tick_size"]),
                freeze_qty=int(r.get("freeze_qty", lot * 50)),
                strike_step=float(r["strike_step"]),
                weekly_expiry="",
                monthly_expiry="TUE",
                sim_spot=float(r["sim_spot"]),
                sim_vol=float(r["sim_vol"]),
                kind="STOCK",
                eq_tick=float(r["eq_tick"]),
                band_pct=float(r["band_pct"]),
                fno=bool(r["fno"]),
                expiry_rules=STOCK_EXPIRY_RULES,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RefDataError(f"{where}: {exc!r}") from None
        if lot <= 0 or u.tick_size <= 0 or u.eq_tick <= 0 or u.band_pct not in (2, 5, 10, 20):
            raise RefDataError(f"{where}: lot, ticks must be positive, band_pct 2/5/10/20")
        out[name] = u
    universes: dict[str, tuple[str, ...]] = {}
    for uname, names in data.get("universes", {}).items():
        unknown = [n for n in names if n not in out]
        if unknown:
            raise RefDataError(f"stocks.toml [universes] {uname}: not stocks here: {unknown}")
        universes[uname] = tuple(names)
    return out, universes


def load_refdata(config_dir: Path, master: MasterLookup | None = None) -> RefData:
    """Read and validate instruments.toml, sessions.toml and holidays.toml; contracts come
    from ``master`` first where given (``MasterIndex.load(settings.stores.instruments_db)``)."""
    try:
        with open(config_dir / "instruments.toml", "rb") as f:
            inst = tomllib.load(f)
        with open(config_dir / "sessions.toml", "rb") as f:
            sess = tomllib.load(f)
        with open(config_dir / "holidays.toml", "rb") as f:
            hol = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RefDataError(f"config: {exc}") from None

    unds: dict[str, Underlying] = {}
    for name, row in inst.get("underlyings", {}).items():
        row = dict(row)
        rules = _expiry_rules(name, row.pop("expiry_rules", []))
        if rules:  # the current rule is the last one; the flat fields may restate it
            for field, got in (
                ("weekly_expiry", rules[-1].weekly),
                ("monthly_expiry", rules[-1].monthly),
            ):
                if row.setdefault(field, got) != got:
                    raise RefDataError(
                        f"instruments.toml [{name}]: {field} = {row[field]!r} disagrees with "
                        f"the last of its expiry_rules ({got!r})"
                    )
        try:
            u = Underlying(name=name, expiry_rules=rules, **row)
        except TypeError as exc:
            raise RefDataError(f"instruments.toml [{name}]: {exc}") from None
        if u.lot_size <= 0 or u.tick_size <= 0 or u.freeze_qty < u.lot_size:
            raise RefDataError(f"instruments.toml [{name}]: lot/tick/freeze values are invalid")
        for wd in (u.weekly_expiry, u.monthly_expiry):
            if wd and wd not in WEEKDAYS:
                raise RefDataError(f"instruments.toml [{name}]: expiry day {wd!r} not in MON..FRI")
        if not u.monthly_expiry and u.fno:
            raise RefDataError(f"instruments.toml [{name}]: monthly_expiry is required")
        unds[name] = u
    stocks, universes = _stocks(config_dir / "stocks.toml", set(unds))
    unds.update(stocks)

    sessions = {
        ex: Session(
            _hhmm(r["pre_open"], f"sessions.toml {ex}.pre_open"),
            _hhmm(r["open"], f"sessions.toml {ex}.open"),
            _hhmm(r["close"], f"sessions.toml {ex}.close"),
            _hhmm(r["mis_squareoff"], f"sessions.toml {ex}.mis_squareoff"),
            r["holidays"],
        )
        for ex, r in sess.get("exchanges", {}).items()
    }
    holidays: dict[str, set[date]] = {}
    for market, years in hol.items():
        if market == "special_sessions":
            continue
        holidays[market] = {date.fromisoformat(d) for ds in years.values() for d in ds}
    special = [
        (
            date.fromisoformat(s["date"]),
            set(s["exchanges"]),
            _hhmm(s["open"], "special open"),
            _hhmm(s["close"], "special close"),
        )
        for s in hol.get("special_sessions", [])
    ]
    overrides: dict[tuple[str, str], dict[str, Any]] = {}
    for key, o in inst.get("overrides", {}).items():
        bad = set(o) - {"lot", "tick", "freeze"}
        try:
            at = InstrumentId.parse(key)
        except ValueError:
            bad = bad or {key}
        if bad:
            raise RefDataError(
                f'instruments.toml [overrides.{key!r}]: want "EX:SYMBOL" with lot, tick, '
                f"freeze (got {sorted(bad)})"
            )
        overrides[(at.exchange, at.symbol)] = o
    ref = RefData(unds, Calendar(sessions, holidays, special), master, overrides)
    ref.universes = universes
    return ref
