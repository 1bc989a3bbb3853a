"""Margin per order from ``config/margins.toml``, and lot sizing from available margin.

The trade type decides the table row: futures; a short option, alone (``sell_c_p``) or
paired with a short of the other type on the same underlying and expiry (``sell_c_and_p``,
whose figure covers the pair, so the second leg needs only the difference); a long
option costs its premium. Orders that only reduce a position need no margin.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from mytrading.domain.refdata import Instrument
from mytrading.settings import ConfigError

TYPES = ("sell_c_p", "sell_c_and_p", "futures")


class Need(msgspec.Struct, frozen=True, gc=False):
    amount: float  # rupees this order needs
    trade_type: str  # futures, sell_c_p, sell_c_and_p (second leg), buy, reduce
    per_lot: float  # rupees per lot of that trade type (the premium for a buy)


class MarginTable:
    def __init__(
        self,
        groups: dict[str, dict[str, Any]],
        sizing: dict[str, float],
        equity: dict[str, float] | None = None,
        stock_fno: dict[str, float] | None = None,
    ) -> None:
        self.by_underlying: dict[str, dict[str, dict[str, float]]] = {}
        for name, g in groups.items():
            for t in TYPES:
                if t not in g or set(g[t]) != {"expiry", "other"}:
                    raise ConfigError(f"margins.toml [groups.{name}]: {t} needs expiry and other")
            for u in g["underlyings"]:
                self.by_underlying[u] = {t: {k: float(v) for k, v in g[t].items()} for t in TYPES}
        eq = {"cnc": 1.0, "mis": 0.2, **(equity or {})}
        fno = {"futures": 0.2, "short_options": 0.2, **(stock_fno or {})}
        self.equity = {k.upper(): float(v) for k, v in eq.items()}  # product -> share
        self.stock_fno = {k: float(v) for k, v in fno.items()}
        for k, v in [*self.equity.items(), *self.stock_fno.items()]:
            if not 0 < v <= 1:
                raise ConfigError(f"margins.toml: {k} = {v} is not within (0, 1]")
        self.sizing = {k: float(v) for k, v in sizing.items()}
        for k, v in self.sizing.items():
            if not 0 < v <= 1:
                raise ConfigError(f"margins.toml [sizing]: {k} = {v} is not within (0, 1]")

    def per_lot(self, inst: Instrument, trade_type: str, day: date) -> float:
        try:
            row = self.by_underlying[inst.underlying][trade_type]
        except KeyError:
            raise ConfigError(f"margins.toml has no {trade_type} for {inst.underlying}") from None
        return row["expiry" if inst.expiry == day else "other"]

    def need(
        self,
        inst: Instrument,
        action: str,
        quantity: int,
        price: float,
        opens: int,
        paired: bool,
        day: date,
        broker_per_lot: float | None = None,
        product: str = "NRML",
    ) -> Need:
        """Margin for the part of an order that opens or grows a position (``opens``
        units of ``quantity``); ``paired``: a short option whose other type is short too;
        ``broker_per_lot``: the broker's own figure (OpenAlgo ``margin``), preferred to the
        table for futures and a lone short option when risk has a fresh one.

        An equity blocks a share of its value by product (``[equity]``: CNC in full, MIS
        at the intraday leverage); a stock's futures and short options, whose margins the
        per-lot index table cannot hold, a share of the contract's value (``[stock_fno]``)."""
        if opens <= 0:
            return Need(0.0, "reduce", 0.0)
        if inst.kind == "EQ":
            share = self.equity.get(product, 1.0)
            return Need(opens * price * share, f"equity {product}", price * share)
        lots = opens / inst.lot_size
        if inst.underlying not in self.by_underlying and inst.kind != "INDEX":
            return self._stock(inst, action, opens, lots, price, broker_per_lot)
        if inst.kind == "FUT":
            per = broker_per_lot or self.per_lot(inst, "futures", day)
            return Need(lots * per, "futures", per)
        if action == "BUY":
            return Need(opens * price, "buy", price * inst.lot_size)
        single = self.per_lot(inst, "sell_c_p", day)
        if paired:
            extra = self.per_lot(inst, "sell_c_and_p", day) - single
            return Need(lots * extra, "sell_c_and_p", extra)
        single = broker_per_lot or single
        return Need(lots * single, "sell_c_p", single)

    def set_need(
        self,
        legs: Sequence[tuple[Instrument, str, int, float]],
        day: date,
        product: str = "NRML",
    ) -> float:
        """Margin of a set of legs opened together (a builder strategy's straddle, condor,
        ...): each ``(instrument, action, quantity, price)`` as ``need`` counts it when
        the legs before it are held, so a short option whose other type (same underlying
        and expiry) was shorted by an earlier leg counts as paired, as risk counts it for
        the position the set leaves."""
        total, shorts = 0.0, set()
        for inst, action, qty, price in legs:
            other = {"CE": "PE", "PE": "CE"}.get(inst.kind)
            key = (inst.underlying, inst.expiry)
            paired = action == "SELL" and other is not None and (other, key) in shorts
            if action == "SELL":
                shorts.add((inst.kind, key))
            total += self.need(inst, action, qty, price, qty, paired, day, None, product).amount
        return total

    def _stock(
        self,
        inst: Instrument,
        action: str,
        opens: int,
        lots: float,
        price: float,
        broker_per_lot: float | None,
    ) -> Need:
        if inst.kind == "FUT":
            per = broker_per_lot or price * inst.lot_size * self.stock_fno["futures"]
            return Need(lots * per, "futures", per)
        if action == "BUY":
            return Need(opens * price, "buy", price * inst.lot_size)
        per = broker_per_lot or inst.strike * inst.lot_size * self.stock_fno["short_options"]
        return Need(lots * per, "sell_c_p", per)

    def lots_for(self, sizing: str, available: float, per_lot: float) -> int:
        """floor(available x share / margin per lot); 0 if it does not stretch to one."""
        if sizing not in self.sizing:
            raise ValueError(f"sizing must be one of {sorted(self.sizing)}, got {sizing!r}")
        if per_lot <= 0 or available <= 0:
            return 0
        return math.floor(available * self.sizing[sizing] / per_lot)


def load_margins(config_dir: Path) -> MarginTable:
    path = config_dir / "margins.toml"
    try:
        data = tomllib.loads(path.read_text())
        return MarginTable(
            data["groups"], data["sizing"], data.get("equity"), data.get("stock_fno")
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
