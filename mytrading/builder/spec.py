"""A builder strategy's file: multi-leg option strategies without Python.

``strategies/<name>.toml`` declares the strategy ``<name>`` (the file's stem, by the one
naming rule): its legs (CE, PE or FUT; buy or sell; lots; a strike chosen by ATM offset,
ITM/OTM n, a fixed strike, a premium or a delta; an expiry), when it trades (days, entry,
last entry, square-off), its sizing (fixed lots, or a risk profile's share of margin),
its exits (per-leg stop and target, stop to cost, the whole strategy's max loss, max
profit, trailing stop and a Supertrend exit on the underlying), re-entry after a stop and
the accounts it trades on. docs/options.md lists every key.

Parsing is strict, as ``config/strategies.toml`` is: an unknown key, a wrong type, a value
out of range or two ways of choosing one strike is a ``SpecError`` whose message names the
file and the line (``tomllib`` keeps no positions, so ``line_of`` finds the line of a key
path in the text, as a reader would).
"""

from __future__ import annotations

import re
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mytrading.domain.errors import ConfigError
from mytrading.options.chain import OFFSET

ATM_STEPS = re.compile(r"^ATM([+-])(\d{1,2})$")


class SpecError(ConfigError):
    """A builder file that cannot run, with the file and line in its message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Leg(_Strict):
    """One leg. The strike is chosen one way: ``strike`` ("ATM", "ATM+2", "ATM-1", "ITM2",
    "OTM3" or a number, the fixed strike), or one of ``premium_near``, ``premium_above``,
    ``premium_below``, ``delta_near`` (among ATM +- 10 strikes of the leg's expiry)."""

    instrument: Literal["CE", "PE", "FUT"]
    action: Literal["BUY", "SELL"]
    lots: int = Field(1, ge=1, le=50)
    expiry: Literal["weekly", "next_week", "monthly", "next_month"] = "weekly"
    strike: str | float | None = None
    premium_near: float | None = Field(None, gt=0)
    premium_above: float | None = Field(None, gt=0)
    premium_below: float | None = Field(None, gt=0)
    delta_near: float | None = Field(None, gt=0, lt=1)
    stop_pct: float | None = Field(None, gt=0, le=500)
    stop_points: float | None = Field(None, gt=0)
    target_pct: float | None = Field(None, gt=0, le=1000)
    target_points: float | None = Field(None, gt=0)

    @field_validator("strike")
    @classmethod
    def _strike(cls, v: str | float | None) -> str | float | None:
        if v is None or isinstance(v, float | int):
            if isinstance(v, float | int) and v <= 0:
                raise ValueError(f"a fixed strike is a price above 0, got {v}")
            return v
        steps = ATM_STEPS.match(v)
        if v == "ATM" or OFFSET.match(v) or (steps and int(steps.group(2)) <= 50):
            return v
        raise ValueError(
            f"strike is ATM, ATM+n, ATM-n, ITMn, OTMn (n up to 50) or a number, got {v!r}"
        )

    @model_validator(mode="after")
    def _one_way(self) -> Leg:
        ways = [
            n
            for n in ("strike", "premium_near", "premium_above", "premium_below", "delta_near")
            if getattr(self, n) is not None
        ]
        if len(ways) > 1:
            raise ValueError(f"choose the strike one way, not {' and '.join(ways)}")
        if self.instrument == "FUT":
            if ways:
                raise ValueError("a FUT leg has no strike: leave out " + ", ".join(ways))
            if self.expiry not in ("monthly", "next_month"):
                raise ValueError("a FUT leg's expiry is monthly (the near month) or next_month")
        for kind in ("stop", "target"):
            given = [n for n in (f"{kind}_pct", f"{kind}_points") if getattr(self, n) is not None]
            if len(given) > 1:
                raise ValueError(f"give {kind}_pct or {kind}_points, not both")
        # a price can rise without limit but fall only to zero
        falls = "target" if self.action == "SELL" else "stop"
        if (getattr(self, f"{falls}_pct") or 0) >= 100:
            raise ValueError(
                f"{falls}_pct on a {self.action} leg is below 100: the price falls only to 0"
            )
        return self

    @property
    def strike_rule(self) -> dict[str, Any]:
        """The keyword arguments of ``options.select.StrikeRule`` for an option of this
        leg's type (ATM+n is an offset up the ladder: OTMn for a call, ITMn for a put)."""
        for n in ("premium_near", "premium_above", "premium_below", "delta_near"):
            if getattr(self, n) is not None:
                return {n: getattr(self, n)}
        s = self.strike if self.strike is not None else "ATM"
        if isinstance(s, float | int):
            return {"strike": float(s)}
        m = ATM_STEPS.match(s)
        if m:
            up = m.group(1) == "+"
            steps = int(m.group(2))
            if steps == 0:
                return {"offset": "ATM"}
            otm = up == (self.instrument == "CE")
            return {"offset": f"{'OTM' if otm else 'ITM'}{steps}"}
        return {"offset": s}

    @property
    def has_stop(self) -> bool:
        return self.stop_pct is not None or self.stop_points is not None

    def target_price(self, cost: float) -> float | None:
        """The price at which this leg, entered at ``cost``, has reached its target."""
        sign = 1 if self.action == "BUY" else -1  # a long's target is above its cost
        if self.target_pct is not None:
            return cost * (1 + sign * self.target_pct / 100)
        if self.target_points is not None:
            return cost + sign * self.target_points
        return None


class Supertrend(_Strict):
    """Close the strategy when the underlying's Supertrend turns (on a closed bar):
    ``flip``: either way after entry; ``up`` / ``down``: only that way."""

    timeframe: Literal["1m", "3m", "5m", "10m", "15m", "30m", "1h"] = "5m"
    period: int = Field(10, ge=2, le=200)
    multiplier: float = Field(3.0, gt=0, le=20)
    exit_on: Literal["flip", "up", "down"] = "flip"


class Exits(_Strict):
    """The whole strategy's exits, on its P&L since the entry (rupees, before charges;
    risk's own ``max_loss`` for the strategy counts them), and what follows a leg's stop."""

    max_loss: float = Field(0.0, ge=0)
    max_profit: float = Field(0.0, ge=0)
    trail_after: float = Field(0.0, ge=0)  # the trail starts once P&L reaches this
    trail_by: float = Field(0.0, ge=0)  # ... and exits when P&L falls this far from its peak
    stop_to_cost: bool = False
    supertrend: Supertrend | None = None

    @model_validator(mode="after")
    def _trail(self) -> Exits:
        if bool(self.trail_after) != bool(self.trail_by):
            raise ValueError("a trailing stop needs both trail_after and trail_by")
        return self


class Reentry(_Strict):
    """After a leg's stop fills: trade that leg again (its strike chosen afresh) after
    ``delay`` seconds, at most ``count`` times a day, until the last entry time."""

    count: int = Field(0, ge=0, le=10)
    delay: float = Field(60.0, ge=0, le=3600)


class Sizing(_Strict):
    """``fixed``: ``lots`` sets of the legs (each leg trades its own lots times this);
    a risk profile: as many sets as that share of the free margin holds (margins.toml
    [sizing]: conservative 40 %, balanced 65 %, aggressive 80 %), sized by risk."""

    mode: Literal["fixed", "conservative", "balanced", "aggressive"] = "fixed"
    lots: int = Field(1, ge=1, le=50)


class AccountsSpec(_Strict):
    """As a ``[strategies.<name>]`` table of accounts.toml: the lead account and the
    followers with their size (a multiple, or a grade of margins.toml [sizing])."""

    lead: str = "main"
    follow: dict[str, float | str] = Field(default_factory=dict)


class Schedule(_Strict):
    days: Literal["any", "expiry", "non_expiry"] = "any"
    entry: time = time(9, 30)
    last_entry: time | None = None  # no entry or re-entry after it (default: square-off)
    squareoff: time = time(15, 10)

    @model_validator(mode="after")
    def _order(self) -> Schedule:
        last = self.last_entry or self.squareoff
        if not time(9, 15) <= self.entry <= last <= self.squareoff <= time(15, 30):
            raise ValueError(
                "times run 09:15 <= entry <= last_entry <= squareoff <= 15:30 (IST), got "
                f"entry {self.entry}, last_entry {self.last_entry}, squareoff {self.squareoff}"
            )
        return self


class Spec(_Strict):
    underlying: str = Field(min_length=1)
    product: Literal["MIS", "NRML"] = "MIS"
    schedule: Schedule = Field(default_factory=Schedule)
    sizing: Sizing = Field(default_factory=Sizing)
    exits: Exits = Field(default_factory=Exits)
    reentry: Reentry = Field(default_factory=Reentry)
    accounts: AccountsSpec | None = None
    legs: list[Leg] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _fit(self) -> Spec:
        if self.reentry.count and not any(leg.stop_pct or leg.stop_points for leg in self.legs):
            raise ValueError("reentry is after a leg's stop: give a leg stop_pct or stop_points")
        if self.exits.stop_to_cost and not any(
            leg.stop_pct or leg.stop_points for leg in self.legs
        ):
            raise ValueError("stop_to_cost moves the other legs' stops: give legs stops")
        return self


def summary(spec: Spec) -> dict[str, str]:
    """The file in a few words, for a backtest's parameters (report and run record)."""
    legs = []
    for leg in spec.legs:
        way = next(iter(leg.strike_rule.items())) if leg.instrument != "FUT" else None
        how = (
            ""
            if way is None
            else f" {way[1]}"
            if way[0] in ("offset", "strike")
            else f" {way[0]} {way[1]:g}"
        )
        stop = (
            f", stop {leg.stop_pct:g} %"
            if leg.stop_pct
            else f", stop {leg.stop_points:g} pts"
            if leg.stop_points
            else ""
        )
        legs.append(f"{leg.action} {leg.lots} {leg.instrument}{how} {leg.expiry}{stop}")
    e = spec.exits
    exits = [
        f"{k} {getattr(e, k):g}"
        for k in ("max_loss", "max_profit", "trail_after", "trail_by")
        if getattr(e, k)
    ]
    if e.stop_to_cost:
        exits.append("stop to cost")
    if e.supertrend is not None:
        exits.append(
            f"supertrend {e.supertrend.timeframe}/{e.supertrend.period}/{e.supertrend.multiplier:g}"
        )
    sch = spec.schedule
    return {
        "underlying": spec.underlying,
        "legs": "; ".join(legs),
        "schedule": f"{sch.days} {sch.entry:%H:%M}-{sch.squareoff:%H:%M}",
        "sizing": spec.sizing.mode if spec.sizing.mode != "fixed" else f"{spec.sizing.lots} set(s)",
        "exits": ", ".join(exits) or "none",
        "reentry": f"{spec.reentry.count} after {spec.reentry.delay:g} s"
        if spec.reentry.count
        else "none",
    }


def parse(path: Path, text: str | None = None, underlyings: set[str] | None = None) -> Spec:
    """The spec of one builder file, or ``SpecError`` naming the file, the line and what
    is wrong (every problem pydantic finds, one per line)."""
    if text is None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{path}: cannot read it: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not TOML: {exc}") from None
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and "[" in x))
            where = _where(loc)
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key (docs/options.md lists every key)"
            elif e["type"] == "missing":
                msg = "required"
            problems.append(f"{path}:{line_of(text, loc)}: {where}: {msg}")
        raise SpecError("\n".join(problems)) from None
    if underlyings is not None and spec.underlying not in underlyings:
        raise SpecError(
            f"{path}:{line_of(text, ('underlying',))}: underlying {spec.underlying!r} is not "
            f"in config/instruments.toml (known: {', '.join(sorted(underlyings))})"
        )
    return spec


def _where(loc: tuple[Any, ...]) -> str:
    """A key path as a reader counts: ``legs[2].strike`` for the second ``[[legs]]``."""
    out = ""
    for x in loc:
        out += f"[{x + 1}]" if isinstance(x, int) else (f".{x}" if out else str(x))
    return out or "the file"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\" -]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\"-]+)\s*=")


def line_of(text: str, loc: tuple[Any, ...]) -> int:
    """The line (1-based) that best holds the key path ``loc`` (``("legs", 1, "strike")``,
    ``("exits", "max_loss")``): the key's own line, else its table's header, else 1.

    Each line gets the path a reader would give it: a ``[table]`` or ``[[array]]`` header
    (an array counts its tables), then ``key =`` within it; the answer is the line whose
    path is the longest prefix of ``loc``."""
    best, best_len = 1, 0
    section: tuple[Any, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        path: tuple[Any, ...] | None = None
        h = _HEADER.match(line)
        if h:
            names = tuple(p.strip().strip('"') for p in h.group(2).split("."))
            if h.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                section = (*names, counts[names])
            else:
                section = names
            path = section
        else:
            k = _KEY.match(line)
            if k:
                path = (*section, k.group(1).strip('"'))
        if path is None or len(path) > len(loc) or tuple(loc[: len(path)]) != path:
            continue
        if len(path) > best_len:
            best, best_len = n, len(path)
    return best


def check_files(
    directory: Path, underlyings: set[str], only: set[str] | None = None
) -> dict[Path, str]:
    """Every builder file of ``directory`` (or those named in ``only``) that does not
    parse, with its problems; what ``config check`` reports, enabled or not."""
    bad: dict[Path, str] = {}
    for path in sorted(directory.glob("*.toml")):
        if path.name.startswith("_") or (only is not None and path.stem not in only):
            continue
        try:
            parse(path, underlyings=underlyings)
        except SpecError as exc:
            bad[path] = str(exc)
    return bad
