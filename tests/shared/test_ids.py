"""Identifiers print and parse back to themselves, in every combination the stack makes
(a follower's copy, a part of a split order, a roll's leg, and all three at once)."""

from __future__ import annotations

import itertools

import pytest

from mytrading.domain.ids import Book, Instrument, OrderId, intent_of, roll_leg, roll_of


def test_order_ids_round_trip_in_every_combination() -> None:
    intents = ["e19a3f-7", "risk-5f-c2", "wh1a2b-3", roll_leg("e1-4", 1), roll_leg("e1-4", 2)]
    for intent, account, child in itertools.product(intents, ["", "acct2"], [0, 1, 12]):
        oid = OrderId("sma_x", intent, account, child)
        assert OrderId.parse(str(oid)) == oid
    assert str(OrderId("s", "e1-7", "b", 2)) == "s.e1-7@b.2"
    assert str(OrderId.parse("s.e1-7@b.2").whole) == "s.e1-7@b"
    assert OrderId.parse("s.e1-7").part(3) == OrderId("s", "e1-7", "", 3)
    assert OrderId.parse("s.e1-7").copy_for("b").book == Book("s", "b")


@pytest.mark.parametrize("bad", ["", "sma", ".e1", "sma.", "sma.@b"])
def test_text_that_is_no_order_id_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an order id"):
        OrderId.parse(bad)
    assert intent_of(bad) == ""


def test_books_legs_and_instruments() -> None:
    assert Book.parse("s") == Book("s") and not Book("s").follower
    assert Book.parse("s@acct2") == Book("s", "acct2") and str(Book("s", "acct2")) == "s@acct2"
    leg = roll_leg("e1-4", 2)
    assert roll_of(leg) == "e1-4" and roll_of("e1-4") == "" and roll_of("e1-4~3") == ""
    assert intent_of(str(OrderId("s", leg, "", 2))) == leg  # a part of a split leg
    assert Instrument.parse("NFO:NIFTY23NOV26FUT") == Instrument("NFO", "NIFTY23NOV26FUT")
    with pytest.raises(ValueError, match="not an instrument"):
        Instrument.parse("NIFTY")
