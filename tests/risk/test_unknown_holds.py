"""Halts that lift once resolved, and intents with an age (issue 38).

A strategy whose order is unknown at the broker is halted by risk and returns by itself to
the state it had once every such order is resolved; more than ``max_unknown_halts`` in a
day keep it halted for a person; an operator's word ends the hold. An intent decided
longer ago than ``max_intent_age_s`` of market time is refused as stale, the whole of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import RefData
from mytrading.domain.trading_states import describe, effective
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.charges import load_charges
from mytrading.risk.core import RiskCore
from mytrading.risk.limits import LimitBook, Limits, StackLimits
from mytrading.risk.orders import decide
from mytrading.risk.rules import Rejection
from mytrading.risk.state import StateStore
from mytrading.settings import PROJECT_ROOT
from tests.risk.test_risk_core import NS, Broker, LivePorts
from tests.risk.test_risk_rules import LIMITS, at, intent


def core(refdata: RefData, limits: Limits, now: list[datetime], speed: float = 1.0) -> RiskCore:
    ports = LivePorts(Broker())
    return RiskCore(
        refdata,
        LimitBook(limits, {}, StackLimits()),
        None,
        load_charges(PROJECT_ROOT / "config"),
        Accounts(by_name={}),
        ports,
        lambda: now[0],
        speed=speed,
    )


def unknown(value: str, oid: str, strategy: str = "s", why: str = "") -> wire.Command:
    return wire.Command(
        command="unknown", value=value, target=strategy, ref=oid, reason=why, issued_by="router"
    )


def test_a_strategy_halted_by_an_unknown_order_resumes_by_itself(refdata: RefData) -> None:
    now = [at(10, 0)]
    r = core(refdata, LIMITS, now)
    r.on_command(wire.Command(command="state", value="reducing", target="s", reason="by hand"))
    fut = intent().symbol
    r.book.on_approved("s.1", ("s", "NFO", fut), 65, entry=True)  # working, as risk sees it
    r.on_command(unknown("open", "s.1", why="placeorder: HTTP 502"))
    clock = [0.0]
    r.monotonic = lambda: clock[0]
    for _ in range(8):  # a halted book's entries are cancelled, but not the unknown one:
        clock[0] += 6.0  # the router is looking for it
        r.enforce_halt()
    assert [o for o in r.ports.orders if o.op == "cancel"] == []  # type: ignore[attr-defined]
    r.on_command(unknown("open", "s.2", why="timeout"))
    states = r.book.states
    assert states.of("s") == "halted" and states.holds["s"].orders == ["s.1", "s.2"]
    d = states.as_dict()
    assert "s.1 unknown at the broker" in describe(d, "s")
    assert "resumes by itself when s.1, s.2 is resolved" in describe(d, "s")
    # entries refused meanwhile, exits pass
    got = decide(intent(65, "BUY"), r.book, refdata, LIMITS, now[0], 0, None)
    assert isinstance(got, Rejection) and got.rule == "halted"
    r.on_command(unknown("resolved", "s.1", why="found at the broker as B1: adopted"))
    assert states.of("s") == "halted"  # one still unknown
    r.on_command(unknown("resolved", "s.1"))  # a repeat changes nothing
    r.on_command(unknown("resolved", "s.2", why="certainly never placed"))
    assert states.of("s") == "reducing" and "s" not in states.holds  # what it was before
    events = [(e.kind, e.rule, e.action) for e in r.ports.events]  # type: ignore[attr-defined]
    assert events[-2:] == [
        ("state", "unknown_order", "halted"),
        ("state", "unknown_order", "reducing"),
    ]
    # back to REDUCING for the reason it was REDUCING, set by whom it was: a person reading
    # the morning check sees "by hand", not the hold that came and went (the simulator
    # found the router named as having set a max-loss REDUCING, seed 6)
    assert (states.why["s"].reason, states.why["s"].by) == ("by hand", "operator")


def test_too_many_in_a_day_keep_it_halted_for_a_person(refdata: RefData) -> None:
    now = [at(10, 0)]
    r = core(refdata, LIMITS.model_copy(update={"max_unknown_halts": 2}), now)
    for k in (1, 2):
        r.on_command(unknown("open", f"s.{k}"))
        r.on_command(unknown("resolved", f"s.{k}"))
        assert r.book.states.of("s") == "active"
    r.on_command(unknown("open", "s.3"))
    assert r.book.states.holds["s"].for_person
    assert "the 3th today, more than 2" in r.book.states.why["s"].reason
    r.on_command(unknown("resolved", "s.3"))
    assert r.book.states.of("s") == "halted"  # a person resumes it
    d = r.book.states.as_dict()
    assert "`main.py risk state active --strategy s`" in describe(d, "s")
    # the next day counts afresh
    r.step()
    now[0] = now[0] + timedelta(days=1)
    r.step()
    r.on_command(wire.Command(command="state", value="active", target="s", reason="checked"))
    r.on_command(unknown("open", "s.4"))
    r.on_command(unknown("resolved", "s.4"))
    assert r.book.states.of("s") == "active"


def test_an_operators_state_ends_the_hold(refdata: RefData) -> None:
    now = [at(10, 0)]
    r = core(refdata, LIMITS, now)
    r.on_command(unknown("open", "s.1"))
    r.on_command(wire.Command(command="state", value="halted", target="s", reason="I look"))
    assert "s" not in r.book.states.holds
    r.on_command(unknown("resolved", "s.1"))
    assert r.book.states.of("s") == "halted"  # the operator's word stands
    with pytest.raises(ValueError, match="unknown-order"):
        r.on_command(unknown("maybe", "s.1"))


def test_holds_survive_a_restart_of_risk(tmp_path: Path, refdata: RefData) -> None:
    now = [at(10, 0)]
    r = core(refdata, LIMITS, now)
    r.on_command(unknown("open", "s.1"))
    store = StateStore(tmp_path / "risk_state.json")
    store.save(r.book.states, "test")
    again, problem = store.load()
    assert not problem and again.holds["s"].orders == ["s.1"]
    r2 = core(refdata, LIMITS, now)
    r2.book.states = again
    r2.on_command(unknown("resolved", "s.1"))
    assert r2.book.states.of("s") == "active"


def test_a_stale_intent_is_refused_whole_and_the_limit_scales_with_a_fast_clock(
    refdata: RefData,
) -> None:
    book = RiskBook()
    now = at(10, 0, 30)
    decided = int((now - timedelta(seconds=30)).timestamp() * 1e9)
    late = intent(65, "BUY", decided_ns=decided)
    got = decide(late, book, refdata, LIMITS, now, 0, None)
    assert isinstance(got, Rejection) and got.rule == "stale_intent", got
    assert "30.0s of market time ago" in got.reason
    # a reversal's closing part is not cut out of a stale intent: the whole is refused
    book.positions[("s", "NFO", late.symbol)] = -65
    got = decide(intent(130, "BUY", decided_ns=decided), book, refdata, LIMITS, now, 0, None)
    assert isinstance(got, Rejection) and got.rule == "stale_intent"
    fresh = intent(65, "BUY", decided_ns=int((now - timedelta(seconds=1)).timestamp() * 1e9))
    assert not isinstance(decide(fresh, RiskBook(), refdata, LIMITS, now, 0, None), Rejection)
    # on a demo clock at 300x, 30 market seconds are 0.1 s of the wall: not stale
    assert not isinstance(
        decide(late, RiskBook(), refdata, LIMITS, now, 0, None, speed=300.0), Rejection
    )
    # an exit (a protective stop) is never refused for its age: it only lowers risk
    book = RiskBook()
    book.positions[("s", "NFO", late.symbol)] = 65
    stop = intent(65, "SELL", decided_ns=decided, pricetype="SL-M", trigger_price=90.0)
    got = decide(stop, book, refdata, LIMITS, now, 0, None)
    assert not (isinstance(got, Rejection) and got.rule == "stale_intent"), got
    # an intent that does not say when it was decided is not judged by age; 0 turns it off
    assert not isinstance(
        decide(intent(65, "BUY"), RiskBook(), refdata, LIMITS, now, 0, None), Rejection
    )
    off = LIMITS.model_copy(update={"max_intent_age_s": 0.0})
    assert not isinstance(decide(late, RiskBook(), refdata, off, now, 0, None), Rejection)


def test_the_effective_state_and_its_words() -> None:
    why = {"reason": "daily loss limit", "by": "risk", "at": "2026-11-23T14:20:00+05:30"}
    d = {"stack": "halted", "strategies": {"a": "reducing"}, "why": {"*": why}}
    assert effective(d, "a") == "halted" and effective({"stack": "active"}, "a") == "active"
    assert describe(d, "a") == (
        "HALTED (the stack): daily loss limit (by risk, at 2026-11-23 14:20); "
        "`main.py kill-switch off`"
    )
    assert describe({"stack": "active"}, "a") == "trading"


def test_repeated_refusals_are_one_line_per_rule_and_strategy_a_minute(refdata: RefData) -> None:
    import structlog

    now = [at(10, 0)]
    t = [0.0]
    r = core(refdata, LIMITS, now)
    r.monotonic = lambda: t[0]
    r.on_funds("main", 1e7, 0)
    r.on_command(wire.Command(command="kill_switch", value="on", reason="test"))
    with structlog.testing.capture_logs() as logs:
        for k in range(120):  # two a second for a minute
            t[0] = k * 0.5
            r.on_intent(intent(65, "BUY"))
        t[0] = 61.0
        r.step()
    lines = [e for e in logs if e["event"] in ("intent rejected", "refusals repeated")]
    assert [(e["event"], e.get("count")) for e in lines] == [
        ("intent rejected", None),
        ("refusals repeated", 119),
    ]
    assert lines[1]["rule"] == "kill_switch" and lines[1]["strategy"] == "s"
    assert r.counts.rejected["kill_switch"] == 120  # every one counted and published


def test_a_follower_off_its_lead_is_brought_back_once_its_broker_answers(
    refdata: RefData,
) -> None:
    """Issue 38: the follower's copy was refused while its broker was away; risk brings
    it to lead x size through the rules once its broker reports funds again, after the
    difference held for a few seconds with nothing working; a halted follower book is
    only ever reduced."""
    from mytrading.domain.accounts import Account, Follow
    from mytrading.risk.mirror import CONVERGE_AFTER_S, FRESH_NS

    now = [at(10, 0)]
    wall = [10**18]
    accounts = Accounts(
        by_name={"second": Account("second", "http://x", "ws://x", "k", 10.0, 1.0)},
        follows={"s": (Follow("second", multiple=2.0),)},
    )
    ports = LivePorts(Broker())
    r = RiskCore(refdata, LimitBook(LIMITS, {}, StackLimits()), None,
                   load_charges(PROJECT_ROOT / "config"), accounts, ports, lambda: now[0],
                   wall_ns=lambda: wall[0])  # fmt: skip
    fut = intent().symbol
    r.book.ltp[("NFO", fut)] = 24_000.0
    r.book.positions[("s", "NFO", fut)] = 65  # the lead holds a lot; the follower none
    r.on_funds("main", 1e7, wall[0])
    r.on_funds("second", 1e7, wall[0] - FRESH_NS - 1)  # its broker away
    assert r.mirror.differences(r.book) == {"s@second": {fut: "0/130"}}
    for _ in range(5):
        wall[0] += NS
        r.step()
    assert ports.orders == []  # nothing while it does not answer
    r.on_funds("second", 1e7, wall[0])  # back
    r.step()  # the difference seen
    wall[0] += int(CONVERGE_AFTER_S * NS) + 1
    r.on_funds("second", 1e7, wall[0])
    r.step()
    (o,) = ports.orders
    assert (o.strategy, o.account, o.action, o.quantity, o.exit) == (
        "s@second",
        "second",
        "BUY",
        130,
        False,
    )
    r.book.positions[("s@second", "NFO", fut)] = 130
    r.book.forget(o.order_id)
    wall[0] += 10 * NS
    r.step()
    assert len(ports.orders) == 1 and r.mirror.differences(r.book) == {}
    # the lead went flat while the follower's broker was away: the follower follows it
    # flat, even with its book halted (a reducing order passes)
    r.book.positions[("s", "NFO", fut)] = 0
    r.book.states.set("s@second", "halted")
    r.on_funds("second", 1e7, wall[0])
    r.step()
    wall[0] += int(CONVERGE_AFTER_S * NS) + 1
    r.on_funds("second", 1e7, wall[0])
    r.step()
    assert (ports.orders[-1].action, ports.orders[-1].quantity, ports.orders[-1].exit) == (
        "SELL",
        130,
        True,
    )


def test_a_routers_census_at_its_start_releases_the_holds_it_no_longer_has(
    refdata: RefData,
) -> None:
    """A router says at its start every order still unknown to it (``census``): a hold
    for any other order is released as resolved (an earlier router resolved it and died
    before risk heard it), one it names is kept, and an empty census releases them all."""
    now = [at(10, 0)]
    r = core(refdata, LIMITS, now)
    r.on_command(unknown("open", "s.1"))
    r.on_command(unknown("open", "s.2"))
    r.on_command(unknown("open", "t.1", strategy="t"))
    states = r.book.states
    census = wire.Command(command="unknown", value="census", target="*", ref="s.2",
                          issued_by="router")  # fmt: skip
    r.on_command(census)
    assert states.of("t") == "active" and "t" not in states.holds
    assert states.of("s") == "halted" and states.holds["s"].orders == ["s.2"]
    r.on_command(wire.Command(command="unknown", value="census", target="*", ref=""))
    assert states.of("s") == "active" and states.holds == {}


def test_an_exit_another_working_exit_covers_is_sent_as_an_entry(refdata: RefData) -> None:
    """Two SELLs of a long 65, approved while neither has filled (a burst of webhook
    alerts, the router down): the first is an exit, the second would sell short once both
    fill, so it goes as an entry, one a halt cancels. The simulator's seed 100 at 180x:
    both went as exits, the kill switch cancelled the BUYs between them, and the second
    took the book short after the switch."""
    from mytrading.risk.orders import approved_order
    from mytrading.risk.rules import Approval

    book = RiskBook()
    key = ("s", "NFO", intent().symbol)
    book.positions[key] = 65
    first = intent(65, "SELL")
    o1 = approved_order(first, Approval(0.0, 0.0, 65, 0.0), book, "risk")  # type: ignore[arg-type]
    book.on_approved(o1.order_id, key, -65, entry=not o1.exit)
    second = intent(65, "SELL")
    o2 = approved_order(second, Approval(0.0, 0.0, 65, 0.0), book, "risk")  # type: ignore[arg-type]
    assert o1.exit and not o2.exit
    book.on_approved(o2.order_id, key, -65, entry=not o2.exit)
    assert book.entries == {o2.order_id}
