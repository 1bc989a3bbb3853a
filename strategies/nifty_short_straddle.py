"""NIFTY weekly short straddle with per-leg SL-L stops and a strategy-level max loss.

At ``entry_time`` it sells the at-the-money CE and PE of the nearest weekly expiry, one
``bracket`` each: as each leg fills, a protective SL-L buy goes out with its trigger
``stop_pct`` above that leg's fill price and its limit ``stop_buffer`` rupees above the
trigger (keep it inside the exchange's price band, or the stop is refused and the engine
closes the leg at market). Every second of market time it checks the straddle's
mark-to-market P&L: at ``-max_loss`` rupees or at ``exit_time`` it cancels the stops and
buys everything back. One straddle per day: after an engine restart, a straddle still
open (positions or working orders given back before ``on_start``) is today's.
"""

from __future__ import annotations

from datetime import datetime, time

from pydantic import Field, model_validator

from mytrading.domain import Product
from mytrading.engine.strategy import BaseStrategy, StrategyParams


class StraddleParams(StrategyParams):
    underlying: str = "NIFTY"
    entry_time: time = time(9, 30)
    exit_time: time = time(15, 10)
    lots: int = Field(1, ge=1)
    stop_pct: float = Field(0.2, gt=0, lt=5)
    stop_buffer: float = Field(1.0, ge=0)
    max_loss: float = Field(3000.0, gt=0)
    product: Product = "MIS"

    @model_validator(mode="after")
    def _entry_before_exit(self) -> StraddleParams:
        if self.entry_time >= self.exit_time:
            raise ValueError("entry_time must be before exit_time")
        return self


class NiftyShortStraddle(BaseStrategy[StraddleParams]):
    name = "nifty_short_straddle"

    def on_start(self) -> None:
        p = self.params
        self.index = self.spot(p.underlying)
        self.subscribe_ticks(*self.index)
        self.traded_on = None  # the date of today's straddle
        self.done = False
        self.base_pnl = 0.0
        self.legs: list[tuple[str, str]] = []
        self.legs_day = self.today()  # the day the legs were chosen on
        self.set_timer("check", 1.0)
        # A restarted engine gives back the positions and working orders (stops included)
        # before this hook: a straddle still open is today's, watched, never sold again.
        held = [
            (v.exchange, v.symbol)
            for v in self.positions()
            if v.quantity and v.symbol.startswith(p.underlying) and v.symbol[-2:] in ("CE", "PE")
        ]
        if held or self.has_open_orders():
            self.traded_on = self.today()
            self.legs = held
            for leg in held:
                self.subscribe_ticks(*leg)
            self.log.info("straddle already open: watching it", legs=[s for _, s in held])

    def on_timer(self, name: str, now: datetime) -> None:
        p = self.params
        if self.traded_on != now.date():
            if p.entry_time <= now.time() < p.exit_time and self.ltp(*self.index) > 0:
                self._enter(p)
            return
        if self.done:
            return
        pnl = self.pnl() - self.base_pnl
        if pnl <= -p.max_loss or now.time() >= p.exit_time:
            why = "max loss" if pnl <= -p.max_loss else "exit time"
            self.log.warning("straddle exit", reason=why, pnl=round(pnl, 2), limit=p.max_loss)
            self.close_all()
            self.done = True

    def _enter(self, p: StraddleParams) -> None:
        """Choose the ATM legs and watch them; sell both once each has a price (a market
        order for an option nobody has quoted yet is refused by the broker)."""
        if not self.legs or self.legs_day != self.today():
            self.legs = [self.option(p.underlying, right, "ATM") for right in ("CE", "PE")]
            self.legs_day = self.today()
            for leg in self.legs:
                self.subscribe_ticks(*leg)
        if any(self.ltp(*leg) <= 0 for leg in self.legs):
            return
        self.base_pnl = self.pnl()  # the max loss is per straddle, not all-time
        for exchange, symbol in self.legs:
            self.bracket(
                exchange,
                symbol,
                "SELL",
                p.lots * self.lot_size(exchange, symbol),
                stop_pct=p.stop_pct,
                stop_buffer=p.stop_buffer,
                product=p.product,
            )
        self.traded_on = self.today()
        self.done = False
        self.log.info("straddle sold", legs=[s for _, s in self.legs], spot=self.ltp(*self.index))
