"""A reader of the router's fills takes each once and in order: a republished fill is
skipped, a hole in the numbering is filled from the router before the fill after it."""

from __future__ import annotations

from mytrading import wire
from mytrading.recovery import FillSequence


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
