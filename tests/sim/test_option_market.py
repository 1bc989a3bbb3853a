"""The simulator's option market: what it lists (a ladder that follows the index), how it
prices (a surface with skew and term structure on a moving IV level: parity, intrinsic,
smile), what it quotes (only what is watched), and the index walk's calibration."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from mytrading.domain.refdata import IST, RefData, option_symbol
from mytrading.options.greeks import implied_vol
from mytrading.sim.exchange import SimExchange
from mytrading.sim.market import SimMarket, _years_to_expiry
from mytrading.sim.surface import IVLevel, SurfaceParams, atm_vol, intraday_factor

DAY = date(2026, 11, 20)
TEN = datetime(2026, 11, 20, 10, 0, tzinfo=IST)
NS = int(TEN.timestamp() * 1e9)
NEAR = date(2026, 11, 23)  # NIFTY's weekly (the 24th is a holiday)


class Clock:
    def __init__(self, ns: int) -> None:
        self.ns = ns

    def now_ns(self) -> int:
        return self.ns

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ns / 1e9, IST)


def strikes_of(m: SimMarket, expiry: date) -> set[float]:
    return {
        si.inst.strike
        for si in m.instruments
        if si.inst.underlying == "NIFTY" and si.inst.expiry == expiry and si.inst.kind == "CE"
    }


def test_the_ladder_follows_a_3_percent_move_and_the_chain_stays_full(refdata: RefData) -> None:
    m = SimMarket(refdata, ["NIFTY"], DAY, 10, seed=7)
    ex = SimExchange(refdata, Clock(NS), m)  # type: ignore[arg-type]  # a settable clock
    ex.step()
    before = strikes_of(m, NEAR)
    assert max(before) < 24_500 * 1.08  # a weekly's ladder: about +-5 % of the index
    m.spot["NIFTY"] *= 1.03
    ex.clock.ns += 10**9  # type: ignore[attr-defined]
    ex.step()
    after = strikes_of(m, NEAR)
    assert after > before and max(after) > max(before)  # new strikes, listed intraday
    assert before <= after  # nothing withdrawn
    spot = m.spot["NIFTY"]
    atm = round(spot / 50) * 50
    assert {atm + 50 * k for k in range(-10, 11)} <= after
    code, body = ex.optionchain(
        {"underlying": "NIFTY", "exchange": "NFO", "expiry_date": "23NOV26"}
    )
    assert code == 200 and body["atm_strike"] == atm
    for row in body["chain"]:  # every strike of the chain priced: no "-" in a view
        assert row["ce"]["ltp"] > 0 and row["pe"]["ltp"] > 0, row
    # the new strikes are in the instruments list a master-contract sync reads
    listed = {r["symbol"] for r in ex.instruments("NFO")}
    assert option_symbol("NIFTY", NEAR, max(after), "CE") in listed


def test_prices_keep_parity_never_go_below_intrinsic_and_smile(refdata: RefData) -> None:
    m = SimMarket(refdata, ["NIFTY"], DAY, 10, seed=11)
    m.step(NS)
    spot = round(m.spot["NIFTY"] / 0.05) * 0.05
    tick = 0.05
    now = TEN
    opts = [si for si in m.instruments if si.inst.kind in ("CE", "PE")]
    assert len(opts) >= 2_000
    pairs: dict[tuple[date, float], dict[str, float]] = {}
    for si in opts:  # every listed option, priced on demand
        t = m.quote(si.inst.exchange, si.inst.symbol, NS)
        assert t is not None
        k = si.inst.strike
        intrinsic = max(spot - k, 0.0) if si.inst.kind == "CE" else max(k - spot, 0.0)
        assert t.ltp >= intrinsic - 1e-9 and t.ltp >= tick, (si.inst.symbol, t.ltp, intrinsic)
        assert t.bid <= t.ltp <= t.ask
        pairs.setdefault((si.inst.expiry, k), {})[si.inst.kind] = t.ltp  # type: ignore[index]
    checked = 0
    for (expiry, k), p in pairs.items():
        # parity on the index (no carry): C - P = S - K, to a tick (each leg is rounded),
        # where neither leg sits on the one-tick floor
        if min(p.values()) > tick:
            assert abs(p["CE"] - p["PE"] - (m.spot["NIFTY"] - k)) <= tick + 1e-6, (expiry, k, p)
            checked += 1
    assert checked > 500
    # the smile of the monthly, read back from the quotes: downside dearest, a put skew
    t = _years_to_expiry(date(2026, 12, 29), now)
    sd = atm_vol(m.levels["NIFTY"].level, m.surfaces["NIFTY"].mean, 5.0, t) * math.sqrt(t)

    def iv_at(z: float) -> float:
        k = round(m.spot["NIFTY"] * math.exp(z * sd) / 50) * 50
        right = "PE" if z < 0 else "CE"
        px = pairs[(date(2026, 12, 29), float(k))][right]
        return implied_vol(px, m.spot["NIFTY"], k, t, 0.0, right == "CE")

    lo2, lo1, atm, hi1, hi3 = (iv_at(z) for z in (-2.0, -1.0, 0.0, 1.0, 3.0))
    assert lo2 > lo1 > atm > hi1  # skew: lower strikes, higher volatility
    assert hi3 > hi1  # and the wing turns up again: a smile
    assert 0.10 < atm < 0.25


def test_term_structure_reverts_to_the_long_run_level() -> None:
    p = SurfaceParams.for_index(0.14)
    assert atm_vol(p.mean, p.mean, p.kappa, 0.5) == pytest.approx(p.mean)
    high, low = 2 * p.mean, 0.7 * p.mean
    near, far = atm_vol(high, p.mean, p.kappa, 7 / 365), atm_vol(high, p.mean, p.kappa, 0.75)
    assert high > near > far > p.mean  # a spike: inverted, the far end near the mean
    near, far = atm_vol(low, p.mean, p.kappa, 7 / 365), atm_vol(low, p.mean, p.kappa, 0.75)
    assert low < near < far < p.mean  # calm: upward sloping


def test_the_iv_level_rises_on_a_fall_jumps_on_a_crash_and_reverts() -> None:
    p = SurfaceParams.for_index(0.14)
    lv = IVLevel(p, np.random.default_rng(1))
    dt = 60 / (252 * 6.25 * 3600)
    sd = 0.14 * math.sqrt(dt)
    calm = IVLevel(p, np.random.default_rng(1))
    lv.advance(dt, -0.01, sd)  # a 1 % fall in a minute: leverage and a jump
    calm.advance(dt, 0.0, sd)
    assert lv.level > calm.level * 1.08
    fell = IVLevel(p, np.random.default_rng(2))
    fell.advance(dt, -3 * sd, sd)  # a fall within 4 sigmas: leverage only
    assert fell.level > p.mean
    spiked = IVLevel(p, np.random.default_rng(3))
    spiked.level = 2.5 * p.mean
    for _ in range(252):  # a year of daily steps with a flat index
        spiked.advance(1 / 252, 0.0, 0.0)
    assert abs(math.log(spiked.level / p.mean)) < math.log(1.6)


def test_only_what_is_watched_is_quoted_and_the_walk_ignores_it(refdata: RefData) -> None:
    a = SimMarket(refdata, ["NIFTY"], DAY, 10, seed=5)
    b = SimMarket(refdata, ["NIFTY"], DAY, 10, seed=5)
    far = option_symbol("NIFTY", date(2026, 12, 29), 26_000.0, "CE")
    b.watch({("NFO", far)})
    a_spots, b_spots = [], []
    for k in range(50):
        ta, tb = a.step(NS + k * 10**9), b.step(NS + k * 10**9)
        a_spots.append(a.spot["NIFTY"])
        b_spots.append(b.spot["NIFTY"])
    assert a_spots == b_spots  # the same index path whatever is watched
    assert {t.symbol for t in ta if t.symbol.endswith(("CE", "PE"))} == {s for _, s in a.strip}
    assert [t.symbol for t in tb if t.symbol.endswith(("CE", "PE"))] == [far]
    # the exchange watches what is subscribed, worked and held
    ex = SimExchange(refdata, Clock(NS), SimMarket(refdata, ["NIFTY"], DAY, 10, seed=5))  # type: ignore[arg-type]
    ex.subscribed = set()
    assert not [t for t in ex.step() if t.symbol.endswith(("CE", "PE"))]
    code, q = ex.quotes("NFO", far)  # priced on demand, not quoted
    assert code == 200 and q["data"]["ltp"] > 0
    below = round(q["data"]["ltp"] * 0.8 * 20) / 20  # rests: under the ask, in the band
    order = {
        "strategy": "s", "exchange": "NFO", "symbol": far, "action": "BUY", "quantity": 65,
        "pricetype": "LIMIT", "product": "NRML", "price": below, "trigger_price": 0.0,
    }  # fmt: skip
    code, body = ex.place(order)
    assert code == 200, body
    ex.clock.ns += 10**9  # type: ignore[attr-defined]
    assert [t.symbol for t in ex.step() if t.symbol.endswith(("CE", "PE"))] == [far]


def test_the_walk_is_calibrated_daily_and_intraday(refdata: RefData) -> None:
    """Sixty sessions stepped every minute: NIFTY's daily sigma is its ``sim_vol`` over
    sqrt(252) (0.88 %), and one-minute moves after the open are twice the midday ones."""
    m = SimMarket(refdata, ["NIFTY"], DAY, 0, seed=3)
    m.watch(())
    cal = refdata.calendar
    closes, first, midday = [], [], []
    d = DAY
    while len(closes) < 61:
        hours = cal.hours("NSE", d)
        if hours:
            o = int(datetime.combine(d, hours[0], tzinfo=IST).timestamp()) * 10**9
            prev = m.spot["NIFTY"]
            for minute in range(375):
                m.step(o + minute * 60 * 10**9)
                r = abs(math.log(m.spot["NIFTY"] / prev))
                prev = m.spot["NIFTY"]
                if 1 <= minute <= 15:
                    first.append(r)
                elif 165 <= minute < 225:
                    midday.append(r)
            closes.append(m.spot["NIFTY"])
        d += timedelta(days=1)
    daily = np.diff(np.log(closes))
    want = refdata.underlying("NIFTY").sim_vol / math.sqrt(252)
    assert want * 0.7 < daily.std() < want * 1.35, (daily.std(), want)
    assert np.mean(first) > 1.5 * np.mean(midday)
    assert intraday_factor(0) > 2 * intraday_factor(187)


def test_history_serves_any_listed_option_from_the_index_path(refdata: RefData) -> None:
    """``history`` of an option nobody watched: a bar for every minute the index has one
    (the sessions before the start included), priced on the surface from the index's bar
    (a call's high at the index's high), never below intrinsic; where the option was
    quoted, its own bars."""
    m = SimMarket(refdata, ["NIFTY"], DAY, 10, seed=7)
    ex = SimExchange(refdata, Clock(NS), m)  # type: ignore[arg-type]  # a settable clock
    ex.history_store.preload(m.past_bars(NS, 1, seed=8))
    ex.step()
    spot = m.spot["NIFTY"]
    atm = round(spot / 50) * 50
    ce, pe = (option_symbol("NIFTY", NEAR, atm, r) for r in ("CE", "PE"))
    ask = {
        "exchange": "NFO",
        "interval": "1m",
        "start_date": "2026-11-18",
        "end_date": "2026-11-20",
    }
    index = ex.history({**ask, "exchange": "NSE_INDEX", "symbol": "NIFTY"})[1]["data"]
    calls = ex.history({**ask, "symbol": ce})[1]["data"]
    puts = ex.history({**ask, "symbol": pe})[1]["data"]
    assert len(index) > 375 and [r["timestamp"] for r in calls] == [r["timestamp"] for r in index]
    assert [r["timestamp"] for r in puts] == [r["timestamp"] for r in index]
    for i, c, p in zip(index, calls, puts, strict=True):
        assert c["low"] <= c["open"] <= c["high"] and c["low"] <= c["close"] <= c["high"]
        assert c["close"] >= max(i["close"] - atm, 0.05) - 1e-9  # never below intrinsic
        assert p["close"] >= max(atm - i["close"], 0.05) - 1e-9
        # put-call parity (no carry) within a few ticks of the rounding
        assert abs((c["close"] - p["close"]) - (i["close"] - atm)) < 0.2, (i, c, p)
    moves = zip(index, index[1:], calls, calls[1:], strict=False)
    ups = [
        (a["close"] < b["close"]) == (x["close"] < y["close"])
        for a, b, x, y in moves
        if a["close"] != b["close"]
    ]
    assert sum(ups) / len(ups) > 0.95  # a call moves with its index
    # a watched option's own (live) bars are served for the minutes it was quoted
    ex.subscribed = {("NFO", ce)}  # a client subscribed to the call
    for k in range(1, 125):
        ex.clock.ns = NS + k * 10**9  # type: ignore[attr-defined]
        ex.step()
    own = list(ex.history_store.bars[("NFO", ce)])
    assert own
    served = {r["timestamp"]: r for r in ex.history({**ask, "symbol": ce})[1]["data"]}
    for b in own:
        assert served[b.start_ns // 10**9]["close"] == b.close


def test_a_strategy_watching_the_simulated_universe_names_what_the_market_quotes(
    refdata: RefData,
) -> None:
    """``at_sim_levels`` (the benchmarks' strategies subscribe to it) is the simulated
    market's own list for the same names: indices, a stock with its own strip."""
    from mytrading.domain.universe import at_sim_levels, quoted

    names = quoted(refdata, ["NIFTY", "SENSEX"], ["RELIANCE"])
    m = SimMarket(refdata, names, DAY, 4, seed=3, stock_strikes=2)
    got = at_sim_levels(refdata, ["NIFTY", "SENSEX"], ["RELIANCE"], DAY, 4, 2)
    assert [(i.exchange, i.symbol) for i in got] == m.universe
    assert any(i.underlying == "RELIANCE" and i.kind in ("CE", "PE") for i in got)
