"""Scenarios on the simulated stack: the daemons' own cores through a scripted day (no
random faults, no operator), each step at a moment of the day, and every invariant
checked at its end. What the real-process tests did for logic, on a virtual clock: the
same day every run, whatever the machine's load."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from mytrading.domain.refdata import RefData
from mytrading.simulation.faults import CRASH_POINTS
from mytrading.simulation.run import run_seed
from mytrading.simulation.stack import Options

pytestmark = pytest.mark.integration  # a trading day of the whole stack


def router_books(stack: Any) -> dict[tuple[str, str, str], int]:
    net: dict[tuple[str, str, str], int] = defaultdict(int)
    for (strategy, ex, sym, _prod, _acct), q in stack.cores["router"].books.ledger.net().items():
        net[(strategy, ex, sym)] += q
    return {k: q for k, q in net.items() if q}


def lose_replies(stack: Any) -> None:
    """The next placement's reply lost, and the books unread: its order is not found at
    once (unknown until the books read again)."""
    stack.main.faults.lose_next = 1
    stack.main.faults.garble = 1.0


def unknown_then(watch: Any, seen: dict[str, Any], key: str) -> tuple[Any, ...]:
    """A script: a lost reply at 9 s (an order unknown), ``watch`` every 0.1 s after it,
    and at 28 s risk's trading state of the strategy ``seen[key]`` names in
    ``seen["after"]``."""

    def after(stack: Any) -> None:
        seen["after"] = stack.cores["risk"].core.book.states.of(seen.get(key, ""))

    return (
        (9.0, lose_replies),
        *((9.0 + i * 0.1, watch) for i in range(1, 120)),
        (28.0, after),
    )


def router_down_then(halt: Any, after: Any) -> Options:
    """Seed 3's day with the router killed at 9.0 s as a webhook BUY comes (risk approves
    it for a router not yet missed), ``halt`` at 9.3 s, the router back at 10.5 s and
    ``after`` at 14.0 s."""

    def kill_router_then_alert(stack: Any) -> None:
        stack.kill_daemon("router")
        stack.operator._alert("BUY")

    script = (
        (9.0, kill_router_then_alert),
        (9.3, halt),
        (10.5, lambda stack: stack.start_daemon("router")),
        (14.0, after),
    )
    return Options(faults=False, operator=False, script=script)


def test_a_risk_restarted_without_the_routers_answer_waits_for_its_positions(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 167: risk killed and started again while the router's
    answers were being lost; it took "no snapshot" for "no positions", started flat and
    judged the day on an empty book (caps, exits and P&L all wrong). Now it asks again,
    holding intents and leaving fills to the snapshot, and takes the router's positions
    once an answer comes."""
    seen: dict[str, Any] = {}

    def kill_risk_and_lose_answers(stack: Any) -> None:
        seen["held"] = router_books(stack)
        stack.kill_daemon("risk")
        stack.bus.faults.rpc_lost = 1.0

    def during(stack: Any) -> None:
        risk = stack.cores["risk"]
        seen["during"] = (risk.restored, {k: q for k, q in risk.book.positions.items() if q})

    def answers_again(stack: Any) -> None:
        stack.bus.faults.rpc_lost = 0.0

    def after(stack: Any) -> None:
        risk = stack.cores["risk"]
        seen["after"] = (risk.restored, {k: q for k, q in risk.book.positions.items() if q})
        seen["router"] = router_books(stack)

    script = (
        (12.0, kill_risk_and_lose_answers),
        (13.0, lambda stack: stack.start_daemon("risk")),
        (16.0, during),
        (17.0, answers_again),
        (20.0, after),
    )
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen["held"], "no position to lose: the scenario proves nothing"
    assert seen["during"] == (False, {})  # nothing taken for granted while unanswered
    restored, positions = seen["after"]
    assert restored and positions == seen["router"]
    assert r.violations == [], [v.line() for v in r.violations]


def test_an_engine_restarted_while_the_routers_answers_are_lost_asks_again(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 610: the engine restarted while the router's answers were
    being lost, took no snapshot for none, and started every strategy flat while the
    router held their positions (never closed, bought again). Now it asks again."""
    seen: dict[str, Any] = {}

    def restart_engine_losing_answers(stack: Any) -> None:
        seen["held"] = router_books(stack)
        stack.kill_daemon("engine")
        stack.bus.faults.rpc_lost = 0.7  # (a start's questions are asked at one instant)
        stack.world.after(0.2, lambda: stack.start_daemon("engine"))
        stack.world.after(1.0, lambda: setattr(stack.bus.faults, "rpc_lost", 0.0))

    script = ((12.0, restart_engine_losing_answers),)
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen["held"], "no position to lose: the scenario proves nothing"
    assert r.violations == [], [v.line() for v in r.violations]


def test_an_order_unknown_before_a_router_restart_and_found_after_it_releases_its_strategy(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 163: an order's placement timed out (unknown: its strategy
    halted through risk), the router was killed, and the restarted router found the order
    at the broker but never said so to risk: the strategy stayed HALTED for the day with
    no fault left to explain it. Now the recovery that finds it releases the halt."""
    seen: dict[str, Any] = {}

    def kill_once_unknown(stack: Any) -> None:
        if "unknown" in seen or not stack.alive("router"):
            return
        table = stack.cores["router"].table
        unknown = [jo for jo in table.orders.values() if jo.state.value == "unknown"]
        if unknown:
            seen["unknown"] = unknown[0].order.strategy
            stack.main.faults.garble = 0.0
            stack.restart_daemon("router", 1.0)

    def after(stack: Any) -> None:
        states = stack.cores["risk"].core.book.states
        seen["after"] = states.of(seen.get("unknown", ""))

    script = (
        (9.0, lose_replies),
        *((9.0 + i * 0.25, kill_once_unknown) for i in range(1, 40)),
        (25.0, after),
    )
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert "unknown" in seen, "no order went unknown: the scenario proves nothing"
    assert seen["after"] == "active"
    assert r.violations == [], [v.line() for v in r.violations]


def test_an_unknown_order_resolved_while_risk_is_down_by_a_router_that_then_dies_releases(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 2 at 240x: an order went unknown (its strategy halted through
    risk), risk was killed, the router found the order while risk was down and kept the
    release in memory for it, and was killed before risk came back: the restarted router
    had nothing unknown to say, and the strategy stayed HALTED for the day. Now a router
    says at its start which orders are unknown, and risk releases a hold for any other."""
    seen: dict[str, Any] = {}

    def watch(stack: Any) -> None:
        if "done" in seen or not stack.alive("router"):
            return
        router = stack.cores["router"]
        if "unknown" not in seen:
            unknown = [jo for jo in router.table.orders.values() if jo.state.value == "unknown"]
            if unknown and stack.cores["risk"].core.book.states.holds:
                seen["unknown"] = unknown[0].order.strategy
                stack.kill_daemon("risk")
                stack.main.faults.garble = 0.0  # the router finds it now, with risk down
            return
        if not router.unknown_ids and stack.alive("router"):
            seen["done"] = len(router.halts)  # the release, waiting for risk
            stack.kill_daemon("router")
            stack.world.after(0.5, lambda: stack.start_daemon("risk"))
            stack.world.after(2.0, lambda: stack.start_daemon("router"))

    script = unknown_then(watch, seen, "unknown")
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert "unknown" in seen, "no order went unknown: the scenario proves nothing"
    assert seen.get("done") == 1, "the release did not wait for risk: it proves nothing"
    assert seen["after"] == "active"
    assert r.violations == [], [v.line() for v in r.violations]


def test_a_cancel_of_a_queued_entry_ends_it_with_the_journal_refusing_writes(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 157 at 180x: risk's cancel of an entry still queued at the
    router (the kill switch's) came while the disk refused the journal; the router refused
    the cancel as it refuses new orders then, and sent the entry once the disk took writes
    again, after the kill switch. An unsent order's cancel needs no broker and no disk
    first: it ends the order there."""
    import msgspec

    seen: dict[str, Any] = {}

    def queue_then_cancel(stack: Any) -> None:
        router = stack.cores["router"]
        placed = [jo.order for jo in router.table.orders.values() if jo.order.op == "place"]
        model = next(o for o in placed if o.strategy == "sma_crossover")
        entry = msgspec.structs.replace(
            model, order_id="sma_crossover.t-entry", intent_id="t-entry", exit=False, src="risk"
        )
        cancel = msgspec.structs.replace(
            entry, order_id="sma_crossover.t-cancel", intent_id="t-cancel", op="cancel",
            ref_order_id=entry.order_id,
        )  # fmt: skip

        def read() -> None:  # one read of the order pipe: the entry, the disk fills, the cancel
            router._on_order("pipe.orders", entry)
            stack.disk_full = True
            router.table.journal.fault = "journal write refused: No space left on device"
            router._on_order("pipe.orders", cancel)
            router._after_orders()

        stack.hosts["router"].run(read)

    def disk_back(stack: Any) -> None:
        stack.disk_full = False

    def after(stack: Any) -> None:
        table = stack.cores["router"].table
        seen["entry"] = table.get("sma_crossover.t-entry")
        seen["cancel"] = table.get("sma_crossover.t-cancel")

    script = ((14.0, queue_then_cancel), (15.5, disk_back), (20.0, after))
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    entry, cancel = seen["entry"], seen["cancel"]
    assert entry.state.value == "cancelled" and entry.broker_id == "", entry
    assert cancel.state.value == "complete", cancel
    assert r.violations == [], [v.line() for v in r.violations]


def test_a_batch_stops_at_a_lost_reply_and_its_rest_goes_next_round(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 326 at 180x: a batch of ten placements each lost its reply;
    each cost the lane a timeout, one after another, and the account's fills and updates
    waited past the day's end (fills missing, positions apart). Now the rest of a batch
    after an unanswered call is held and sent in the next round, each order once."""
    seen: dict[str, Any] = {}

    def lose_all(stack: Any) -> None:
        stack.main.faults.lose_place = 1.0

    def answer_again(stack: Any) -> None:
        stack.main.faults.lose_place = 0.0
        seen["held"] = stack.cores["router"].counts["held_after_unanswered"]

    script = ((3.0, lose_all), (20.0, answer_again))
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen["held"] > 0, "no batch met a lost reply: the scenario proves nothing"
    assert r.violations == [], [v.line() for v in r.violations]


def test_an_unknown_orders_release_lost_with_a_killed_risk_is_said_again(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 532: the router said an unknown order was resolved and risk
    was killed before it read it; the restarted risk kept the strategy HALTED for the day.
    Now the router says its unknown orders again (the census) when risk restarts."""
    seen: dict[str, Any] = {}

    def watch(stack: Any) -> None:
        if "armed" in seen or not stack.alive("router"):
            return
        router = stack.cores["router"]
        unknown = [jo for jo in router.table.orders.values() if jo.state.value == "unknown"]
        if not (unknown and stack.cores["risk"].core.book.states.holds):
            return
        seen["armed"] = seen["strategy"] = unknown[0].order.strategy
        put = router.halts.put

        def put_then_kill_risk(cmd: Any) -> bool:
            sent = put(cmd)
            if cmd.value == "resolved" and "killed" not in seen:
                seen["killed"] = True  # risk dies with the release unread in its socket
                stack.kill_daemon("risk")
                stack.world.after(1.0, lambda: stack.start_daemon("risk"))
            return sent

        router.halts.put = put_then_kill_risk
        stack.main.faults.garble = 0.0  # the router finds it now

    script = unknown_then(watch, seen, "strategy")
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen.get("killed"), "no release met a killed risk: the scenario proves nothing"
    assert seen["after"] == "active"
    assert r.violations == [], [v.line() for v in r.violations]


def test_an_entry_approved_as_the_router_died_does_not_go_after_the_kill_switch(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 163: risk approved an entry a moment after the router was
    killed (before its heartbeats were missed), the operator turned the kill switch on,
    and the restarted router was handed the entry again: it reached the broker after the
    switch was confirmed. Now an entry still waiting for the router is withdrawn when its
    book halts, and one sent to a router that died is not sent again: risk asks the
    restarted router which orders it holds and withdraws, refused by name, the halted
    entries it never had."""
    seen: dict[str, Any] = {}

    def kill_switch(stack: Any) -> None:
        risk = stack.cores["risk"]
        out = risk.outbox
        seen["in_flight"] = [o for o in [*out.unacked_messages(), *out.waiting()] if not o.exit]
        stack.operator._command("kill_switch", "on", None)

    def after(stack: Any) -> None:
        seen["rejected"] = stack.cores["risk"].core.counts.rejected.get("router_unavailable", 0)

    r = run_seed(3, tmp_path, refdata, router_down_then(kill_switch, after))
    assert seen["in_flight"], "no entry in flight to the dead router: the scenario proves nothing"
    assert seen["rejected"] >= 1
    assert r.violations == [], [v.line() for v in r.violations]


def test_an_entry_waiting_for_the_router_is_not_sent_after_risk_halts_on_its_own(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 873: entries approved a moment after the router was killed
    waited in risk's outbox; risk then halted the stack by its own rule (the daily loss
    limit, not an operator's command), and the restarted router was handed the entries
    before their cancels: one reached the broker after the halt. An entry that waited is
    asked, as it is about to go, whether its book is halted now, and is withdrawn."""
    from mytrading.risk.monitor import Trigger

    seen: dict[str, Any] = {}

    def daily_loss(stack: Any) -> None:
        risk = stack.cores["risk"]
        seen["waiting"] = [o.order_id for o in risk.outbox.waiting() if not o.exit]
        risk.core._act(Trigger("daily_loss", "*", -1.0, -2.0, (), "daily loss limit reached"))

    def after(stack: Any) -> None:
        seen["router_holds"] = set(stack.cores["router"].table.orders)
        seen["rejected"] = stack.cores["risk"].core.counts.rejected.get("router_unavailable", 0)

    r = run_seed(3, tmp_path, refdata, router_down_then(daily_loss, after))
    assert seen["waiting"], "no entry waited for the dead router: the scenario proves nothing"
    assert not set(seen["waiting"]) & seen["router_holds"]
    assert seen["rejected"] >= len(seen["waiting"])
    assert r.violations == [], [v.line() for v in r.violations]


def risk_restarted_losing_its_fills(
    refdata: RefData, tmp_path: Path, lose: int
) -> tuple[dict[str, Any], Any]:
    """Seed 3's day with risk killed at 12 s and started again, and the router's answers
    to its first ``lose`` questions for the day's fills lost; what it saw, and the result."""
    from mytrading.messaging import wire

    seen: dict[str, Any] = {"lost": 0}

    def realised(stack: Any) -> float:
        books = stack.cores["risk"].post.books.values()
        return round(sum(p.realized for b in books for p in b.ledger.positions.values()), 2)

    def kill_risk_losing_its_fills(stack: Any) -> None:
        seen["before"] = realised(stack)
        stack.kill_daemon("risk")
        bus = stack.bus
        answer = bus.answer

        def losing_fills(name: str, raw: bytes, asker: Any = None) -> bytes | None:
            q = wire.decode_body(raw)
            by_risk = asker is not None and asker.name == "risk"
            fills = isinstance(q, wire.BrokerQuery) and q.kind == "fills"
            if by_risk and fills and seen["lost"] < lose:
                seen["lost"] += 1
                return None
            return answer(name, raw, asker)

        bus.answer = losing_fills
        stack.world.after(0.5, lambda: stack.start_daemon("risk"))

    def after(stack: Any) -> None:
        seen["restored"] = stack.cores["risk"].restored

    script = ((12.0, kill_risk_losing_its_fills), (32.0, after))
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen["before"] != 0, "nothing realised before the kill: the scenario proves nothing"
    return seen, r


def test_a_restarted_risk_whose_fills_answer_is_lost_asks_again_and_keeps_the_days_pnl(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 481: risk restarted, the router's answer with the day's fills
    was lost, and risk went on "from average prices": the day's realised P&L gone (the
    daily loss limit counting from zero) and a position restarted at an average rounded
    to paise. Now risk asks again, intents waiting, and restores the day's P&L."""
    seen, r = risk_restarted_losing_its_fills(refdata, tmp_path, 2)
    # the day's P&L whole at the close (the pnl invariant: risk's against the broker's)
    assert r.violations == [], [v.line() for v in r.violations]
    assert seen["lost"] == 2 and seen["restored"]  # asked again after each lost answer


def test_a_restarted_risk_that_never_gets_its_fills_goes_on_and_says_so(
    refdata: RefData, tmp_path: Path
) -> None:
    """Every answer with the day's fills lost: risk does not hold intents for ever. After
    ``FILLS_TRIES`` more asks it takes the positions at their average prices and counts an
    error an operator sees; its realised P&L then starts from that moment (the ``pnl``
    invariant says so at the close, and nothing else breaks)."""
    from mytrading.risk.daemon import FILLS_TRIES

    seen, r = risk_restarted_losing_its_fills(refdata, tmp_path, 1_000)
    assert seen["lost"] == FILLS_TRIES + 1 and seen["restored"]
    said = [s.event for s in r.said if s.daemon == "risk"]
    assert any(e.startswith("no fills from the router in") for e in said), said
    assert {v.invariant for v in r.violations} == {"pnl"}, [v.line() for v in r.violations]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_the_router_crashing_at_each_step_of_an_orders_life_loses_and_repeats_nothing(
    refdata: RefData, tmp_path: Path, point: str
) -> None:
    """``tests/router/test_journal_crash.py``'s cases on the simulator: the router dies
    (``RouterDaemon._crash``, as ``kill -9``: the journal as the disk has it, nothing after)
    at the next order to reach ``point`` and is started again a second later. Every
    invariant holds through the day: no order sent twice, every fill on the bus once,
    positions the broker's, an order it cannot match unknown and then resolved."""
    seen: dict[str, Any] = {}

    def arm(stack: Any) -> None:
        stack.arm_crash(point, 1.0)

    def after(stack: Any) -> None:
        seen["armed"] = stack.crash_armed
        seen["started"] = stack.started["router"]
        seen["crashes"] = stack.world.crashes

    script = ((3.0, arm), (25.0, after))
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen["armed"] is None and seen["started"] == 2 and seen["crashes"] == 1, seen
    assert r.violations == [], [v.line() for v in r.violations]


def test_readers_restarted_while_the_router_could_not_read_a_position_book_wait_for_it(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 991: the router restarted while the broker's session had
    expired, could not read the position book, and called every position unconfirmed for
    the day; risk, restarted after it, left them all out of its books (its P&L and limits
    blind to them), and so would the engine and the webhook daemon. Now the router reads
    the book again once the session is back, and risk, the engine and the webhook daemon,
    restarted meanwhile, wait (intents held, no hook run, alerts queued) until it has,
    then take the positions: every fill booked by each, as the invariants check."""
    seen: dict[str, Any] = {}
    readers = ("risk", "engine", "signals")

    def session_expires_router_restarts(stack: Any) -> None:
        stack.main.server.session_expired = True
        stack.restart_daemon("router", 0.5)

    def readers_restart(stack: Any) -> None:
        seen["unread"] = set(stack.cores["router"].recovery.unread)
        for name in readers:
            stack.restart_daemon(name, 0.5)

    def while_unread(stack: Any) -> None:
        c = stack.cores
        seen["waiting"] = (c["risk"].restored, c["engine"].begun, c["signals"].restored)

    def session_back(stack: Any) -> None:
        stack.main.server.session_expired = False

    def after(stack: Any) -> None:
        c = stack.cores
        seen["restored"] = (c["risk"].restored, c["engine"].begun, c["signals"].restored)
        seen["waited"] = [c[name].unread.waits for name in readers]
        seen["unread_after"] = set(c["router"].recovery.unread)
        runner = c["engine"].runner
        seen["held"] = [n for n in runner.strategies if runner.holds(n)]

    script = (
        (10.0, session_expires_router_restarts),
        (11.5, readers_restart),
        (13.0, while_unread),
        (13.5, session_back),
        (22.0, after),
    )
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert seen["unread"] == {"main"}, "the router read the book: the scenario proves nothing"
    assert seen["waiting"] == (False, False, False), seen
    assert seen["restored"] == (True, True, True) and seen["unread_after"] == set(), seen
    assert all(w > 0 for w in seen["waited"]) and seen["held"], seen
    assert r.violations == [], [v.line() for v in r.violations]  # fills, pnl: books whole


def router_dies_reading_the_first_entry(stack: Any, seen: dict[str, Any]) -> None:
    """A webhook alert's entry is pushed by risk, and the router is killed the moment it is
    (``seen["sent"]``: its order id): sent, never read, never acked."""

    def on_push(src: Any, name: str, msg: Any) -> None:
        placing = getattr(msg, "op", "") == "place" and not getattr(msg, "exit", True)
        if src.name == "risk" and placing and "sent" not in seen:
            seen["sent"] = msg.order_id
            stack.world.at(stack.world.now_ns, lambda: stack.kill_daemon("router"))

    stack.bus.pipe_observers.append(on_push)
    stack.operator._alert("BUY")


def kill_switch_losing_answers(stack: Any) -> None:
    """The kill switch goes on, and the questions risk asks the router go unanswered."""
    stack.operator._command("kill_switch", "on", None)
    stack.bus.faults.rpc_lost = 1.0


def what_risk_left(stack: Any, seen: dict[str, Any]) -> None:
    """After the scenario: the entries risk still asks about, its refusals for a router
    that was not there, and the orders the router holds."""
    risk = stack.cores["risk"]
    seen["asking_after"] = list(risk._asking_about)
    seen["rejected"] = risk.core.counts.rejected.get("router_unavailable", 0)
    seen["router_holds"] = set(stack.cores["router"].table.orders)


def test_an_entry_the_router_died_holding_unread_is_asked_about_and_withdrawn(
    refdata: RefData, tmp_path: Path
) -> None:
    """The other half of seed 163: the entry was sent, and the router died with it unread
    in its socket (sent, never acked). The kill switch goes on while the router is down;
    when it is back, risk does not send the entry again: it asks the router which orders
    it holds (asking again while the router's answers are lost) and withdraws the one it
    never had, refused by name. Nothing reaches the broker after the switch."""
    seen: dict[str, Any] = {}

    def arm(stack: Any) -> None:
        router_dies_reading_the_first_entry(stack, seen)

    def kill_switch_and_lose_answers(stack: Any) -> None:
        risk = stack.cores["risk"]
        seen["unacked"] = [o.order_id for o in risk.outbox.unacked_messages()]
        kill_switch_losing_answers(stack)  # the first questions after the restart

    def answers_again(stack: Any) -> None:
        seen["asking"] = [o.order_id for o in stack.cores["risk"]._asking_about]
        stack.bus.faults.rpc_lost = 0.0

    script = (
        (9.0, arm),
        (9.5, kill_switch_and_lose_answers),
        (10.5, lambda stack: stack.start_daemon("router")),
        (14.0, answers_again),
        (18.0, lambda stack: what_risk_left(stack, seen)),
    )
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert "sent" in seen, "no entry sent: the scenario proves nothing"
    assert seen["sent"] in seen["unacked"]  # sent to the router that died, never answered
    assert seen["sent"] in seen["asking"]  # asked about, again, while unanswered
    assert seen["asking_after"] == [] and seen["rejected"] >= 1
    assert seen["sent"] not in seen["router_holds"]  # and the kill_switch invariant: no entry
    assert r.violations == [], [v.line() for v in r.violations]


def test_a_router_that_dies_again_while_risk_asks_about_an_entry_is_not_asked_until_back(
    refdata: RefData, tmp_path: Path
) -> None:
    """The case above with the router killed a second time while risk is still asking
    (its answers lost): risk notices the router is down and stops asking (each question
    to a dead router would hold its loop for a timeout), then asks the router that comes
    back and withdraws the entry. Before the simulated host counted a timer from the end
    of a blocking call, risk asking a dead router was held for ever and never noticed."""
    seen: dict[str, Any] = {}
    asks: list[tuple[int, str]] = []  # (when, whom) risk asked

    def arm(stack: Any) -> None:
        answer = stack.bus.answer

        def recorded(name: str, raw: bytes, asker: Any = None) -> bytes | None:
            if asker is not None and asker.name == "risk":
                asks.append((stack.world.now_ns, name))
            return answer(name, raw, asker)

        stack.bus.answer = recorded
        router_dies_reading_the_first_entry(stack, seen)

    def kill_again(stack: Any) -> None:
        seen["asking"] = [o.order_id for o in stack.cores["risk"]._asking_about]
        seen["killed_at"] = stack.world.now_ns
        stack.kill_daemon("router")

    def while_down(stack: Any) -> None:
        seen["router_up"] = stack.cores["risk"].peers["router"].up
        seen["still_asking"] = [o.order_id for o in stack.cores["risk"]._asking_about]
        seen["checked_at"] = stack.world.now_ns

    def back(stack: Any) -> None:
        stack.bus.faults.rpc_lost = 0.0
        stack.start_daemon("router")

    script = (
        (9.0, arm),
        (9.5, kill_switch_losing_answers),
        (10.5, lambda stack: stack.start_daemon("router")),
        (12.5, kill_again),
        (20.0, while_down),
        (20.5, back),
        (26.0, lambda stack: what_risk_left(stack, seen)),
    )
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert "sent" in seen, "no entry sent: the scenario proves nothing"
    assert seen["sent"] in seen["asking"]  # risk was asking when the router died again
    assert seen["router_up"] is False  # ... and noticed it was gone
    assert seen["still_asking"] == [seen["sent"]]  # still to be answered, not forgotten
    # once risk has seen it down (three missed beats and a timeout after the kill), it
    # asks the dead router nothing more
    quiet_from = seen["killed_at"] + 6_000_000_000
    assert [t for t, _ in asks if quiet_from <= t <= seen["checked_at"]] == []
    assert any(t > seen["checked_at"] for t, _ in asks)  # the router back: asked again
    assert seen["asking_after"] == [] and seen["rejected"] >= 1
    assert seen["sent"] not in seen["router_holds"]
    assert r.violations == [], [v.line() for v in r.violations]


def test_the_simulated_operator_gives_a_command_again_when_nothing_was_changed(
    refdata: RefData, tmp_path: Path
) -> None:
    """The simulator's seed 213: risk was down when the operator's kill switch was to go
    off, the command answered "nothing was changed", and the stack stayed halted for the
    rest of the day (18 orders, under the 20 a seed's day carries). The simulated operator
    gives such a command again a second later, as one who reads the answer does; but not
    once a later command has set the same thing (seed 169: a flatten refused while risk
    was down, given again after the planned "off", kept the stack halted all day)."""
    seen: dict[str, Any] = {}

    def risk_down_kill_switch_on(stack: Any) -> None:
        stack.kill_daemon("risk")
        stack.operator._command("kill_switch", "on", None)
        seen["first"] = list(stack.operator.answers)
        stack.world.after(0.5, lambda: stack.start_daemon("risk"))

    def on_again(stack: Any) -> None:
        seen["answers"] = [a for a in stack.operator.answers if a[0] == "kill_switch"]
        seen["on"] = stack.cores["risk"].book.states.kill_mode
        stack.operator._command("kill_switch", "off", None)
        stack.kill_daemon("risk")  # a flatten refused, then "off" before its retry
        stack.operator._command("kill_switch", "flatten", None)
        stack.world.after(0.3, lambda: stack.start_daemon("risk"))
        stack.world.after(0.8, lambda: stack.operator._command("kill_switch", "off", None))

    def after(stack: Any) -> None:
        seen["later"] = [a[:3] for a in stack.operator.answers if a[0] == "kill_switch"]
        seen["off"] = stack.cores["risk"].book.states.kill_mode

    script = ((5.0, risk_down_kill_switch_on), (9.0, on_again), (13.0, after))
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    first = seen["first"][-1]
    assert first[:3] == ("kill_switch", "on", False) and "nothing was changed" in first[3], first
    oks = [ok for _, _, ok, _ in seen["answers"]]
    assert oks[0] is False and oks[-1] is True and len(oks) <= 3, seen["answers"]
    assert seen["on"] == "on", seen
    assert seen["later"][-2:] == [("kill_switch", "flatten", False), ("kill_switch", "off", True)]
    assert seen["off"] == "off", seen
    assert r.violations == [], [v.line() for v in r.violations]


def test_risk_keeps_an_engines_restart_with_the_time_it_was_silent(
    refdata: RefData, tmp_path: Path
) -> None:
    """An engine killed at 5 s and started again 3 s later: risk keeps one event of it
    (kind ``restart``, rule ``engine``, the market seconds since its last beat as its
    value), which the day's shadow reads back as the cause of what live missed around it."""
    seen: dict[str, Any] = {}

    def kill(stack: Any) -> None:
        seen["killed"] = stack.clock.now_ns()
        stack.restart_daemon("engine", 3.0)

    def back(stack: Any) -> None:
        seen["back"] = stack.clock.now_ns()  # the moment it is started again

    def note_events(stack: Any) -> None:
        events = [ev for _, ev in stack.cores["risk"].events.events]
        seen["events"] = [ev for ev in events if ev.kind == "restart"]
        seen["starts"] = [ev.rule for ev in events if ev.kind == "start"]

    script = ((5.0, kill), (8.0, back), (10.0, note_events))
    r = run_seed(3, tmp_path, refdata, Options(faults=False, operator=False, script=script))
    assert r.violations == [], [v.line() for v in r.violations]
    (ev,) = seen["events"]
    assert (ev.strategy, ev.rule, ev.action) == ("*", "engine", "restarted")
    # silent from its last beat before the kill to its first after the start: at least
    # the time it was down, at most a beat (a second of the world) more on either side
    down_s = (seen["back"] - seen["killed"]) / 1e9  # market seconds
    speed = down_s / 3.0  # market seconds a second of the simulated world
    assert down_s <= ev.value <= down_s + 2 * speed, (ev.value, down_s)
    assert "engine restarted (pid" in ev.reason
    # each daemon's first start is one too (the restart is not another): the shadow
    # starts its strategies no earlier than live's engine started
    assert sorted(seen["starts"]) == ["engine", "feed", "reconciler", "risk", "router", "signals"]
