"""A reader of the router's fills takes each once and in order: a republished fill is
skipped, a hole in the numbering is filled from the router before the fill after it."""

from __future__ import annotations

from mytrading.messaging import wire
from mytrading.messaging.catchup import FillSequence


def fill(n: int, qty: int = 65) -> wire.Fill:
    return wire.Fill(
        fill_no=n, fill_id=f"T{n}", order_id=f"o{n}", broker_order_id=f"B{n}",
        strategy="s", exchange="NFO", symbol="NIFTY23NOV26FUT", product="NRML",
        action="BUY", quantity=qty, price=24_000.0, exch_ns=n,
    )  # fmt: skip


def test_in_order_and_republished_fills() -> None:
    asked: list[int] = []
    seq = FillSequence(lambda after: asked.append(after) or [])
    seq.start_at(4)
    assert seq.take(fill(3)) == ([], 0)  # in the snapshot already
    assert seq.take(fill(4)) == ([], 0)
    assert seq.take(fill(5))[0] == [fill(5)]
    assert seq.take(fill(5)) == ([], 0)  # a restarted router republishes
    assert seq.take(fill(6))[0] == [fill(6)]
    assert asked == [] and (seq.recovered, seq.lost) == (0, 0)


def test_a_hole_is_filled_from_the_router_in_order() -> None:
    kept = [fill(n) for n in range(1, 10)]
    asked: list[int] = []

    def fetch(after: int) -> list[wire.Fill]:
        asked.append(after)
        return list(reversed([f for f in kept if f.fill_no > after]))  # any order

    seq = FillSequence(fetch)
    seq.start_at(2)
    took, missing = seq.take(fill(6))
    assert [f.fill_no for f in took] == [3, 4, 5, 6] and missing == 0
    assert asked == [2]
    assert seq.take(fill(5)) == ([], 0)  # the live copy of one fetched: not twice
    assert [f.fill_no for f in seq.take(fill(7))[0]] == [7]
    assert (seq.recovered, seq.lost) == (3, 0)


def test_a_router_that_does_not_answer_leaves_the_hole_counted() -> None:
    seq = FillSequence(lambda after: None)
    seq.start_at(1)
    took, missing = seq.take(fill(4))
    assert [f.fill_no for f in took] == [4] and missing == 2
    assert seq.lost == 2


def test_with_no_base_the_first_fill_is_the_base() -> None:
    seq = FillSequence(lambda after: [fill(1)])
    assert [f.fill_no for f in seq.take(fill(9))[0]] == [9]  # not a hole: no base yet
    assert seq.recovered == 0 and seq.last == 9


def test_the_routers_last_published_shows_a_missed_last_fill() -> None:
    kept = [fill(n) for n in range(1, 8)]
    asked: list[int] = []

    def fetch(after: int) -> list[wire.Fill]:
        asked.append(after)
        return [f for f in kept if f.fill_no > after]  # 7 is held back by the router

    seq = FillSequence(fetch)
    assert seq.catch_up(5) == []  # no base yet: nothing to compare
    seq.start_at(3)
    assert seq.catch_up(3) == [] and asked == []  # up to date: nothing asked
    assert [f.fill_no for f in seq.catch_up(6)] == [4, 5, 6]  # not 7: not published yet
    assert seq.last == 6 and asked == [3]
    assert seq.take(fill(6)) == ([], 0)  # its live copy, late: not twice
    unanswered = FillSequence(lambda after: None)
    unanswered.start_at(1)
    assert unanswered.catch_up(4) == [] and unanswered.last == 1  # asked again next beat


def test_a_hole_the_router_did_not_answer_for_is_asked_again_at_its_next_heartbeat() -> None:
    """The router's REP did not answer when fill 4 showed 2 and 3 missing: 4 is taken,
    and 2 and 3 are asked again at the router's next heartbeat and taken then (late, never
    lost); asked again as long as it does not answer, and once it answers, what it did not
    give is lost for good."""
    kept = [fill(n) for n in range(1, 8)]
    answering = [False]
    asked: list[int] = []

    def fetch(after: int) -> list[wire.Fill] | None:
        asked.append(after)
        return [f for f in kept if f.fill_no > after] if answering[0] else None

    seq = FillSequence(fetch)
    seq.start_at(1)
    took, missing = seq.take(fill(4))
    assert [f.fill_no for f in took] == [4] and missing == 2 and seq.lost == 2
    assert seq.holes == {2, 3}
    assert seq.catch_up(4) == [] and seq.holes == {2, 3}  # still not answering
    answering[0] = True
    assert [f.fill_no for f in seq.catch_up(4)] == [2, 3]  # the holes, in order
    assert asked[-1] == 1 and seq.holes == set()
    assert (seq.recovered, seq.lost, seq.last) == (2, 0, 4)
    assert seq.catch_up(4) == []  # nothing missing: nothing asked
    assert len(asked) == 3
    # a hole and a missed last fill at one heartbeat: one read, the hole's fills first
    answering[0] = False
    assert [f.fill_no for f in seq.take(fill(6))[0]] == [6] and seq.holes == {5}
    answering[0] = True
    assert [f.fill_no for f in seq.catch_up(7)] == [5, 7]
    assert asked[-1] == 4 and (seq.lost, seq.last) == (0, 7)
    # a hole's fill on the bus after all (a restarted router republishes): taken once
    answering[0] = False
    seq.take(fill(9))
    assert seq.holes == {8}
    assert seq.take(fill(8)) == ([fill(8)], 0) and seq.holes == set() and seq.lost == 0
    assert seq.take(fill(8)) == ([], 0)
    # answered without them (the router no longer keeps them): lost for good, not asked on
    gone = FillSequence(lambda after: [] if asked.append(after) is None else None)
    gone.start_at(1)
    gone.take(fill(3))  # the router's answer is empty: 2 lost, not a hole to ask again
    assert gone.holes == set() and gone.lost == 1
