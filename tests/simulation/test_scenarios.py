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
from mytrading.simulation.run import run_seed
from mytrading.simulation.stack import Options

pytestmark = pytest.mark.integration  # a trading day of the whole stack


def router_books(stack: Any) -> dict[tuple[str, str, str], int]:
    net: dict[tuple[str, str, str], int] = defaultdict(int)
    for (strategy, ex, sym, _prod, _acct), q in stack.cores["router"].books.ledger.net().items():
        net[(strategy, ex, sym)] += q
    return {k: q for k, q in net.items() if q}


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
