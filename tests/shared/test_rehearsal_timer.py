"""The idle rehearsal both risk and the router run (``process/rehearsal.py``): only after
an interval without real work, counted when it rehearsed something, and one that raises
said once and not tried again until the next real work."""

from __future__ import annotations

import sys

from mytrading.process.rehearsal import Rehearsal


def test_it_waits_an_interval_after_real_work_and_counts_what_it_rehearsed() -> None:
    t = [100.0]
    answers = [False, True, True]
    r = Rehearsal(0.01, lambda: answers.pop(0), lambda: None, clock=lambda: t[0])
    r.worked()
    r.run()  # at once after an order: a burst is never slowed by it
    assert answers == [False, True, True] and r.count == 0
    t[0] += 0.01
    r.run()  # nothing to rehearse (no order yet, or refused now): not counted
    r.run()
    assert r.count == 1
    r.worked()
    r.run()
    assert r.count == 1 and answers == [True]


def test_a_rehearsal_that_fails_is_said_once_and_tried_again_after_the_next_work() -> None:
    t = [100.0]
    calls: list[str] = []
    said: list[BaseException | None] = []

    def rehearse() -> bool:
        calls.append("rehearse")
        if len(calls) == 1:
            raise KeyError("an instrument gone from the reference data")
        return True

    r = Rehearsal(0.01, rehearse, lambda: said.append(sys.exc_info()[1]), clock=lambda: t[0])
    t[0] += 1
    for _ in range(3):
        r.run()
    # said once, inside the except (so the daemon's count_error(exc_info=True) logs it)
    assert len(said) == 1 and isinstance(said[0], KeyError)
    assert calls == ["rehearse"] and r.count == 0
    r.worked()  # the next intent or order: rehearsals again, an interval later
    t[0] += 0.01
    r.run()
    assert calls == ["rehearse", "rehearse"] and r.count == 1 and len(said) == 1
