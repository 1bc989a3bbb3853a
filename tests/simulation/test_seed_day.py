"""A seed's day is made on the seed's clock: the market's day and the history the
simulated broker serves for its warm-ups are of the day before the seed's, whatever the
machine's clock says (they were once made before the seed's clock was installed: bars for
a day two years on, and a day that depended on when it ran)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mytrading import hosttime
from mytrading.domain.refdata import IST, RefData
from mytrading.simulation.run import shared_strategies
from mytrading.simulation.stack import Options, SimStack

pytestmark = pytest.mark.integration  # a whole simulated stack built, as the others here


def test_the_history_served_is_of_the_session_before_the_seeds_day(
    refdata: RefData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ahead_ns = 400 * 86_400 * 10**9  # the machine's clock far from any seed's day
    monkeypatch.setattr(hosttime, "time_ns", lambda: time.time_ns() + ahead_ns)
    monkeypatch.setattr(hosttime, "time", lambda: time.time() + ahead_ns / 1e9)
    stack = SimStack(3, tmp_path, refdata, shared_strategies(tmp_path), Options())
    days = {
        datetime.fromtimestamp(bar.start_ns / 1e9, IST).date()
        for bars in stack.main.exchange.history_store.bars.values()
        for bar in bars
    }
    before = stack.day - timedelta(days=1)
    while not refdata.calendar.is_trading_day("NSE", before):
        before -= timedelta(days=1)
    assert days == {before}, (stack.day, sorted(days)[:3])


def test_the_simulations_fetcher_never_makes_a_call_given_up_on(
    refdata: RefData, tmp_path: Path
) -> None:
    """A first bar handed partial gives up its history call (``engine/warmup.py``); the
    simulation's fetcher, as the real one, then never makes it, and asks again when asked
    again."""
    from mytrading.simulation.host import HISTORY_SPACING_S, SimHost

    stack = SimStack(3, tmp_path, refdata, shared_strategies(tmp_path), Options())
    with stack.world:
        fetcher = SimHost(stack, "engine", 99).fetcher("history")  # an engine's, started
        made: list[str] = []
        first = fetcher.submit("a", lambda: made.append("a") or "a")
        given_up = fetcher.submit("b", lambda: made.append("b") or "b")
        assert fetcher.pending == 2
        given_up.cancel()
        stack.world.run_for(3 * HISTORY_SPACING_S)
        assert made == ["a"] and first.result(timeout=0) == "a"
        assert fetcher.calls == 1 and fetcher.pending == 0
        again = fetcher.submit("b", lambda: made.append("b") or "b")
        assert again is not given_up
        stack.world.run_for(3 * HISTORY_SPACING_S)
        assert made == ["a", "b"] and again.result(timeout=0) == "b"
