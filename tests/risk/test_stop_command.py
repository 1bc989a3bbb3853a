"""An operator's stop of one strategy (``main.py control stop``): risk halts it, closes its
positions through its exits until the broker's book is flat, keeps it halted, and says
so; the stop survives a restart of risk until flat; resuming ends it. Risk's core driven
as the daemon drives it (``LivePorts``), against a broker that fills at the last price."""

from __future__ import annotations

from pathlib import Path

import pytest

from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.daemon import build_core
from mytrading.risk.state import StateStore, TradingStates
from mytrading.settings import load_settings
from tests.risk.test_risk_core import FUT, NS, Broker, LivePorts
from tests.risk.test_risk_rules import at, intent


def test_stop_halts_flattens_through_exits_and_stays_halted(
    refdata: RefData, tmp_env: dict[str, str]
) -> None:
    t = [at(10, 0)]
    now_ns = lambda: int(t[0].timestamp() * NS)  # noqa: E731
    broker = Broker()
    ports = LivePorts(broker)
    core = build_core(
        load_settings(), refdata, Accounts(by_name={}), ports, lambda: t[0], "st", None,
        now_ns, lambda: now_ns() / NS,
    )  # fmt: skip

    def settle() -> None:
        while ports.orders:
            out = list(ports.orders)
            ports.orders.clear()
            for o in out:
                for m in broker.execute(o, t[0]):
                    core.on_fill(m) if isinstance(m, wire.Fill) else core.on_update(m)  # type: ignore[arg-type]

    def step(h: int, m: int) -> None:
        t[0] = at(h, m)
        core.step()
        settle()

    broker.ltp[FUT] = 24_000.0
    px = 24_000.0
    core.on_tick(wire.Tick(exchange="NFO", symbol=FUT, ltp=px, bid=px, ask=px, bid_qty=1,
                           ask_qty=1, volume=1, exch_ns=now_ns()))  # fmt: skip
    core.on_funds("main", 10_000_000.0, now_ns())
    core.on_intent(intent(130, "BUY", strategy="s", product="NRML"))
    core.on_intent(intent(65, "BUY", strategy="other", product="NRML"))
    settle()
    assert broker.net(("NFO", FUT, "NRML")) == 195

    with pytest.raises(ValueError, match="stop names one strategy"):
        core.on_command(wire.Command(command="stop", value="", target="*"))
    core.on_command(wire.Command(command="stop", value="", target="s", reason="stopped by t",
                                 issued_by="cli:op"))  # fmt: skip
    states = core.book.states
    assert states.of("s") == "halted" and states.stopping == {"s"}
    assert states.why["s"].by == "cli:op" and states.as_dict()["stopping"] == ["s"]
    step(10, 1)  # the exit goes out and fills
    step(10, 2)  # ... confirmed flat in the broker's book
    step(10, 3)  # ... and the stop is done
    assert broker.net(("NFO", FUT, "NRML")) == 65  # only the other strategy's lot
    assert core.book.positions[("s", "NFO", FUT)] == 0
    assert states.of("s") == "halted" and states.stopping == set()  # stopped: stays paused
    assert "s stopped: flat" in ports.saved
    kinds = [(e.strategy, e.kind, e.action) for e in ports.events]
    assert ("s", "state", "stop") in kinds and ("s", "exit_confirmed", "close") in kinds
    assert not any(e.strategy == "other" and e.kind == "exit" for e in ports.events)
    core.on_intent(intent(65, "BUY", strategy="s", product="NRML"))  # an entry: refused
    assert ports.events[-1].kind == "rejected" and ports.events[-1].rule == "halted"


def test_a_stop_survives_a_restart_until_flat_and_resume_ends_it(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "states.json")
    states = TradingStates()
    states.set("s", "halted", "stopped by t", "cli:op")
    states.stopping.add("s")
    store.save(states, "stop")
    back, problem = store.load()
    assert problem == "" and back.stopping == {"s"} and back.of("s") == "halted"
    back.set("s", "active", "resumed", "cli:op")
    assert back.stopping == set()
    # a stop kept for a strategy no longer halted (an older file edited by hand) is none
    odd = TradingStates("active", {"s": "reducing"}, stopping=["s"])
    assert odd.stopping == set()
