"""The reconciler reports a difference only when two checks in a row find it: a broker's
book ahead of the fills of an order still in flight is not a mismatch."""

from __future__ import annotations

from mytrading.reconciler.daemon import TwoChecks

KEY = ("main", "NFO", "NIFTY29DEC26FUT", "NRML")


def test_a_difference_that_settles_is_never_reported() -> None:
    agreed: TwoChecks[tuple[tuple[str, str, str, str], int, int]] = TwoChecks()
    # the broker holds 65 while our fill is still on its way: seen once
    assert agreed.confirm("main", {(KEY, 65, 0)}) == []
    # the fill arrived: the books agree, nothing to say, and nothing left pending
    assert agreed.confirm("main", set()) == []
    assert agreed.confirm("main", {(KEY, 65, 0)}) == []  # seen once again: still quiet


def test_a_difference_found_twice_is_reported_once_per_pair_of_checks() -> None:
    agreed: TwoChecks[tuple[tuple[str, str, str, str], int, int]] = TwoChecks()
    assert agreed.confirm("main", {(KEY, -130, 0)}) == []
    assert agreed.confirm("main", {(KEY, -130, 0)}) == [(KEY, -130, 0)]
    # a different difference on the same position starts again
    assert agreed.confirm("main", {(KEY, -195, 0)}) == []


def test_accounts_are_checked_apart() -> None:
    agreed: TwoChecks[tuple[str, int]] = TwoChecks()
    assert agreed.confirm("main", [("x", 1)]) == []
    assert agreed.confirm("second", [("x", 1)]) == []  # not main's second sight
    assert agreed.confirm("main", [("x", 1)]) == [("x", 1)]
