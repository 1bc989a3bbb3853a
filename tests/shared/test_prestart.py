"""A daemon's collector is off while it starts and on once its set-up is done."""

from __future__ import annotations

import gc
import weakref

from mytrading.process.prestart import settled


class _Node:
    other: _Node


def test_settled_collects_then_turns_the_collector_back_on_with_the_rest_frozen() -> None:
    gc.disable()
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # the collector is off: the cycle is still there
        settled()
        assert gone() is None
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()
