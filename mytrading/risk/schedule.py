"""A strategy's trading day, by itself: which days it trades and between which times.

``config/strategies.toml`` may give a strategy a schedule::

    [nifty_short_straddle.schedule]
    days = "expiry"          # "all" trading days, "expiry", "non_expiry", or ["mon", "thu"]
    start = "09:20"          # market time (IST)
    stop = "15:10"

Risk, the keeper of trading states, follows it on every step, so a new day is armed
whether or not anyone is looking (no job waits for a page to be opened): at each change
of a strategy's phase (a day it does not trade, before its start, during, after its stop)
it **halts** the strategy outside its hours (entries refused, exits and protective
orders pass) and **arms** it at its start, lifting only a halt that is the schedule's own
(an operator's pause, a limit or the kill switch stays). Because it acts at the changes
only, an operator may resume a strategy out of hours by hand and it stays so until the
next change; a restart of risk applies the phase it finds.

Trading days are the exchange calendar's (``config/holidays.toml``: weekends and
holidays skipped, a special session such as Muhurat trading counted); expiry days are
those of the strategy's underlying's nearest option expiry (its ``underlying``
parameter, or ``underlying`` in the schedule).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mytrading.domain.errors import problems
from mytrading.domain.refdata import RefData, RefDataError
from mytrading.domain.trading_states import SCHEDULE
from mytrading.settings import ConfigError, Settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
BY = SCHEDULE  # who the states it sets name
Phase = Literal["off", "before", "during", "after"]


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: Literal["all", "expiry", "non_expiry"] | list[Literal[WEEKDAYS]] = "all"  # type: ignore[valid-type]  # the five names
    start: str = Field("09:15", pattern=HHMM)
    stop: str = Field("15:30", pattern=HHMM)
    underlying: str = ""  # whose expiries (default: the strategy's ``underlying``)
    exchange: str = "NSE"  # whose trading days

    @model_validator(mode="after")
    def _times(self) -> Schedule:
        if self.start >= self.stop:
            raise ValueError(f"start {self.start} must be before stop {self.stop}")
        if isinstance(self.days, list) and not self.days:
            raise ValueError("days: an empty list (leave the schedule out to trade every day)")
        return self

    def describe(self) -> str:
        days = ", ".join(self.days) if isinstance(self.days, list) else self.days
        days = {"all": "every trading day", "non_expiry": "non-expiry days"}.get(days, days)
        if days == "expiry":
            days = f"{self.underlying} expiry days"
        return f"{days} {self.start}-{self.stop}"


@dataclass(frozen=True)
class DayPlan:
    """One strategy's plan for one day."""

    trades: bool
    start: time
    stop: time
    why: str  # why it does not trade today ("" when it does)


class Scheduler:
    def __init__(self, schedules: dict[str, Schedule], refdata: RefData) -> None:
        self.schedules = schedules
        self.refdata = refdata
        self._plans: dict[tuple[str, date], DayPlan] = {}
        self.phases: dict[str, Phase] = {}  # the last phase acted on, per strategy

    def plan(self, name: str, day: date) -> DayPlan:
        got = self._plans.get((name, day))
        if got is None:
            if len(self._plans) > 1000:
                self._plans.clear()
            got = self._plans[(name, day)] = self._make(self.schedules[name], day)
        return got

    def _make(self, s: Schedule, day: date) -> DayPlan:
        start, stop = time.fromisoformat(s.start), time.fromisoformat(s.stop)
        cal = self.refdata.calendar
        if cal.hours(s.exchange, day) is None:  # a special session (Muhurat) counts
            return DayPlan(False, start, stop, f"{day:%a %d %b} is not a trading day")
        if isinstance(s.days, list):
            name = WEEKDAYS[day.weekday()]
            ok = name in s.days
            return DayPlan(ok, start, stop, "" if ok else f"{day:%a} is not one of its days")
        if s.days == "all":
            return DayPlan(True, start, stop, "")
        u = self.refdata.underlying(s.underlying)
        expiry = cal.near_option_expiry(u, day) == day
        if expiry == (s.days == "expiry"):
            return DayPlan(True, start, stop, "")
        why = f"{u.name} expiry day" if expiry else f"not a {u.name} expiry day"
        return DayPlan(False, start, stop, f"{why}; it trades on {s.describe()}")

    def phase(self, name: str, now: datetime) -> Phase:
        p = self.plan(name, now.date())
        if not p.trades:
            return "off"
        t = now.time()
        return "before" if t < p.start else "during" if t < p.stop else "after"

    def changes(self, now: datetime) -> list[tuple[str, Phase, DayPlan]]:
        """The strategies whose phase is not the one last acted on (all, the first time)."""
        out = []
        for name in self.schedules:
            ph = self.phase(name, now)
            if self.phases.get(name) != ph:
                self.phases[name] = ph
                out.append((name, ph, self.plan(name, now.date())))
        return out

    def reason(self, name: str, phase: Phase, plan: DayPlan) -> str:
        s = self.schedules[name]
        if phase == "off":
            return f"schedule: not today ({plan.why})"
        if phase == "before":
            return f"schedule: before its start {s.start} ({s.describe()})"
        if phase == "after":
            return f"schedule: after its stop {s.stop} ({s.describe()})"
        return f"schedule: armed at {s.start} ({s.describe()})"

    def today(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Today's plan per strategy, for the heartbeat (and so status, the bot, the API
        and the page)."""
        out = {}
        for name, s in sorted(self.schedules.items()):
            p = self.plan(name, now.date())
            out[name] = {
                "schedule": s.describe(),
                "trades_today": p.trades,
                "start": s.start,
                "stop": s.stop,
                "why": p.why,
                "phase": self.phase(name, now),
            }
        return out


def load_schedules(
    path: Path, names: list[str], refdata: RefData, params: dict[str, dict[str, Any]]
) -> dict[str, Schedule]:
    """The schedules of the strategies ``names`` from ``config/strategies.toml`` (a
    strategy without one trades whenever risk allows); ``params`` gives each strategy's
    parameters (its ``underlying`` for expiry days). A bad one is a ``ConfigError``
    naming the strategy and the field."""
    if not path.exists():
        return {}
    try:
        tables = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    out = {}
    for name in names:
        raw = (tables.get(name) or {}).get("schedule")
        if raw is None:
            continue
        where = f"{path.name} [{name}.schedule]"
        try:
            s = Schedule(**raw)
        except (ValidationError, TypeError) as exc:  # TypeError: not a table
            why = problems(exc, "schedule") if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"{where}: {why}") from None
        if s.days in ("expiry", "non_expiry"):
            u = s.underlying or str(params.get(name, {}).get("underlying") or "")
            if not u:
                raise ConfigError(f"{where}: expiry days need an underlying (none in its params)")
            try:
                refdata.underlying(u)
            except RefDataError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            s = s.model_copy(update={"underlying": u})
        try:
            refdata.calendar.session(s.exchange)
        except RefDataError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        out[name] = s
    return out


def schedules_of(settings: Settings, refdata: RefData) -> dict[str, Schedule]:
    """The enabled strategies' schedules, as the configuration now says."""
    names = settings.enabled_strategies()
    params = {n: settings.params_for(n) for n in names}
    return load_schedules(settings.config_dir / "strategies.toml", names, refdata, params)
