"""A seeded simulated market: index spot, futures, and the option market an exchange lists.

Spot follows a geometric random walk in *market* time whose volatility is the index's
implied-volatility level (``sim/surface.py``, India VIX's role: mean-reverting, rising as
the index falls, jumping on a large move) times an intraday factor (high after the open
and into the close); overnight counts as ``OVERNIGHT_S`` of trading. Futures carry a
cost-of-carry premium. Options: every expiry and strike the exchange lists
(``sim/listing.py``, a ladder that follows the index as it moves), priced on the
volatility surface. Each quote has a bid/ask spread on the tick grid and a volume.

Only what someone watches is quoted (``watch``): the index, stocks and futures always,
options when subscribed (by default the strip ``universe()`` names, which is what the
stack's feed subscribes to), so thousands of listed contracts cost nothing unwatched;
``quote`` prices any listed contract on demand (a REST quote, an option chain). The walk
has its own random stream, so the same seed and the same sequence of market instants give
the same index path whatever is watched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np

from mytrading.domain.refdata import IST, Instrument, RefData, round_to_tick
from mytrading.domain.universe import quoted, universe
from mytrading.messaging.wire import Bar, Tick
from mytrading.sim.listing import OptionListing
from mytrading.sim.paths import OVERNIGHT_S, TRADING_SECONDS_PER_YEAR, option_points
from mytrading.sim.surface import IVLevel, SurfaceParams, intraday_factor, option_price

RATE = 0.065  # the futures' cost of carry; options are priced with none (sim/surface.py)
SECONDS_PER_YEAR = 365.0 * 24 * 3600
OPTION_KINDS = ("CE", "PE")
Key = tuple[str, str]


@dataclass
class SimInstrument:
    inst: Instrument
    spot_key: str  # underlying name
    volume: int = 0
    last: float = 0.0
    oi: int = -1  # open interest of a future or option (-1: not set yet)


def _on_ticks(prices: np.ndarray, tick: float) -> list[float]:
    """``round_to_tick`` of each price (the same rounding, value for value)."""
    steps = np.rint(prices / tick)
    scale = 100.0 if tick >= 0.01 else 10_000.0
    # round(s * tick, places), vectorized: s * tick * scale is a whole number give or
    # take a rounding error, and a whole number over the scale is the nearest double to
    # that decimal, which is what round() returns
    return (np.rint(steps * tick * scale) / scale).tolist()


def _years_to_expiry(expiry: date, now: datetime) -> float:
    exp = datetime.combine(expiry, time(15, 30), tzinfo=IST)
    return max((exp - now).total_seconds(), 0.0) / SECONDS_PER_YEAR


def configured_market(settings: Any, refdata: RefData, day: date) -> SimMarket:
    """The market the settings ask for (``MT_SIM_UNDERLYINGS``, ``MT_SIM_STOCKS``, strikes,
    seed): what the simulator server and the in-process venue both quote."""
    return SimMarket(
        refdata,
        quoted(refdata, settings.sim.underlyings, settings.sim.stocks),
        day,
        settings.sim.strikes,
        settings.sim.seed,
        settings.sim.stock_strikes,
        settings.sim.depth_lots,
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
        depth_lots: int = 40,
    ) -> None:
        self.refdata = refdata
        self.depth_lots = depth_lots  # a touch holds 1 to depth_lots - 1 lots
        self.rng = np.random.default_rng(seed)  # the walk's: nothing else draws from it
        self.oi_rng = np.random.default_rng(seed + 1)  # its own: prices stay as they were
        self.quote_rng = np.random.default_rng(seed + 2)  # sizes and volumes
        level_rng = np.random.default_rng(seed + 3)
        self.spot: dict[str, float] = {}
        self.instruments: list[SimInstrument] = []  # everything listed
        self.by_key: dict[Key, SimInstrument] = {}
        self._always: list[SimInstrument] = []  # quoted every step: not options
        self._last_ns: int | None = None
        self._day: date | None = None
        self._open_ns: dict[date, int] = {}
        # option bars made for a history request: the same request (a strategy's warm-up
        # again after a restart, two strategies on one option) is not made twice
        self._option_bars: dict[tuple[object, ...], list[Bar]] = {}
        self.surfaces: dict[str, SurfaceParams] = {}
        self.levels: dict[str, IVLevel] = {}
        for name in underlyings:
            u = refdata.underlying(name)
            self.spot[name] = u.sim_spot
            self.surfaces[name] = SurfaceParams.for_index(u.sim_vol)
            self.levels[name] = IVLevel(self.surfaces[name], level_rng)
        # A stock moves inside its daily price band (2/5/10/20 % of the day's reference
        # price: here its level at the start), as the exchange's circuit limits hold it.
        self.bands: dict[str, tuple[float, float]] = {}
        for name in underlyings:
            u = refdata.underlying(name)
            if u.kind == "STOCK" and u.band_pct:
                ref, b = self.spot[name], u.band_pct / 100.0
                self.bands[name] = (ref * (1 - b), ref * (1 + b))
        strip = universe(
            refdata, underlyings, trading_day, strikes, self.spot.__getitem__, stock_strikes
        )
        for inst in strip:
            self._add(inst, inst.underlying)
        # what the stack's feed subscribes in the embedded default: ``universe()``'s list
        self.universe: list[Key] = [(i.exchange, i.symbol) for i in strip]
        # the strip's options are watched until someone says what it watches
        self.strip: frozenset[Key] = frozenset(
            (i.exchange, i.symbol) for i in strip if i.kind in OPTION_KINDS
        )
        self.watched: set[Key] = set(self.strip)
        self.listings: dict[str, OptionListing] = {}
        for name in underlyings:
            u = refdata.underlying(name)
            if u.kind == "INDEX" and u.fno:
                self.listings[name] = OptionListing(refdata, u, self.surfaces[name].mean)
        self._list(trading_day)

    def _add(self, inst: Instrument, und: str) -> None:
        key = (inst.exchange, inst.symbol)
        if key in self.by_key:
            return
        si = SimInstrument(inst, und)
        self.instruments.append(si)
        self.by_key[key] = si
        if inst.kind not in OPTION_KINDS:
            self._always.append(si)

    def _list(self, day: date) -> None:
        """The exchange's listing for ``day`` at the current index levels."""
        self._day = day
        for name, listing in self.listings.items():
            for inst in listing.update(day, self.spot[name]):
                self._add(inst, name)
            listing.expired(day)

    # ------------------------------------------------------------------ watching

    def listed(self, exchange: str, symbol: str) -> bool:
        return (exchange, symbol) in self.by_key

    def watch(self, keys: Iterable[Key]) -> None:
        """Quote exactly these options from now on (besides every non-option)."""
        self.watched = set(keys)

    # ------------------------------------------------------------------ the walk

    def _session_open_ns(self, day: date) -> int:
        got = self._open_ns.get(day)
        if got is None:
            hours = self.refdata.calendar.hours("NSE", day)
            opens = hours[0] if hours else time(9, 15)
            got = int(datetime.combine(day, opens, tzinfo=IST).timestamp()) * 1_000_000_000
            self._open_ns[day] = got
        return got

    def _advance(self, last_ns: int, now_ns: int, day: date) -> None:
        """The indices' walk and IV levels from ``last_ns`` to ``now_ns``: in-session time
        as it passed, a new day's gap as ``OVERNIGHT_S``."""
        open_ns = self._session_open_ns(day)
        if last_ns < open_ns:  # a new session: the gap, then this session so far
            seconds = OVERNIGHT_S + max(now_ns - open_ns, 0) / 1e9
        else:
            seconds = (now_ns - last_ns) / 1e9
        dt = seconds / TRADING_SECONDS_PER_YEAR
        factor = intraday_factor((now_ns - open_ns) / 60e9)
        sqdt = math.sqrt(dt)
        for name in self.spot:
            level = self.levels[name]
            vol = level.realized(factor)
            sd = vol * sqdt
            r = -0.5 * vol * vol * dt + sd * float(self.rng.standard_normal())
            self.spot[name] *= math.exp(r)
            band = self.bands.get(name)
            if band is not None:
                self.spot[name] = min(max(self.spot[name], band[0]), band[1])
            level.advance(dt, r, sd)

    def step(self, now_ns: int) -> list[Tick]:
        """Advance the walk to ``now_ns`` (market time) and quote what is watched."""
        now = datetime.fromtimestamp(now_ns / 1e9, IST)
        day = now.date()
        if self._last_ns is not None and now_ns > self._last_ns:
            self._advance(self._last_ns, now_ns, day)
        self._last_ns = now_ns
        if day != self._day:
            self._list(day)
        else:
            for name, listing in self.listings.items():  # a move lists new strikes
                for inst in listing.update(day, self.spot[name]):
                    self._add(inst, name)
        out = [self._quote(si, now, now_ns) for si in self._always]
        by_key = self.by_key
        for key in self.watched:
            si = by_key.get(key)
            if si is not None and si.inst.kind in OPTION_KINDS and si.inst.expiry >= day:  # type: ignore[operator]  # an option's expiry: set
                out.append(self._quote(si, now, now_ns))
        return out

    def quote(self, exchange: str, symbol: str, now_ns: int) -> Tick | None:
        """A listed contract's quote now, watched or not (None if not listed)."""
        si = self.by_key.get((exchange, symbol))
        if si is None:
            return None
        return self._quote(si, datetime.fromtimestamp(now_ns / 1e9, IST), now_ns)

    def fair_value(self, si: SimInstrument, now: datetime) -> float:
        inst = si.inst
        spot = self.spot[si.spot_key]
        if inst.kind in ("INDEX", "EQ"):
            return spot
        if inst.kind == "FUT":
            return self._fair_at(si, spot, now)
        t = _years_to_expiry(inst.expiry, now)  # type: ignore[arg-type]  # a derivative's: set
        level = self.levels[si.spot_key].level
        return option_price(self.surfaces[si.spot_key], level, spot, inst.strike, t, inst.kind)

    def _quote(self, si: SimInstrument, now: datetime, now_ns: int) -> Tick:
        inst = si.inst
        tick = inst.tick_size
        ltp = max(round_to_tick(self.fair_value(si, now), tick), tick)
        if inst.kind in OPTION_KINDS:  # never below intrinsic against the index's quote
            spot = round_to_tick(self.spot[si.spot_key], tick)
            intrinsic = spot - inst.strike if inst.kind == "CE" else inst.strike - spot
            if intrinsic > ltp:
                ltp = round_to_tick(math.ceil(intrinsic / tick - 1e-9) * tick, tick)
        if inst.kind == "INDEX":
            bid = ask = ltp
            bq = aq = 0
        else:
            rng = self.quote_rng
            half = max(tick, round_to_tick(ltp * 0.0001, tick))
            bid = max(round_to_tick(ltp - half, tick), tick)
            ask = round_to_tick(ltp + half, tick)
            size = inst.lot_size if inst.kind != "EQ" else 100  # an equity: round lots of 100
            lots = int(rng.integers(1, self.depth_lots))
            bq, aq = lots * size, int(rng.integers(1, self.depth_lots)) * size
            si.volume += int(rng.integers(0, 20)) * size
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
        n = len(minutes)
        # each minute's points of the walk, as rows (the same floats the loop of old took)
        window = np.arange(n)[:, None] * sub + np.arange(sub + 1)[None, :]
        starts_s = np.array([m // 1_000_000_000 for m in minutes], dtype=np.float64)
        for si in self.instruments:
            inst = si.inst
            if inst.kind not in ("INDEX", "EQ", "FUT"):
                continue
            pts = paths[si.spot_key][window]
            if inst.kind == "FUT":  # the cost of carry to its expiry (``_fair_at``)
                exp = datetime.combine(inst.expiry, time(15, 30), tzinfo=IST).timestamp()  # type: ignore[arg-type]  # a future's: set
                years = np.maximum(exp - starts_s, 0.0) / SECONDS_PER_YEAR
                pts = pts * (1.0 + RATE * years)[:, None]
            tick = inst.tick_size
            o, h = _on_ticks(pts[:, 0], tick), _on_ticks(pts.max(axis=1), tick)
            lo, c = _on_ticks(pts.min(axis=1), tick), _on_ticks(pts[:, -1], tick)
            lot = max(inst.lot_size, 100)
            volume = [0] * n if inst.kind == "INDEX" else (rng.integers(20, 400, n) * lot).tolist()
            ex, sym = inst.exchange, inst.symbol
            out += [
                Bar(exchange=ex, symbol=sym, tf="1m", start_ns=start_ns, open=o[i],
                    high=h[i], low=lo[i], close=c[i], volume=volume[i])
                for i, start_ns in enumerate(minutes)
            ]  # fmt: skip
        return out

    def option_bars(self, inst: Instrument, index: list[Bar]) -> list[Bar]:
        """1-minute bars of the option ``inst`` at the minutes of ``index`` (its
        underlying's bars): the surface's price at each bar's open, low, high and close of
        the index, at the IV level of now (the past's own levels are not kept), never
        below intrinsic or a tick. ``history`` serves them for any listed option, watched
        or not, as the backtest generates its option bars (``backtest/data.py``)."""
        if not index or inst.expiry is None or inst.kind not in OPTION_KINDS:
            return []
        level = self.levels[inst.underlying].level
        key = (inst.symbol, len(index), index[0].start_ns, index[-1].start_ns, level)
        got = self._option_bars.get(key)
        if got is None:
            if len(self._option_bars) > 256:
                self._option_bars.clear()
            got = self._option_bars[key] = self._make_option_bars(inst, index)
        return list(got)

    def _make_option_bars(self, inst: Instrument, index: list[Bar]) -> list[Bar]:
        assert inst.expiry is not None
        name = inst.underlying
        n = len(index)
        spot = np.array([(b.open, b.low, b.high, b.close) for b in index], dtype=np.float64)
        starts = np.array([b.start_ns for b in index], dtype=np.int64)
        offsets = np.array([0.0, 20.0, 40.0, 60.0]) * 1e9
        expiry_ns = datetime.combine(inst.expiry, time(15, 30), tzinfo=IST).timestamp() * 1e9
        years = np.maximum(expiry_ns - (starts[:, None] + offsets[None, :]), 0.0) / 1e9
        years /= SECONDS_PER_YEAR
        levels = np.full(n, self.levels[name].level)
        pts = option_points(self.surfaces[name], spot, levels, years, inst.strike, inst.kind)
        intrinsic = spot - inst.strike if inst.kind == "CE" else inst.strike - spot
        pts = np.maximum(pts, intrinsic)
        tick = inst.tick_size
        rng = np.random.default_rng([*inst.symbol.encode(), int(starts[0] // 1_000_000_000)])
        volume = rng.integers(1, 200, size=n) * inst.lot_size
        o, h = _on_ticks(pts[:, 0], tick), _on_ticks(pts.max(axis=1), tick)
        lo, c = _on_ticks(pts.min(axis=1), tick), _on_ticks(pts[:, 3], tick)
        return [
            Bar(
                exchange=inst.exchange,
                symbol=inst.symbol,
                tf="1m",
                start_ns=int(starts[i]),
                open=max(o[i], tick),
                high=max(h[i], tick),
                low=max(lo[i], tick),
                close=max(c[i], tick),
                volume=int(volume[i]),
            )
            for i in range(n)
        ]

    def _fair_at(self, si: SimInstrument, spot: float, when: datetime) -> float:
        if si.inst.kind in ("INDEX", "EQ"):
            return spot
        return spot * (1.0 + RATE * _years_to_expiry(si.inst.expiry, when))  # type: ignore[arg-type]  # set
