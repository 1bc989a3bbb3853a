"""Indicators: TA-Lib parity, Pine's Supertrend, and streaming == vectorised."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from mytrading.indicators import stream as S  # noqa: N812
from mytrading.indicators import vector as V  # noqa: N812


def series(n: int = 3000, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 24500 + np.cumsum(rng.normal(0, 12, n))
    return c + rng.random(n) * 20, c - rng.random(n) * 20, c


def same(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> None:
    assert np.array_equal(np.isnan(a), np.isnan(b)), "warm-up or gap positions differ"
    m = ~np.isnan(a)
    if not m.any():
        return
    assert np.max(np.abs(a[m] - b[m]) / np.maximum(1.0, np.abs(b[m]))) <= tol


@pytest.mark.parametrize("n", [2, 5, 14, 20, 50])
def test_talib_parity(n: int) -> None:
    h, lo, c = series()
    same(V.sma(c, n), talib.SMA(c, n))
    same(V.ema(c, n), talib.EMA(c, n))
    same(V.rsi(c, n), talib.RSI(c, n))
    same(V.atr(h, lo, c, n), talib.ATR(h, lo, c, n))
    for ours, ref in zip(V.bbands(c, n, 2.0), talib.BBANDS(c, n, 2.0, 2.0), strict=True):
        same(ours, ref)


def pine_supertrend_reference(h: list, lo: list, c: list, n: int, m: float) -> tuple[list, list]:
    """Pine v6 ta.supertrend written out plainly from its rules (TradingView's reference)."""
    tr = [h[0] - lo[0]] + [
        max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))
    ]
    atr: list[float] = [math.nan] * len(c)
    atr[n - 1] = sum(tr[:n]) / n
    for i in range(n, len(c)):
        atr[i] = (atr[i - 1] * (n - 1) + tr[i]) / n
    line, dirs = [math.nan] * len(c), [0.0] * len(c)
    fu = fl = math.nan
    for i in range(n - 1, len(c)):
        hl2 = (h[i] + lo[i]) / 2
        ub, lb = hl2 + m * atr[i], hl2 - m * atr[i]
        if i == n - 1:
            fu, fl, d = ub, lb, 1.0
        else:
            fl = lb if lb > fl or c[i - 1] < fl else fl
            fu = ub if ub < fu or c[i - 1] > fu else fu
            d = (-1.0 if c[i] > fu else 1.0) if dirs[i - 1] == 1.0 else (1.0 if c[i] < fl else -1.0)
        dirs[i], line[i] = d, (fl if d == -1.0 else fu)
    return line, dirs


@pytest.mark.parametrize("n, m", [(7, 3.0), (10, 3.0), (10, 1.5)])
def test_supertrend_follows_pine(n: int, m: float) -> None:
    h, lo, c = series(1500)
    line, d = V.supertrend(h, lo, c, n, m)
    ref_line, ref_d = pine_supertrend_reference(list(h), list(lo), list(c), n, m)
    same(line, np.array(ref_line))
    assert list(d) == ref_d
    assert set(np.unique(d[n - 1 :])) <= {-1.0, 1.0} and not d[: n - 1].any()


def test_supertrend_equals_openalgo_ta() -> None:
    """The SDK's ta.supertrend seeds ATR like Pine (TR[0] = high - low, first ATR at n-1),
    so it matches ours exactly; TA-Lib's ATR starts a bar later (no TR on bar 0), which is
    why a Supertrend built on talib.ATR differs near the start. The SDK marks warm-up
    direction NaN where we use 0. Run apart: importing openalgo replaces numba.jit."""
    h, lo, c = series(2000)
    code = (
        "import json,sys,numpy as np; from openalgo import ta; d=json.load(sys.stdin);"
        "l,r=ta.supertrend(np.array(d['h']),np.array(d['l']),np.array(d['c']),10,3.0);"
        "print(json.dumps([[None if x!=x else x for x in l],[None if x!=x else x for x in r]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps({"h": h.tolist(), "l": lo.tolist(), "c": c.tolist()}),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    sdk_line, sdk_dir = (np.array([np.nan if x is None else x for x in v]) for v in json.loads(out))
    line, d = V.supertrend(h, lo, c, 10, 3.0)
    same(line, sdk_line)
    assert np.array_equal(np.nan_to_num(sdk_dir, nan=0.0), d)
    pine_atr, talib_atr = V.atr(h, lo, c, 10, True), talib.ATR(h, lo, c, 10)
    assert np.isnan(talib_atr[9]) and not np.isnan(pine_atr[9])  # the seeding difference
    assert abs(pine_atr[-1] - talib_atr[-1]) < 1e-6 * pine_atr[-1]  # forgotten in time


bars = st.lists(
    st.one_of(st.floats(min_value=1.0, max_value=1e5), st.just(math.nan)), min_size=0, max_size=300
)


@settings(max_examples=60, deadline=None)
@given(xs=bars, n=st.integers(min_value=1, max_value=30))
def test_streaming_equals_vectorised_single_series(xs: list[float], n: int) -> None:
    x = np.array(xs, dtype=float)
    for vec, cls in ((V.sma, S.SMA), (V.ema, S.EMA), (V.rsi, S.RSI)):
        s = cls(n)
        same(np.array([s.update(v) for v in xs]), vec(x, n))
    b = S.BBands(n, 2.0)
    streamed = np.array([b.update(v) for v in xs]).reshape(-1, 3).T if xs else np.empty((3, 0))
    for got, want in zip(streamed, V.bbands(x, n, 2.0), strict=True):
        same(got, want)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=1e5),
            st.floats(min_value=0, max_value=50),
            st.floats(min_value=0, max_value=1),
            st.booleans(),
        ),
        min_size=0,
        max_size=300,
    ),
    n=st.integers(min_value=1, max_value=20),
    m=st.sampled_from([1.0, 2.0, 3.0]),
)
def test_streaming_equals_vectorised_ohlc(rows: list, n: int, m: float) -> None:
    h = np.array([c + r if not gap else math.nan for c, r, _, gap in rows])
    lo = np.array([c - r * f if not gap else math.nan for c, r, f, gap in rows])
    c = np.array([cl if not gap else math.nan for cl, _, _, gap in rows])
    for pine in (False, True):
        a = S.ATR(n, pine)
        same(np.array([a.update(*b) for b in zip(h, lo, c, strict=True)]), V.atr(h, lo, c, n, pine))
    st_ = S.Supertrend(n, m)
    got = [st_.update(*b) for b in zip(h, lo, c, strict=True)]
    line, d = V.supertrend(h, lo, c, n, m)
    same(np.array([g[0] for g in got]), line)
    assert [g[1] for g in got] == list(d)


@pytest.mark.parametrize("fast, slow, sig", [(12, 26, 9), (3, 10, 4), (2, 3, 1), (5, 30, 12)])
def test_macd_talib_parity(fast: int, slow: int, sig: int) -> None:
    _, _, c = series()
    for ours, ref in zip(V.macd(c, fast, slow, sig), talib.MACD(c, fast, slow, sig), strict=True):
        same(ours, ref)


def vwap_reference(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, day: np.ndarray):
    """Plain pandas: cumulative (typical price x volume) / cumulative volume per day."""
    import pandas as pd

    df = pd.DataFrame({"tp": (h + lo + c) / 3, "v": v, "day": day}).dropna()
    df["pv"] = df.tp * df.v
    g = df.groupby("day")
    out = np.full(c.size, np.nan)
    cum_v = g.v.cumsum()
    vals = (g.pv.cumsum() / cum_v).where(cum_v > 0)
    out[df.index.to_numpy()] = vals.to_numpy()
    return out


def test_vwap_resets_each_session_and_matches_a_pandas_reference() -> None:
    h, lo, c = series(2000)
    rng = np.random.default_rng(3)
    v = rng.integers(0, 500, c.size).astype(float)
    v[:3] = 0.0  # no volume yet: NaN, not a division by zero
    day = np.repeat(np.arange(8), 250)
    c[[10, 500, 501]] = np.nan
    got = V.vwap(h, lo, c, v, day)
    same(got, vwap_reference(h, lo, c, v, day))
    assert np.isnan(got[:3]).all()
    assert got[250] == pytest.approx((h[250] + lo[250] + c[250]) / 3)  # a new session restarts


@settings(max_examples=60, deadline=None)
@given(
    xs=bars,
    fast=st.integers(min_value=1, max_value=10),
    extra=st.integers(min_value=1, max_value=15),
    sig=st.integers(min_value=1, max_value=10),
)
def test_streaming_macd_and_vwap_equal_vectorised(
    xs: list[float], fast: int, extra: int, sig: int
) -> None:
    x = np.array(xs, dtype=float)
    m = S.MACD(fast, fast + extra, sig)
    got = np.array([m.update(v) for v in xs]).reshape(-1, 3).T if xs else np.empty((3, 0))
    for g, want in zip(got, V.macd(x, fast, fast + extra, sig), strict=True):
        same(g, want)
    vol = np.abs(np.nan_to_num(x, nan=1.0)) % 97
    day = np.arange(x.size) // 37
    w = S.VWAP()
    streamed = [w.update(v, v, v, q, int(d)) for v, q, d in zip(x, vol, day, strict=True)]
    same(np.array(streamed), V.vwap(x, x, x, vol, day))


def test_talib_adapter_streams_any_function_like_the_vectorised_call() -> None:
    from mytrading.indicators.talib_adapter import TalibStream, talib_vector

    h, lo, c = series(600)
    c[[40, 41, 300]] = np.nan  # missing bars: NaN out, state untouched, in both forms
    for name, params in (("WILLR", {"timeperiod": 14}), ("CCI", {"timeperiod": 20})):
        vec = talib_vector(name, high=h, low=lo, close=c, **params)
        s = TalibStream(name, **params)
        got = np.array([s.update(high=a, low=b, close=x) for a, b, x in zip(h, lo, c, strict=True)])
        same(got, vec)
        ok = ~np.isnan(c)
        same(vec[ok], getattr(talib, name)(h[ok], lo[ok], c[ok], **params))
    upper, mid, lower = talib_vector("BBANDS", close=c, timeperiod=5)
    assert np.nanmax(upper - lower) > 0 and mid.shape == c.shape
    assert TalibStream("MACD").outputs == 3
    with pytest.raises(ValueError, match="no function"):
        TalibStream("NOPE")
    with pytest.raises(ValueError, match="unknown parameters"):
        TalibStream("SMA", period=3)
    with pytest.raises(ValueError, match="missing"):
        talib_vector("ATR", close=c)


def test_supertrend_is_bit_for_bit_what_it_was() -> None:
    """The faster loop (issue 12: 14 ms -> 6.5 ms on 1M bars) moved no bit: the outputs on
    a long walk with missing bars, a missing start and several warm-up lengths hash to
    what the implementation before it gave (recorded from that commit, 6d34f80)."""
    import hashlib

    rng = np.random.default_rng(7)
    size = 20_000
    c = 24500 + np.cumsum(rng.normal(0, 12, size))
    h, lo = c + rng.random(size) * 20, c - rng.random(size) * 20
    c[:3] = np.nan
    h[rng.choice(size, 200, replace=False)] = np.nan
    c[rng.choice(size, 200, replace=False)] = np.nan
    digest = hashlib.sha256()
    for n in (1, 2, 10, 14):
        line, d = V.supertrend(h, lo, c, n, 3.0)
        digest.update(line.tobytes())
        digest.update(d.tobytes())
    assert digest.hexdigest() == (
        "59780a790074b4cdca1eda1146974ff6531d331a3c5f28254d7e79a91d78aec0"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1.0, 1e5, allow_nan=False), min_size=1, max_size=300),
    st.integers(1, 40),
    st.integers(0, 299),
)
def test_ahead_is_the_streaming_update_bit_for_bit(xs: list[float], n: int, split: int) -> None:
    """Issue 36: an SMA or EMA run over a batch known ahead from any state gives every
    output as the streaming update does (the same float), and advancing by the inputs
    leaves the same state (a NaN input: no output, no move)."""
    xs = [*xs[: split // 2], math.nan, *xs[split // 2 :]]
    for cls in (S.SMA, S.EMA):
        a, b = cls(n), cls(n)
        k = min(split, len(xs))
        for v in xs[:k]:
            a.update(v)
            b.update(v)
        arr = np.array(xs[k:])
        got = a.ahead(arr).tolist()
        want = [b.update(v) for v in xs[k:]]
        assert [g if g == g else None for g in got] == [w if w == w else None for w in want]
        a.advance(arr)  # the same state: the next update agrees
        after_a, after_b = a.update(7.5), b.update(7.5)
        assert after_a == after_b or (math.isnan(after_a) and math.isnan(after_b))


def test_a_context_fed_ahead_gives_a_strategy_what_streaming_gives() -> None:
    """The backtest's indicators a batch ahead (``StrategyContext.ahead``): every value a
    strategy reads on each bar is the streaming one; a bar that is not the one expected
    hands over to the streaming update from the bar before; finishing mid-batch leaves
    the streaming state where the bars given left it."""
    from mytrading.engine.indicator_set import AheadFeed, make
    from mytrading.messaging import wire

    closes = (np.cumsum(np.random.default_rng(3).normal(0, 5, 400)) + 1000).round(2)
    bars = [wire.Bar(exchange="NFO", symbol="F", tf="1m", start_ns=i, open=c, high=c, low=c,
                     close=float(c), volume=1) for i, c in enumerate(closes)]  # fmt: skip
    for kind in ("SMA", "EMA"):
        ref, fed = make(kind, period=20), make(kind, period=20)
        for b in bars[:50]:
            ref.update(b)
            fed.update(b)
        feed = AheadFeed(fed, closes[50:300], closes[50:300].tolist())
        for i, b in enumerate(bars[50:250], start=50):
            if i == 120:  # a bar the batch did not say: the streaming update takes over
                b = wire.Bar(exchange="NFO", symbol="F", tf="1m", start_ns=i, open=1.0,
                             high=1.0, low=1.0, close=999.99, volume=1)  # fmt: skip
                bars[i] = b
            ref.update(b)
            feed.update(b)
            assert feed.bound.value() == ref.value() or (
                math.isnan(ref.value()) and math.isnan(feed.bound.value())
            ), (kind, i)
        assert not feed.live  # handed over at bar 120
        second = AheadFeed(fed, closes[250:], closes[250:].tolist())
        for b in bars[250:280]:
            ref.update(b)
            second.update(b)
        second.finish()  # mid-batch: the state after the 30 bars given
        for b in bars[280:]:
            ref.update(b)
            fed.update(b)
            assert fed.value() == ref.value(), kind
