"""Risk limits per strategy and for the stack, from ``config/risk.toml``.

Every strategy gets ``[defaults]``, with its own ``[strategies.<name>]`` keys on top;
``MT_RISK_*`` settings override the defaults they name. The models forbid unknown keys,
so a typo in the file is a configuration error (exit 2), not a limit silently missing.
"""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mytrading.domain.bands import PriceBand
from mytrading.domain.errors import problems
from mytrading.domain.ids import Book
from mytrading.domain.names import bad_name
from mytrading.settings import ConfigError, Settings


def _window(v: Any) -> tuple[time, time]:
    if isinstance(v, tuple):
        return v
    try:
        a, b = str(v).split("-")
        start, end = time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
    except ValueError:
        raise ValueError(f"window must look like 09:15-15:10, got {v!r}") from None
    if start >= end:
        raise ValueError(f"window {v!r} ends before it starts")
    return start, end


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_order_lots: int = Field(10, ge=1)  # per order sent: bigger intents are split
    max_intent_lots: int = Field(50, ge=1)  # per intent: bigger ones are refused
    max_order_notional: float = Field(5_000_000.0, gt=0)
    max_position_lots: int = Field(20, ge=1)
    # Equities have no lots: lot caps leave them out; this caps a (strategy, stock)
    # position's value (the order's value is max_order_notional's)
    max_equity_position_value: float = Field(2_000_000.0, gt=0)
    max_strategy_lots: int = Field(40, ge=1)
    max_open_positions: int = Field(6, ge=1)
    max_orders_per_sec: int = Field(5, ge=1)
    max_orders_per_min: int = Field(60, ge=1)
    entry_window: tuple[time, time] = (time(9, 15), time(15, 10))
    exit_window: tuple[time, time] = (time(9, 15), time(15, 30))
    price_band_pct: float = Field(10.0, gt=0, le=100)
    option_price_band_pct: float = Field(40.0, gt=0, le=100)
    # the band is never narrower than this many ticks either side: a percentage of a
    # 0.05 option leaves no room for a protective stop
    price_band_min_ticks: int = Field(40, ge=0, le=10_000)
    any_hour: bool = False  # ignore sessions, holidays and windows (tests and demos)
    max_loss: float = Field(0.0, ge=0)
    max_profit: float = Field(0.0, ge=0)
    trailing_type: Literal["off", "pct", "points", "amount"] = "off"
    trailing_value: float = Field(0.0, ge=0)
    trailing_activation: float = Field(0.0, ge=0)
    leg_stop_pct: float = Field(0.0, ge=0)  # close a leg this % against its average price
    leg_target_pct: float = Field(0.0, ge=0)  # ... or this % in its favour
    supertrend_exit: bool = False  # close a long on a breakdown, a short on a breakout
    supertrend_tf: str = "3m"  # ... of Supertrend on closed bars of this timeframe
    supertrend_period: int = Field(10, ge=1)
    supertrend_multiplier: float = Field(3.0, gt=0)
    # Greeks per underlying (0 = off): a strategy's net delta in units of the underlying
    # and its vega in rupees per volatility point, each as an absolute cap; an order that
    # would take either past its cap (and further from zero) is refused, and a book the
    # market takes past one is set REDUCING: only orders that shrink it pass
    # (options/exposure.py works them out)
    max_net_delta: float = Field(0.0, ge=0)
    max_vega: float = Field(0.0, ge=0)
    # on a contract's expiry day, close its positions at this time (IST); "" holds them
    # to the exchange's settlement (docs/options.md)
    expiry_close: time | None = time(15, 20)
    # orders unknown at the broker (their reply lost) that halt the strategy until each is
    # resolved, in a day; one more keeps it halted for a person (risk/state.py, Hold)
    max_unknown_halts: int = Field(3, ge=0)
    # an intent decided longer ago than this (market seconds) is refused as stale: a
    # risk or a pipe held up must not send a decision the market has moved past (0: off)
    max_intent_age_s: float = Field(2.0, ge=0, le=3600)

    def band(self) -> PriceBand:
        """The price band these limits set (``domain/bands.py``)."""
        return PriceBand(self.price_band_pct, self.option_price_band_pct, self.price_band_min_ticks)

    @field_validator("expiry_close", mode="before")
    @classmethod
    def _expiry_close(cls, v: Any) -> time | None:
        if v is None or isinstance(v, time):
            return v
        if str(v).strip() in ("", "off"):
            return None
        try:
            return time.fromisoformat(str(v).strip())
        except ValueError:
            raise ValueError(
                f'expiry_close must look like 15:20 (or "" to hold), got {v!r}'
            ) from None

    @field_validator("supertrend_tf")
    @classmethod
    def _tf(cls, v: str) -> str:
        from mytrading.domain.bars import DAILY, TIMEFRAMES

        if v not in TIMEFRAMES and v != DAILY:
            raise ValueError(f"timeframe must be one of {[*TIMEFRAMES, DAILY]}")
        return v

    _parse_windows = field_validator("entry_window", "exit_window", mode="before")(
        classmethod(lambda cls, v: _window(v))
    )


class StackLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_loss_limit: float = Field(50_000.0, ge=0)
    max_drawdown: float = Field(75_000.0, ge=0)


class LimitBook:
    """Limits by strategy name."""

    def __init__(self, defaults: Limits, per: dict[str, Limits], stack: StackLimits) -> None:
        self.defaults = defaults
        self.per = per
        self.stack = stack

    def of(self, book: str) -> Limits:
        """A strategy's limits; a follower book (``strategy@account``) has its own table
        if the file gives one, else its strategy's: a follower obeys the lead's caps."""
        got = self.per.get(book)
        if got is None and "@" in book:
            got = self.per.get(Book.parse(book).strategy)
        return got or self.defaults

    def greek_caps(self) -> bool:
        """A net delta or vega cap on any book (the Greeks' numba code is then needed)."""
        return any(lim.max_net_delta or lim.max_vega for lim in (self.defaults, *self.per.values()))

    def as_dict(self) -> dict[str, Any]:
        """The limits for people (risk's heartbeat, each second): made once, the limits
        are frozen."""
        got = self.__dict__.get("_shown")
        if got is None:
            got = self.__dict__["_shown"] = self._as_dict()
        return got

    def _as_dict(self) -> dict[str, Any]:
        def show(lim: Limits) -> dict[str, Any]:
            d = lim.model_dump()
            for w in ("entry_window", "exit_window"):
                d[w] = "-".join(t.strftime("%H:%M") for t in d[w])
            d["expiry_close"] = d["expiry_close"].strftime("%H:%M") if d["expiry_close"] else ""
            return d

        defaults = show(self.defaults)
        return {
            "defaults": defaults,
            "strategies": {
                n: {k: v for k, v in show(lim).items() if v != defaults[k]}
                for n, lim in self.per.items()
            },
            "stack": self.stack.model_dump(),
        }


def load_limits(path: Path, overrides: dict[str, Any]) -> LimitBook:
    """Read the file; ``overrides`` (from MT_RISK_*) replace keys of [defaults]."""
    try:
        data = tomllib.loads(path.read_text()) if path.exists() else {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(data) - {"defaults", "stack", "strategies"}
    if unknown:
        raise ConfigError(f"{path}: unknown tables {sorted(unknown)}")
    where = "[defaults]"
    try:
        base = {**data.get("defaults", {}), **overrides}
        defaults = Limits(**base)
        per = {}
        for name, table in data.get("strategies", {}).items():
            where = f"[strategies.{name}]"
            book = Book.parse(name)  # a follower book: strategy@account
            strategy, account = book.strategy, book.account
            why = bad_name(strategy) or (bad_name(account) if account else "")
            if why:
                raise ConfigError(f"{path} [strategies]: {why}")
            per[name] = Limits(**{**base, **table})
        where = "[stack]"
        stack = StackLimits(**data.get("stack", {}))
    except ValidationError as exc:
        raise ConfigError(f"{path} {where}: {problems(exc)}") from None
    return LimitBook(defaults, per, stack)


def env_overrides(s: Settings) -> dict[str, Any]:
    """The ``MT_RISK_*`` limits given (environment or ``.env``): each replaces its key of
    ``[defaults]``, live and in a backtest alike."""
    return s.risk.overrides()


def limits_for(s: Settings) -> LimitBook:
    """``config/risk.toml`` with the ``MT_RISK_*`` overrides (``refuse_any_hour`` in live)."""
    book = load_limits(s.config_dir / "risk.toml", env_overrides(s))
    refuse_any_hour(s, book)
    return book


def refuse_any_hour(s: Settings, book: LimitBook) -> None:
    """Live refuses ``any_hour`` from the file as it refuses ``MT_RISK_ANY_HOUR``: orders
    outside the sessions are for tests and demos."""
    if s.mode == "live":
        lax = [n for n, lim in [("defaults", book.defaults), *book.per.items()] if lim.any_hour]
        if lax:
            raise ConfigError(
                f"{s.config_dir / 'risk.toml'}: any_hour = true in {lax}: live trades only "
                "in session"
            )
