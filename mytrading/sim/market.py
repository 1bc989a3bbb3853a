"""A seeded simulated market: index spot, near futures and a weekly option strip.

Spot follows a geometric random walk in *market* time; futures carry a cost-of-carry
premium; options are priced by Black-Scholes with a mild smile. Each quote has a
bid/ask spread on the tick grid and a volume. The same seed and the same sequence of
market instants give the same prices, so tests can rely on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np

from mytrading.options.greeks import price as bs_price
from mytrading.refdata import IST, Instrument, RefData, round_to_tick
from mytrading.universe import quoted, universe
from mytrading.wire import Bar, Tick

RATE = 0.065
SECONDS_PER_YEAR = 365.0 * 24 * 3600
TRADING_SECONDS_PER_YEAR = 252 * 6.25 * 3600  # the random walk's clock: trading time only


@dataclass
class SimInstrument:
    inst: Instrument
    spot_key: str  # underlying name
    volume: int = 0
    last: float = 0.0
    oi: int = -1  # open interest of a future or option (-1: not set yet)


def _years_to_expiry(expiry: date, now: datetime) -> float:
    exp = datetime.combine(expiry, time(15, 30), tzinfo=IST)
    return max((exp - now).total_seconds(), 0.0) / SECONDS_PER_YEAR


def configured_market(settings: Any, refdata: RefData, day: date) -> SimMarket:
    """The market the settings ask for (``MT_SIM_UNDERLYINGS``, ``MT_SIM_STOCKS``, strikes,
    seed): what the simulator server and the in-process venue both quote."""
    return SimMarket(
        refdata,
        quoted(refdata, settings.sim_underlyings, settings.sim_stocks),
        day,
        settings.sim_strikes,
        settings.sim_seed,
        settings.sim_stock_strikes,
    )


class SimMarket:
    def __init__(
        self,
        refdata: RefData,
        underlyings: list[str],
        trading_day: date,
        strikes: int,
        seed: int,
        stock_strikes: int = -1,
    ) -> None:
        self.refdata = refdata
        self.rng = np.random.default_rng(seed)
        self.oi_rng = np.random.default_rng(seed + 1)  # its own: prices stay as they were
        self.spot: dict[str, float] = {}
        self.instruments: list[SimInstrument] = []
        self._last_ns: int | None = None
        for name in underlyings:
            self.spot[name] = refdata.underlying(name).sim_spot
        # A stock moves inside its daily price band (2/5/10/20 % of the day's reference
        # price: here its level at the start), as the exchange's circuit limits hold it.
        self.bands: dict[str, tuple[float, float]] = {}
        for name in underlyings:
            u = refdata.underlying(name)
            if u.kind == "STOCK" and u.band_pct:
                ref, b = self.spot[name], u.band_pct / 100.0
                self.bands[name] = (ref * (1 - b), ref * (1 + b))
        for inst in universe(
            refdata, underlyings, trading_day, strikes, self.spot.__getitem__, stock_strikes
        ):
            self._add(inst, inst.underlying)

    def _add(self, inst: Instrument, und: str) -> None:
        self.instruments.append(SimInstrument(inst, und))

    def step(self, now_ns: int) -> list[Tick]:
        """Advance the walk to ``now_ns`` (market time) and quote every instrument."""
        if self._last_ns is not None and now_ns > self._last_ns:
            dt = (now_ns - self._last_ns) / 1e9 / TRADING_SECONDS_PER_YEAR
            for name in self.spot:
                vol = self.refdata.underlying(name).sim_vol
                z = self.rng.standard_normal()
                self.spot[name] *= math.exp(-0.5 * vol * vol * dt + vol * math.sqrt(dt) * z)
                band = self.bands.get(name)
                if band is not None:
                    self.spot[name] = min(max(self.spot[name], band[0]), band[1])
        self._last_ns = now_ns
        now = datetime.fromtimestamp(now_ns / 1e9, IST)
        return [self._quote(si, now, now_ns) for si in self.instruments]

    def fair_value(self, si: SimInstrument, now: datetime) -> float:
        inst = si.inst
        spot = self.spot[si.spot_key]
        if inst.kind in ("INDEX", "EQ"):
            return spot
        t = _years_to_expiry(inst.expiry, now)  # type: ignore[arg-type]
        if inst.kind == "FUT":
            return self._fair_at(si, spot, now)
        u = self.refdata.underlying(si.spot_key)
        moneyness = math.log(inst.strike / spot)
        iv = u.sim_vol * (1.0 + 2.0 * moneyness * moneyness * 100)  # a mild smile
        return bs_price(spot, inst.strike, t, RATE, iv, inst.kind)

    def _quote(self, si: SimInstrument, now: datetime, now_ns: int) -> Tick:
        inst = si.inst
        tick = inst.tick_size
        ltp = max(round_to_tick(self.fair_value(si, now), tick), tick)
        if inst.kind == "INDEX":
            bid = ask = ltp
            bq = aq = 0
        else:
            half = max(tick, round_to_tick(ltp * 0.0001, tick))
            bid = max(round_to_tick(ltp - half, tick), tick)
            ask = round_to_tick(ltp + half, tick)
            size = inst.lot_size if inst.kind != "EQ" else 100  # an equity: round lots of 100
            lots = int(self.rng.integers(1, 40))
            bq, aq = lots * size, int(self.rng.integers(1, 40)) * size
            si.volume += int(self.rng.integers(0, 20)) * size
        oi = self._open_interest(si) if inst.kind in ("FUT", "CE", "PE") else 0
        si.last = ltp
        return Tick(
            exchange=inst.exchange,
            symbol=inst.symbol,
            ltp=ltp,
            bid=bid,
            ask=ask,
            bid_qty=bq,
            ask_qty=aq,
            volume=si.volume,
            oi=oi,
            exch_ns=now_ns,
        )

    def _open_interest(self, si: SimInstrument) -> int:
        """Open interest in whole lots: an option's piles up out of the money (calls above
        the index, puts below, as writers sell them), a future's is large; then it drifts
        a few lots a quote. Enough for a chain's PCR and max pain to mean something."""
        inst = si.inst
        if si.oi < 0:
            lots = 60_000.0
            if inst.kind in ("CE", "PE"):
                u = self.refdata.underlying(si.spot_key)
                steps = (inst.strike - self.spot[si.spot_key]) / u.strike_step
                otm = steps if inst.kind == "CE" else -steps
                lots = 30_000.0 * math.exp(-((otm - 3.0) ** 2) / 18.0) + 500.0
            si.oi = int(lots * float(self.oi_rng.uniform(0.8, 1.2))) * inst.lot_size
        else:
            drift = int(self.oi_rng.integers(-3, 4)) * inst.lot_size
            si.oi = max(0, si.oi + drift)
        return si.oi

    def past_bars(self, now_ns: int, sessions: int, seed: int) -> list[Bar]:
        """1-minute bars of every index and future for the ``sessions`` trading days before
        ``now_ns`` plus today's session up to now (the minute in progress included: the
        history store merges it with the live bar of the same minute), from a random walk
        (its own seed: the live walk is unchanged) that ends at the current levels. The simulator
        serves them from ``history``, so strategies warm up in the demo as they would live.
        Options are left out: their past prices would need the past strip."""
        cal = self.refdata.calendar
        today = datetime.fromtimestamp(now_ns / 1e9, IST).date()
        minutes: list[int] = []
        d = today
        days: list[date] = []
        while len(days) <= sessions:
            d = cal.last_trading_day("NSE", d)
            days.append(d)
            d = date.fromordinal(d.toordinal() - 1)
        for day in reversed(days):
            hours = cal.hours("NSE", day)
            if hours is None:
                continue
            t0 = int(datetime.combine(day, hours[0], tzinfo=IST).timestamp())
            t1 = int(datetime.combine(day, hours[1], tzinfo=IST).timestamp())
            minutes += [t * 1_000_000_000 for t in range(t0, t1, 60) if t * 1_000_000_000 < now_ns]
        if not minutes:
            return []
        rng = np.random.default_rng(seed)
        sub = 4  # price points per minute after the open
        dt = 60.0 / sub / TRADING_SECONDS_PER_YEAR
        paths: dict[str, np.ndarray] = {}
        for name, level in self.spot.items():
            vol = self.refdata.underlying(name).sim_vol
            z = rng.standard_normal(len(minutes) * sub)
            logp = np.concatenate(([0.0], np.cumsum(-0.5 * vol * vol * dt + vol * np.sqrt(dt) * z)))
            paths[name] = level * np.exp(logp - logp[-1])  # ends at today's level
        out: list[Bar] = []
        for si in self.instruments:
            if si.inst.kind not in ("INDEX", "EQ", "FUT"):
                continue
            path = paths[si.spot_key]
            tick = si.inst.tick_size
            for i, start_ns in enumerate(minutes):
                when = datetime.fromtimestamp(start_ns / 1e9, IST)
                pts = [self._fair_at(si, float(path[i * sub + k]), when) for k in range(sub + 1)]
                out.append(
                    Bar(
                        exchange=si.inst.exchange,
                        symbol=si.inst.symbol,
                        tf="1m",
                        start_ns=start_ns,
                        open=round_to_tick(pts[0], tick),
                        high=round_to_tick(max(pts), tick),
                        low=round_to_tick(min(pts), tick),
                        close=round_to_tick(pts[-1], tick),
                        volume=0
                        if si.inst.kind == "INDEX"
                        else int(rng.integers(20, 400)) * max(si.inst.lot_size, 100),
                    )
                )
        return out

    def _fair_at(self, si: SimInstrument, spot: float, when: datetime) -> float:
        if si.inst.kind in ("INDEX", "EQ"):
            return spot
        return spot * (1.0 + RATE * _years_to_expiry(si.inst.expiry, when))  # type: ignore[arg-type]
