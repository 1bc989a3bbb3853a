"""A builder strategy restarted mid-day (its engine killed): the legs the router gives back
are today's, never entered again; the strategy's exits watch them and the square-off
closes them; no re-entry (which leg a position was is not kept across restarts)."""

from __future__ import annotations

from pathlib import Path

from mytrading.builder.spec import parse
from mytrading.builder.strategy import BuilderStrategy, make_class
from mytrading.builder.templates import render
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from tests.engine.test_strategy_runner import LOT, Rig

CE, PE = "NIFTY23NOV2624000CE", "NIFTY23NOV2624000PE"


def snap(symbol: str) -> wire.PositionSnapshot:
    return wire.PositionSnapshot(
        strategy="b_str",
        exchange="NFO",
        symbol=symbol,
        product="MIS",
        quantity=-LOT,
        avg_price=100.0,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        ltp=100.0,
    )


def test_a_restarted_builder_watches_its_legs_and_squares_them_off(refdata: RefData) -> None:
    text = render("b_str", "straddle").replace("max_loss = 3000", "max_loss = 1000")
    cls = make_class("b_str", parse(Path("b_str.toml"), text), Path("b_str.toml"))
    rig = Rig(refdata, run_id="r2")
    s = rig.runner.add(cls, {})
    assert isinstance(s, BuilderStrategy)
    rig.runner.restore([snap(CE), snap(PE)], 4, [])
    rig.runner.start()
    assert s.entered and s.restored
    t = rig.clock.at(10, 0)
    rig.tick(t, 24_010.0, "NIFTY", "NSE_INDEX")
    for sym in (CE, PE):
        rig.tick(t, 100.0, sym)
    rig.clock.at(10, 0, 1)
    rig.runner.poll()
    assert rig.sent == []  # watched, not sold again
    # the legs lose 1,040 rupees (16 a unit on 65): past the file's max loss of 1,000
    rig.tick(rig.clock.at(10, 0, 2), 116.0, CE)
    rig.clock.at(10, 0, 3)
    rig.runner.poll()
    closes = [(i.symbol, i.action, i.quantity) for i in rig.sent]
    assert sorted(closes) == [(CE, "BUY", LOT), (PE, "BUY", LOT)]
    assert s.done and s.decisions[-1]["event"] == "builder exit"
    assert s.decisions[-1]["reason"].startswith("max loss")
    rig.clock.at(15, 20)
    rig.runner.poll()
    assert len(rig.sent) == 2  # the day is over: no new entry, nothing sent twice
