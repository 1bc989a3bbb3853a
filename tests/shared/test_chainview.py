"""The chain view: drawn from the simulated market's ticks (what the feed publishes), with
the right ATM highlighted, IV and Greeks that price back to the quotes, PCR and max pain
worked out by hand; and live in a terminal (tmux) against a running feed, which it asks
for the chain's strikes."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import time
from datetime import date, datetime

import pytest
from rich.console import Console

from mytrading.commands.chain import RATE, ChainModel, render
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.options.greeks import price
from mytrading.settings import PROJECT_ROOT, Settings
from mytrading.sim.market import SimMarket
from tests.procs import Watcher, spawn

DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 11, 0, tzinfo=IST)


def screen(m: ChainModel) -> str:
    c = Console(record=True, width=240, force_terminal=False)
    c.print(render(m, NOW))
    return c.export_text()


def test_the_chain_from_the_markets_ticks(refdata: RefData) -> None:
    market = SimMarket(refdata, ["NIFTY"], DAY, 12, seed=7)
    m = ChainModel.build(refdata, "NIFTY", None, 10, DAY)
    ns = int(NOW.timestamp() * 1e9)
    for k in range(3):  # three rounds of quotes, as the feed publishes them
        for t in market.step(ns + k * 1_000_000_000):
            m.on_tick(t)
    spot = market.spot["NIFTY"]
    assert m.spot == pytest.approx(spot, abs=0.05)
    assert m.atm == round(m.spot / 50) * 50
    text = screen(m)
    (atm_line,) = [ln for ln in text.splitlines() if re.search(r"\d ATM", ln)]
    assert f"{m.atm:,.0f} ATM" in atm_line and f"ATM {m.atm:,.0f}" in text  # row and title
    assert len([ln for ln in text.splitlines() if "│" in ln or ln.strip()]) > 21
    # IV from a quote prices the quote back; the ATM call's delta is near 0.5
    ce = m.rows[(m.atm, "CE")]
    assert ce.ltp > 0
    t = m.years_left(NOW)
    from mytrading.options.greeks import greeks, iv

    fwd = m.forward()  # parity at the ATM strike: the simulator's options carry nothing
    assert fwd == pytest.approx(m.spot, abs=0.1)
    vol = iv(ce.ltp, fwd, m.atm, t, RATE, "CE")
    assert price(fwd, m.atm, t, RATE, vol, "CE") == pytest.approx(ce.ltp, abs=0.01)
    assert 0.35 < greeks(fwd, m.atm, t, RATE, vol, "CE")[0] < 0.65
    # every strike with time value shows an IV, in the money too (a rate on the spot
    # read an in-the-money call's price as below any volatility: "-")
    itm = [k for (k, r), s in m.rows.items() if r == "CE" and k < m.spot - 100 and s.ltp]
    assert itm and all(
        iv(m.rows[(k, "CE")].ltp, fwd, k, t, RATE, "CE") > 0.05
        for k in itm
        if m.rows[(k, "CE")].ltp > fwd - k + 0.1  # some time value to read
    )


def test_pcr_and_max_pain_by_hand(refdata: RefData) -> None:
    m = ChainModel.build(refdata, "NIFTY", date(2026, 11, 24), 2, DAY)
    m.recentre(24_010.0)  # ATM 24000: strikes 23900..24100
    oi = {  # (strike, right): open interest
        (23_900.0, "CE"): 100,
        (24_000.0, "CE"): 500,
        (24_100.0, "CE"): 900,
        (23_900.0, "PE"): 800,
        (24_000.0, "PE"): 400,
        (24_100.0, "PE"): 100,
    }
    for (k, r), n in oi.items():
        sym = next(s for s, key in m.by_symbol.items() if key == (k, r))
        m.on_tick(
            wire.Tick(
                exchange="NFO",
                symbol=sym,
                ltp=10.0,
                bid=9.9,
                ask=10.1,
                bid_qty=1,
                ask_qty=1,
                volume=1,
                oi=n,
            )
        )
    assert m.pcr() == pytest.approx((800 + 400 + 100) / (100 + 500 + 900))

    def pain(x: float) -> float:
        return sum(n * (max(0, x - k) if r == "CE" else max(0, k - x)) for (k, r), n in oi.items())

    expected = min(sorted({k for k, _ in m.rows}), key=pain)
    assert m.max_pain() == expected == 24_000.0
    foot = screen(m).splitlines()[-1]
    assert "PCR (OI) 0.87" in foot and "max pain 24,000" in foot
    m.on_tick(
        wire.Tick(
            exchange="NFO",
            symbol=next(iter(m.by_symbol)),
            ltp=10.0,
            bid=9.9,
            ask=10.1,
            bid_qty=1,
            ask_qty=1,
            volume=1,
            oi=0,
        )
    )
    assert not math.isnan(m.pcr())


def test_the_view_shows_the_markets_time_not_its_own(refdata: RefData) -> None:
    m = ChainModel.build(refdata, "NIFTY", None, 10, DAY)
    own = datetime(2026, 11, 20, 9, 19, tzinfo=IST)  # a clock anchored when the view began
    assert m.market_now(own) == own  # nothing heard yet
    market = SimMarket(refdata, ["NIFTY"], DAY, 12, seed=7)
    for t in market.step(int(NOW.timestamp() * 1e9)):
        m.on_tick(t)
    assert m.market_now(own) == NOW
    c = Console(record=True, width=240, force_terminal=False)
    c.print(render(m, m.market_now(own)))
    assert "11:00:00 IST" in c.export_text()


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_live_view_in_a_terminal_asks_the_feed_for_its_strikes(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    env = {
        **tmp_env,
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_STRIKES": "12",
        "MT_SIM_SPEED": "1",
    }
    # the stack's clock was anchored an hour ago: its market is at 11:00, though the
    # view, started from a shell without the stack's anchor, would reckon 10:00
    anchor = str(time.time_ns() - 3600 * 10**9)
    w = Watcher(settings, ("sys.status.",))
    feed = spawn("feed", {**env, "MT_CLOCK_ANCHOR_NS": anchor})
    session = f"chain{time.time_ns() % 10**8}"
    try:
        w.wait(lambda: "feed" in w.status, 20, "the feed")
        cmd = " ".join(f"{k}='{v}'" for k, v in env.items()) + (
            f" {sys.executable} {PROJECT_ROOT / 'main.py'} chain NIFTY --strikes 5 --hz 5"
        )
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "40", cmd], check=True
        )
        shown = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            shown = subprocess.run(
                ["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True
            ).stdout
            atm = [ln for ln in shown.splitlines() if re.search(r"\d ATM", ln)]
            if atm and "PCR (OI)" in shown and atm[0].count("-") < 12 and " 11:" in shown:
                break
            time.sleep(0.5)
        atm = [ln for ln in shown.splitlines() if re.search(r"\d ATM", ln)]
        assert atm, shown
        # the feed quotes the chain because the view asked: the options have prices
        assert atm[0].count("-") < 12, shown
        title = re.search(r"spot ([\d,.]+)\s+forward [\d,.]+\s+ATM ([\d,]+)", shown)
        assert title, shown
        spot, strike = (float(x.replace(",", "")) for x in title.groups())
        assert strike == round(spot / 50) * 50  # the right ATM for the index's level
        assert f"{strike:,.0f} ATM" in atm[0]  # and that row is the highlighted one
        clock = re.search(r"(\d\d):(\d\d):\d\d IST", shown)
        assert clock and clock.group(1) == "11", shown  # the market's time, not its own
        w.wait(
            lambda: any(s.startswith("chain-") for s in w.status["feed"].detail["declared_by"]),
            5,
            "the view's interest at the feed",
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        feed.kill()
        feed.wait(timeout=5)
        w.close()
