"""A lane's batch stops at the first call its broker leaves unanswered.

The calls of a batch run one after another on the lane's thread. A broker that stops
answering costs each call a full timeout, and the account's fills, updates and position
reads wait for the lane meanwhile: ten placements, each losing its reply, held one
account for twenty seconds past its day's end in the simulator (seed 326 at 180x). The
rest of the batch is held, not made, and goes in the next round."""

from __future__ import annotations

from typing import Any

from mytrading.openalgo.broker import Outcome, PlaceResult
from mytrading.router.lanes import Call, Lane
from mytrading.router.throttle import Throttle


def lane() -> Lane:
    return Lane("main", object(), Throttle({}, 0.0))  # type: ignore[arg-type]


def answered(**kw: Any) -> Call:
    return Call(PlaceResult(Outcome.ACCEPTED, orderid="B1", **kw), [], 0)


def test_the_rest_of_a_batch_is_held_after_an_unanswered_call() -> None:
    made: list[str] = []
    replies = {
        "a": answered(),
        "b": answered(unanswered=True),  # found in the order book after its timeout
        "c": answered(),
    }

    def call(_: Lane, item: str) -> Call:
        made.append(item)
        return replies[item]

    out = lane()._run(["a", "b", "c", "d"], call)
    assert made == ["a", "b"]
    assert [(item, c.held) for item, c in out] == [
        ("a", False), ("b", False), ("c", True), ("d", True)
    ]  # fmt: skip
    assert all(c.result is None for _, c in out[2:])


def test_a_batch_answered_throughout_is_made_whole() -> None:
    made: list[str] = []

    def call(_: Lane, item: str) -> Call:
        made.append(item)
        return answered()

    out = lane()._run(["a", "b", "c"], call)
    assert made == ["a", "b", "c"] and not any(c.held for _, c in out)
