"""``main.py chain NIFTY``: a live option chain in the terminal, from the bus only.

The view asks the feed for the chain's instruments (an ``Interest`` pushed on the feed's
``pipe.interest``, renewed every few seconds, lapsing 30 s after the view exits), reads
their ticks from the feed's PUB socket, and redraws up to ``--hz`` times a second: per
strike the CE and PE last price, bid/ask, open interest and its change since the view
started, implied volatility and delta, gamma, theta (per day) and vega (per 1 % of vol),
the ATM strike highlighted, and under the table the put-call ratio of open interest and
the max-pain strike. It never calls the broker.

``ChainModel`` holds the numbers and ``render`` draws them, so a test can feed recorded
ticks and read the screen without a terminal.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime

import zmq
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mytrading.domain.refdata import IST, RefData, option_symbol
from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher, Subscriber
from mytrading.messaging.curve import TOOLS, secure_bus
from mytrading.messaging.interest import EVERY_S, entry
from mytrading.options.chain import atm_strike
from mytrading.options.greeks import greeks, iv

# IV and Greeks are worked out on the chain's forward (the ATM strike + its call - its put:
# the carry the market prices in, whatever it is) with no discounting over the days left
# (Black-76 undiscounted, as Indian option analytics commonly read a chain). A fixed rate
# on the spot read a deep call's price, quoted near intrinsic, as below any volatility.
RATE = 0.0


@dataclass
class Side:
    ltp: float = 0.0
    bid: float = 0.0
    ask: float = 0.0
    oi: int = 0
    oi_start: int = -1  # the first open interest seen: the change is from it


@dataclass
class ChainModel:
    underlying: str
    exchange: str  # the options' exchange
    spot_key: tuple[str, str]
    expiry: date
    step: float
    strikes: int
    spot: float = 0.0
    atm: float = 0.0
    rows: dict[tuple[float, str], Side] = field(default_factory=dict)
    by_symbol: dict[str, tuple[float, str]] = field(default_factory=dict)
    ticks: int = 0
    market_ns: int = 0  # the newest tick's exchange time: the market's clock

    @classmethod
    def build(
        cls, refdata: RefData, underlying: str, expiry: date | None, strikes: int, today: date
    ) -> ChainModel:
        u = refdata.underlying(underlying)
        exp = expiry or refdata.calendar.near_option_expiry(u, today)
        return cls(
            underlying, u.fo_exchange, (u.spot_exchange, underlying), exp, u.strike_step, strikes
        )

    def recentre(self, spot: float) -> bool:
        """The strikes around the ATM of ``spot``; True if they changed."""
        atm = atm_strike(spot, self.step)
        if atm == self.atm:
            return False
        self.atm = atm
        keep = {}
        self.by_symbol = {}
        for k in range(-self.strikes, self.strikes + 1):
            strike = atm + k * self.step
            for right in ("CE", "PE"):
                sym = option_symbol(self.underlying, self.expiry, strike, right)
                self.by_symbol[sym] = (strike, right)
                keep[(strike, right)] = self.rows.get((strike, right)) or Side()
        self.rows = keep
        return True

    def wants(self) -> list[str]:
        return [entry(*self.spot_key)] + [entry(self.exchange, s) for s in self.by_symbol]

    def on_tick(self, t: wire.Tick) -> bool:
        """Take a tick; True if the strikes moved (a new set to ask for)."""
        self.ticks += 1
        if t.exch_ns > self.market_ns:
            self.market_ns = t.exch_ns
        if (t.exchange, t.symbol) == self.spot_key:
            self.spot = t.ltp
            return self.recentre(t.ltp)
        key = self.by_symbol.get(t.symbol)
        if key is not None and t.exchange == self.exchange:
            s = self.rows[key]
            s.ltp, s.bid, s.ask, s.oi = t.ltp, t.bid, t.ask, t.oi
            if s.oi_start < 0:
                s.oi_start = t.oi
        return False

    # ---------------------------------------------------------------- figures

    def pcr(self) -> float:
        ce = sum(s.oi for (_, r), s in self.rows.items() if r == "CE")
        pe = sum(s.oi for (_, r), s in self.rows.items() if r == "PE")
        return pe / ce if ce else math.nan

    def max_pain(self) -> float:
        """The strike at which option writers pay the least at expiry (open interest
        weighted intrinsic value of every CE and PE in the chain)."""
        strikes = sorted({k for k, _ in self.rows})
        best, pain_min = math.nan, math.inf
        for x in strikes:
            pain = sum(
                s.oi * (max(0.0, x - k) if r == "CE" else max(0.0, k - x))
                for (k, r), s in self.rows.items()
            )
            if pain < pain_min:
                best, pain_min = x, pain
        return best

    def market_now(self, fallback: datetime) -> datetime:
        """Market time: the newest tick's exchange time. A simulated market runs on its
        own clock, anchored when the stack started, which this view (started later, from
        a shell) does not know; ``fallback`` until the first tick."""
        if not self.market_ns:
            return fallback
        return datetime.fromtimestamp(self.market_ns / 1e9, IST)

    def forward(self) -> float:
        """The underlying the options price: ``K + C - P`` at the ATM strike (put-call
        parity), or the spot until both are quoted."""
        ce, pe = self.rows.get((self.atm, "CE")), self.rows.get((self.atm, "PE"))
        if ce is not None and pe is not None and ce.ltp > 0 and pe.ltp > 0:
            return self.atm + ce.ltp - pe.ltp
        return self.spot

    def years_left(self, now: datetime) -> float:
        end = datetime.combine(self.expiry, datetime.min.time(), tzinfo=IST).replace(
            hour=15, minute=30
        )
        return max((end - now).total_seconds(), 0.0) / (365.0 * 86400)


def _f(x: float, nd: int = 2) -> str:
    return "-" if not x or math.isnan(x) else f"{x:,.{nd}f}"


def _oi(n: int, signed: bool = False) -> str:
    """Open interest the Indian way: lakh (L) and crore (Cr) past 1 lakh."""
    sign = ("+" if n > 0 else "-" if n < 0 else "") if signed else ("-" if n < 0 else "")
    a = abs(n)
    if a >= 10**7:
        return f"{sign}{a / 1e7:.2f}Cr"
    if a >= 10**5:
        return f"{sign}{a / 1e5:.1f}L"
    return f"{sign}{a:,}"


def render(m: ChainModel, now: datetime) -> Group:
    t_left = m.years_left(now)
    fwd = m.forward()
    table = Table(
        "OI chg",
        "OI",
        "IV %",
        "Δ",
        "Γ",
        "Θ",
        "V",
        "bid",
        "ask",
        "CE LTP",
        "STRIKE",
        "PE LTP",
        "bid",
        "ask",
        "Δ",
        "Γ",
        "Θ",
        "V",
        "IV %",
        "OI",
        "OI chg",
        title=f"{m.underlying} {m.expiry:%d %b %Y}  spot {_f(m.spot)}  forward {_f(fwd)}  "
        f"ATM {_f(m.atm, 0)}",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for strike in sorted({k for k, _ in m.rows}):
        cells: dict[str, list[str]] = {}
        for right in ("CE", "PE"):
            s = m.rows[(strike, right)]
            vol = iv(s.ltp, fwd, strike, t_left, RATE, right) if s.ltp and fwd else math.nan
            d, g, th, v, _ = (
                greeks(fwd, strike, t_left, RATE, vol, right)
                if vol == vol and vol > 0  # not NaN
                else (math.nan,) * 5
            )
            chg = s.oi - s.oi_start if s.oi_start >= 0 else 0
            cells[right] = [
                _oi(chg, signed=True) if s.oi_start >= 0 else "-",
                _oi(s.oi) if s.oi else "-",
                _f(vol * 100 if vol == vol else math.nan, 1),
                _f(d),
                _f(g, 4),
                _f(th),
                _f(v),
                _f(s.bid),
                _f(s.ask),
                _f(s.ltp),
            ]
        pe = cells["PE"]
        row = [*cells["CE"], f"{strike:,.0f}", pe[9], pe[7], pe[8], *pe[3:7], pe[2], pe[1], pe[0]]
        style = "bold reverse" if strike == m.atm else None
        if strike == m.atm:
            row[10] = f"{strike:,.0f} ATM"
        table.add_row(*row, style=style)
    foot = Text(
        f"PCR (OI) {_f(m.pcr())}   max pain {_f(m.max_pain(), 0)}   "
        f"{m.ticks:,} ticks   {now:%H:%M:%S} IST   (Ctrl-C quits)"
    )
    return Group(table, foot)


def run(
    settings: object,
    refdata: RefData,
    underlying: str,
    expiry: date | None,
    strikes: int,
    hz: float,
) -> None:
    """The live view until Ctrl-C."""
    from mytrading.domain.clock import build_clock

    s = settings
    clock = build_clock(s, refdata.calendar)
    model = ChainModel.build(refdata, underlying, expiry, strikes, clock.now().date())
    eps = s.endpoints()  # type: ignore[attr-defined]  # Settings (typed loosely here)
    secure_bus(s, TOOLS, lambda *_a, **_k: None)  # type: ignore[arg-type]  # as above
    ctx = zmq.Context()
    ask = Pusher(ctx, eps["pipe.interest"], f"chain-{os.getpid()}", "interest")
    sub = Subscriber(ctx, [eps.pub("feed")], ("md.tick.",))
    asked_at = 0.0
    # the pane's own width: an inherited COLUMNS (rich prefers it) may be another's
    width = os.get_terminal_size().columns if sys.stdout.isatty() else None
    console = Console(width=width)
    try:
        ask.send(wire.Interest(wants=[entry(*model.spot_key)]))
        with Live(
            render(model, model.market_now(clock.now())),
            console=console,
            auto_refresh=False,
            screen=False,
        ) as live:
            next_draw = 0.0
            while True:
                n = 0
                while n < 5000 and sub.sock.poll(int(1000 / hz) if n == 0 else 0):
                    n += 1
                    try:
                        _, msg = sub.recv()
                    except wire.WireError:
                        continue
                    if isinstance(msg, wire.Tick) and model.on_tick(msg):
                        asked_at = 0.0  # new strikes: ask for them now
                now = time.monotonic()
                if model.by_symbol and now - asked_at >= EVERY_S:
                    ask.send(wire.Interest(wants=model.wants()))
                    asked_at = now
                if now >= next_draw:
                    live.update(render(model, model.market_now(clock.now())), refresh=True)
                    next_draw = now + 1.0 / hz
    except KeyboardInterrupt:  # Ctrl-C: the way out of the view
        pass
    finally:
        ask.send(wire.Interest(wants=[]))  # nothing more is wanted by this view
        ask.close()
        sub.close()
        ctx.destroy(linger=500)
