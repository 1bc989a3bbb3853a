"""Risk in a backtest: the live risk daemon's core (``risk/core.py``) on the backtest's
clock instead of the bus.

This shell gives the core its ports: orders go to the backtest's queue for the simulated
broker, events to the results, the broker's position book is the simulated broker's.
Market time is both the market clock and the "wall" clock, so rate limits count orders
per second of market time. The post-trade pass runs after every bar step (live: every
second). The available margin is the capital plus realized P&L less charges and the
margin the open positions hold (``margins.toml``), which is what a broker's ``funds``
would report; it is given to the core before every intent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol

import structlog

from mytrading.domain.accounts import MAIN, Accounts
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.config import RiskConfig
from mytrading.risk.core import RiskCore
from mytrading.risk.monitor import Key
from mytrading.risk.state import TradingStates

NS = 1_000_000_000
DAY_NS = 86_400 * NS
IST_NS = 19_800 * NS  # India's offset from UTC: the day number of an IST date
log = structlog.get_logger("backtest")


class BrokerBooks(Protocol):
    """What risk reads of the backtest's broker: its positions and its count of trades
    (``sim/matching.SimBroker``; a test's own broker too)."""

    @property
    def ledger(self) -> Ledger[Key]: ...

    @property
    def trades(self) -> int: ...


class BacktestRisk:
    def __init__(
        self,
        refdata: RefData,
        config: RiskConfig,
        capital: float,
        broker: BrokerBooks,
        now_ns: Callable[[], int],
        now: Callable[[], datetime],
        send: Callable[[wire.Order], None],
        event: Callable[[wire.RiskEvent], None],
    ) -> None:
        self.refdata = refdata
        self.capital = capital
        self.broker = broker
        self._now_ns = now_ns
        self._now = now
        self._send_order = send
        self._event = event
        self.margins = config.margins
        self.core = RiskCore(
            refdata,
            config.limits,
            self.margins,
            config.charges,
            Accounts(by_name={}),
            self,
            now,
            wall_ns=now_ns,
            monotonic=lambda: now_ns() / NS,
            run_id="bt",
            market_ns=now_ns,
        )
        self.book = self.core.book
        self.post = self.core.post
        self.limits = self.core.limits
        # timeframes the post-trade Supertrend exits read (fed through ``on_bar``)
        self.bar_tfs = {lim.supertrend_tf for lim in self.post.st_limits}
        self._funds_key: tuple[int, int] | None = None  # (broker's trades, IST day number)
        self._funds = 0.0
        self.charges = 0.0
        # called once per bar: straight to the core, without a call of this shell's between
        self.mark: Callable[[tuple[str, str], float], None] = self.core.mark
        self.step: Callable[[], None] = functools.partial(self.core.step, True)

    # ------------------------------------------------------- the core's ports

    def send(self, order: wire.Order) -> bool:
        self._send_order(order)
        return True

    def emit(self, ev: wire.RiskEvent) -> None:
        self._event(ev)

    def save_states(self, states: TradingStates, reason: str) -> None:
        """A backtest keeps its states in memory: nothing survives the run."""

    def broker_net(self, key: Key, account: str) -> int | None:
        p = self.broker.ledger.positions.get(key)
        return p.qty if p else 0

    def want_funds(self, account: str) -> None:
        """Funds are given before every intent (``on_intent``)."""

    def room(self) -> int:
        return 1 << 30  # the backtest's queue has no bound

    def error(self, what: str, **ctx: object) -> None:
        log.error(what, **ctx)

    # ----------------------------------------------------------------- inputs

    def on_intent(self, msg: wire.Intent) -> None:
        self.core.on_funds(MAIN, self._available(), self._now_ns())
        self.core.on_intent(msg)

    def on_update(self, u: wire.OrderUpdate) -> None:
        self.core.on_update(u)

    def on_fill(self, f: wire.Fill) -> None:
        self.charges += self.core.on_fill(f)

    def on_bar(self, bar: wire.Bar) -> None:
        """A closed bar of a timeframe a Supertrend exit reads."""
        self.core.on_bar(bar)

    def on_tick(self, tick: wire.Tick) -> None:
        self.core.on_tick(tick)

    @property
    def approved(self) -> int:
        return self.core.counts.approved

    @property
    def rejected(self) -> dict[str, int]:
        return dict(self.core.counts.rejected)

    @property
    def triggers(self) -> dict[str, int]:
        return dict(self.core.counts.triggers)

    # ------------------------------------------------------------------ funds

    def _available(self) -> float:
        """Capital + realized - charges - margin the open positions hold; it changes only
        with a fill or a new day (expiry-day margins), so it is worked out once for each
        (the day by its number: no datetime per intent)."""
        key = (self.broker.trades, (self._now_ns() + IST_NS) // DAY_NS)
        if key == self._funds_key:
            return self._funds
        self._funds_key = key
        self._funds = self._work_out_funds(self._now().date())
        return self._funds

    def _work_out_funds(self, day: date) -> float:
        cash = self.capital
        held = 0.0
        for (ex, sym, prod), p in self.broker.ledger.positions.items():
            cash += p.realized
            if p.qty:
                inst = self.refdata.instrument(ex, sym)
                action = "BUY" if p.qty > 0 else "SELL"
                held += self.margins.need(
                    inst, action, abs(p.qty), p.avg, abs(p.qty), False, day, product=prod
                ).amount
        charges = self.charges  # every fill's, since the start (risk's books reset daily)
        return cash - charges - held
