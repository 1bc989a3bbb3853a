"""A strategy hears "no" once (issue 38): while risk holds its book or the stack HALTED or
REDUCING, the engine does not send its entries; the first comes back as a rejection saying
why, the rest are dropped quietly; exits still go; entries go again when the state
changes. After a rate-limit refusal its entries wait out a backoff."""

from __future__ import annotations

import pytest

from mytrading.domain.refdata import RefData
from mytrading.engine.strategy import BaseStrategy
from mytrading.messaging import wire
from tests.engine.test_strategy_runner import FUT, LOT, Rig


class Knocker(BaseStrategy):
    """Buys one lot on every tick it is given (``exiting`` set: sells one instead)."""

    name = "knocker"
    exiting = False

    def on_start(self) -> None:
        self.heard: list[wire.OrderUpdate] = []
        self.subscribe_ticks("NFO", FUT)

    def on_tick(self, tick: wire.Tick) -> None:
        if self.exiting:
            self.sell("NFO", FUT, LOT)
        else:
            self.buy("NFO", FUT, LOT)

    def on_order_update(self, u: wire.OrderUpdate) -> None:
        if u.status == "rejected":
            self.heard.append(u)


def state_event(target: str, state: str, why: str = "") -> wire.RiskEvent:
    return wire.RiskEvent(strategy=target, kind="state", rule="r", reason=why, action=state)


def test_entries_are_held_while_halted_and_the_strategy_hears_it_once(refdata: RefData) -> None:
    rig = Rig(refdata)
    strat = rig.runner.add(Knocker, {})
    rig.runner.start()
    rig.tick(rig.clock.at(10, 0), 100.0)
    assert len(rig.sent) == 1
    rig.fill(rig.sent[0], LOT, 100.0)  # long one lot
    rig.runner.on_risk_event(state_event("knocker", "halted", "order k.1 unknown"))
    assert strat.trading_state == ("halted", "knocker is HALTED: order k.1 unknown")
    for s in range(10):
        rig.tick(rig.clock.at(10, 1, s), 100.0)
    assert len(rig.sent) == 1  # nothing reached risk
    (heard,) = strat.heard  # type: ignore[attr-defined]
    assert "held by the engine, not sent: knocker is HALTED: order k.1 unknown" in heard.reason
    assert rig.runner.stats()["knocker"]["entries_held"] == 10
    # an exit still goes (risk judges it)
    strat.exiting = True  # type: ignore[attr-defined]
    rig.tick(rig.clock.at(10, 2), 100.0)
    strat.exiting = False  # type: ignore[attr-defined]
    assert len(rig.sent) == 2 and rig.sent[-1].action == "SELL"
    # the state lifts: entries go again, and a new halt is heard once more
    rig.runner.on_risk_event(state_event("knocker", "active"))
    rig.tick(rig.clock.at(10, 3), 100.0)
    assert len(rig.sent) == 3 and rig.sent[-1].action == "BUY"
    rig.runner.on_risk_event(
        wire.RiskEvent(
            strategy="*", kind="kill_switch", rule="trading_state", reason="by hand", action="on"
        )
    )
    rig.tick(rig.clock.at(10, 4), 100.0)
    rig.tick(rig.clock.at(10, 4, 1), 100.0)
    assert len(rig.sent) == 3 and len(strat.heard) == 2  # type: ignore[attr-defined]
    assert "the stack is HALTED: by hand" in strat.heard[-1].reason  # type: ignore[attr-defined]


def test_a_refusal_for_a_state_teaches_the_engine_and_the_heartbeat_corrects_it(
    refdata: RefData,
) -> None:
    rig = Rig(refdata)
    strat = rig.runner.add(Knocker, {})
    rig.runner.start()
    rig.tick(rig.clock.at(10, 0), 100.0)
    first = rig.sent[0]
    rig.runner.on_risk_event(
        wire.RiskEvent(
            strategy="knocker",
            kind="rejected",
            rule="reducing",
            reason="knocker is REDUCING: ...",
            intent_id=first.intent_id,
        )
    )
    assert strat.trading_state[0] == "reducing"
    assert "risk reducing:" in strat.heard[0].reason  # type: ignore[attr-defined]
    rig.tick(rig.clock.at(10, 1), 100.0)
    assert len(rig.sent) == 1
    # risk's heartbeat says it is active (a new day): entries go
    rig.runner.sync_states("active", {}, {})
    rig.tick(rig.clock.at(10, 2), 100.0)
    assert len(rig.sent) == 2
    # ... and a heartbeat that says halted holds them, without any event
    rig.runner.sync_states("active", {"knocker": "halted"}, {"knocker": "by hand"})
    rig.tick(rig.clock.at(10, 3), 100.0)
    assert len(rig.sent) == 2 and strat.trading_state == ("halted", "knocker is HALTED: by hand")


def test_a_rate_limit_refusal_backs_entries_off(refdata: RefData) -> None:
    rig = Rig(refdata)
    rig.runner.add(Knocker, {})
    rig.runner.start()
    rig.tick(rig.clock.at(10, 0), 100.0)

    def refuse() -> None:
        rig.runner.on_risk_event(
            wire.RiskEvent(
                strategy="knocker",
                kind="rejected",
                rule="order_rate",
                reason="more than 5 orders in one second",
                intent_id=rig.sent[-1].intent_id,
            )
        )

    refuse()
    rig.tick(rig.clock.at(10, 0, 0.5), 100.0)
    assert len(rig.sent) == 1  # within the 1 s backoff
    rig.tick(rig.clock.at(10, 0, 1.1), 100.0)
    assert len(rig.sent) == 2
    refuse()  # again at once: 2 s now
    rig.tick(rig.clock.at(10, 0, 2.5), 100.0)
    assert len(rig.sent) == 2
    rig.tick(rig.clock.at(10, 0, 3.2), 100.0)
    assert len(rig.sent) == 3
    rig.ack(rig.sent[-1])  # risk let one through: the backoff is over
    assert not rig.runner.gate.backoff


def test_a_burst_refused_together_is_one_backoff_said_once(refdata: RefData) -> None:
    """Ten entries in flight when the first refusal comes back (ten stocks crossing on one
    bar): their refusals are one episode: a 1 s backoff and one line, not 30 s and ten."""
    rig = Rig(refdata)
    strat = rig.runner.add(Knocker, {})
    rig.runner.start()
    for k in range(10):
        rig.tick(rig.clock.at(10, 0, k / 100), 100.0)
    assert len(rig.sent) == 10
    for sent in rig.sent:
        rig.runner.on_risk_event(
            wire.RiskEvent(
                strategy="knocker",
                kind="rejected",
                rule="order_rate_minute",
                reason="more than 60 orders in one minute",
                intent_id=sent.intent_id,
            )
        )
    assert rig.runner.gate.backoff["knocker"].last_s == 1.0
    for k in range(5):
        rig.tick(rig.clock.at(10, 0, 0.2 + k / 10), 100.0)
    assert len(rig.sent) == 10  # held within the 1 s
    held = [u for u in strat.heard if "held by the engine" in u.reason]  # type: ignore[attr-defined]
    assert len(held) == 1 and "entries wait 1s" in held[0].reason
    rig.tick(rig.clock.at(10, 0, 1.2), 100.0)
    assert len(rig.sent) == 11  # the backoff is over


class Follower(BaseStrategy):
    """Targets ``self.want`` shares of SBIN on each tick, with a 10 % band."""

    name = "follower"

    def on_start(self) -> None:
        self.want = 0
        self.subscribe_ticks("NSE", "SBIN")

    def on_tick(self, tick: wire.Tick) -> None:
        self.target_position("NSE", "SBIN", self.want, min_pct=10.0, min_change=2)


def test_target_position_with_a_band(refdata: RefData) -> None:
    rig = Rig(refdata)
    strat = rig.runner.add(Follower, {})
    rig.runner.start()

    def to(want: int, s: int) -> list[int]:
        strat.want = want  # type: ignore[attr-defined]
        before = len(rig.sent)
        rig.tick(rig.clock.at(10, 1, s), 800.0, symbol="SBIN", exchange="NSE")
        new = rig.sent[before:]
        for i in new:
            rig.fill(i, i.quantity, 800.0)
        return [i.quantity if i.action == "BUY" else -i.quantity for i in new]

    assert to(100, 0) == [100]  # in from flat: always
    assert to(101, 1) == [] and to(98, 2) == []  # within 10 % (and 2 shares)
    assert to(112, 3) == [12]  # outside it
    assert to(-5, 4) == [-117]  # turning round: always
    assert to(0, 5) == [5]  # flat: always


def test_target_position_names_a_target_or_band_of_the_wrong_kind(refdata: RefData) -> None:
    """Checked by name in both builds (``engine/helpers.py`` runs compiled, where a typed
    parameter would refuse a float with "int object expected", and interpreted, where the
    float went on to the order's check, or nowhere when it equalled the position)."""
    rig = Rig(refdata)
    strat = rig.runner.add(Follower, {})
    rig.runner.start()
    with pytest.raises(ValueError, match=r"target must be a whole number, got 0\.0"):
        strat.target_position("NSE", "SBIN", 0.0)  # type: ignore[arg-type]  # what is asked
    with pytest.raises(ValueError, match="min_pct must be a finite number, got 'ten'"):
        strat.target_position("NSE", "SBIN", 10, min_pct="ten")  # type: ignore[arg-type]
    assert rig.sent == []
    assert strat.target_position("NSE", "SBIN", 10, min_pct=10, min_change=2.0) is not None
    assert [(i.action, i.quantity) for i in rig.sent] == [("BUY", 10)]
