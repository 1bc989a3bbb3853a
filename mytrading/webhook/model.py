"""A webhook strategy and its symbol mappings, validated as OpenAlgo's strategy module
validates them (docs/openalgo.md §6), and stricter where it is loose.

Times are IST wall-clock times: entries are taken between ``start`` and ``end``, exits
until ``squareoff``; an intraday strategy is squared off by the stack at ``squareoff``.
``start >= 09:15``, ``end <= 15:30``, ``squareoff <= 15:30`` and ``start < end <= squareoff``.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mytrading.domain.names import bad_name

Mode = Literal["LONG", "SHORT", "BOTH"]
Product = Literal["MIS", "NRML", "CNC"]
OPEN, CLOSE = time(9, 15), time(15, 30)


class StrategyFields(BaseModel):
    """What a user sets; the store adds the id, the webhook id's hash and timestamps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    enabled: bool = True
    intraday: bool = True
    mode: Mode = "LONG"
    start: time = time(9, 15)
    end: time = time(15, 0)
    squareoff: time = time(15, 15)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        why = bad_name(v)
        if why:
            raise ValueError(f"{why}: it names the strategy in risk, status and P&L")
        return v

    @model_validator(mode="after")
    def _times(self) -> StrategyFields:
        if self.start < OPEN:
            raise ValueError(f"start {self.start:%H:%M} is before the market opens (09:15)")
        if self.end > CLOSE or self.squareoff > CLOSE:
            raise ValueError("end and square-off must be at or before 15:30")
        if not self.start < self.end <= self.squareoff:
            raise ValueError(
                f"need start < end <= square-off, got {self.start:%H:%M} / "
                f"{self.end:%H:%M} / {self.squareoff:%H:%M}"
            )
        return self


class SymbolMap(BaseModel):
    """An alert's symbol (``external``, as TradingView or ChartInk sends it) to the
    contract traded: OpenAlgo exchange and symbol, size in lots, product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external: str = Field(min_length=1, max_length=60)
    exchange: str
    symbol: str
    lots: int = Field(1, ge=1, le=1000)
    product: Product = "MIS"

    @field_validator("external")
    @classmethod
    def _external(cls, v: str) -> str:
        return v.strip().upper()
