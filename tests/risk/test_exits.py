"""Risk's exit jobs: cancel first, close in chunks, retry what is left, confirm with the
broker's book. The daemon's collaborators are replaced by plain functions with state."""

from __future__ import annotations

from datetime import date

from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.charges import load_charges
from mytrading.risk.exits import ExitManager
from mytrading.risk.limits import LimitBook, Limits, StackLimits
from mytrading.risk.monitor import PostTrade
from mytrading.settings import PROJECT_ROOT

FUT = "NIFTY29DEC26FUT"
KEY = ("NFO", FUT, "MIS")


class Harness:
    def __init__(self, refdata: RefData, position: int) -> None:
        self.post = PostTrade(
            refdata,
            LimitBook(Limits(), {}, StackLimits()),
            load_charges(PROJECT_ROOT / "config"),
        )
        self.fill_no = 0
        if position:
            self.fill("s", position)
        self.sent: list[wire.Order] = []
        # the strategy's own order (signed): a buy, so it covers no part of a long's exit
        self.working: dict[str, int] = {"s.strategy-stop": 65}
        self.now = 1000.0
        self.cancels_answered = True  # a cancel ends its order at once (a backtest's venue)
        self.broker: int | None = position
        self.events: list[tuple[str, str]] = []
        self.em = ExitManager(
            refdata,
            self.post,
            self._send,
            lambda strategy, key: dict(self.working),
            lambda key, account: self.broker if account == "main" else None,
            lambda job, kind, reason: self.events.append((kind, reason)),
            "t",
            lambda strategy, inst: 2 * inst.lot_size,  # chunks of two lots
            clock=lambda: self.now,
        )

    def fill(self, strategy: str, signed: int) -> None:
        self.fill_no += 1
        self.post.on_fill(
            wire.Fill(
                fill_no=self.fill_no,
                fill_id="f",
                order_id="o",
                broker_order_id="b",
                strategy=strategy,
                exchange="NFO",
                symbol=FUT,
                product="MIS",
                action="BUY" if signed > 0 else "SELL",
                quantity=abs(signed),
                price=24_500.0,
                exch_ns=0,
            ),
            date(2026, 11, 23),
        )

    def _send(self, order: wire.Order) -> bool:
        self.sent.append(order)
        if order.op == "place":
            self.working[order.order_id] = order.quantity * (1 if order.action == "BUY" else -1)
        elif self.cancels_answered:
            self.working.pop(order.ref_order_id, None)
        return True


def test_exit_cancels_closes_in_chunks_retries_and_confirms(refdata: RefData) -> None:
    h = Harness(refdata, 65 * 5)
    h.em.start("s", KEY, "max_loss")
    h.em.step()
    cancel, *closes = h.sent
    assert (cancel.op, cancel.ref_order_id) == ("cancel", "s.strategy-stop")
    assert [(o.action, o.quantity) for o in closes] == [("SELL", 130), ("SELL", 130), ("SELL", 65)]
    assert h.events == [("exit", "closing 325 (attempt 1)")]
    h.em.step()  # still working: nothing more is sent
    assert len(h.sent) == 4
    # two chunks fill, the third is rejected by the broker
    h.fill("s", -260)
    for o in closes:
        h.working.pop(o.order_id)
    h.em.step()  # backoff: the retry waits a second
    assert len(h.sent) == 4
    h.now += 1.0
    h.em.step()
    assert [(o.action, o.quantity) for o in h.sent[4:]] == [("SELL", 65)]
    assert h.events[-1] == ("exit_retry", "closing 65 (attempt 2)")
    h.fill("s", -65)
    h.working.clear()
    h.broker = None  # the broker's book cannot be read: not confirmed yet
    h.em.step()
    assert ("s", KEY) in h.em.jobs
    h.broker = 65  # the broker still shows a position: not confirmed
    h.em.step()
    assert ("s", KEY) in h.em.jobs
    h.broker = 0
    h.em.step()
    assert h.events[-1][0] == "exit_confirmed" and not h.em.jobs


def test_confirmation_counts_other_strategies_on_the_same_contract(refdata: RefData) -> None:
    h = Harness(refdata, 65)
    h.fill("other", 130)  # another strategy is long the same future
    h.working.clear()
    h.em.start("s", KEY, "mis_squareoff")
    h.em.step()
    h.fill("s", -65)
    h.working.clear()
    h.broker = 130  # the broker's net: the other strategy's two lots
    h.em.step()
    assert h.events[-1][0] == "exit_confirmed"


def test_an_exit_closes_only_what_no_working_order_would(refdata: RefData) -> None:
    """The simulator's seed 80: short 750, the kill switch flattening, the strategy's
    buy of 1,500 in flight (its cancel refused: not at the broker yet). Risk's exit of
    750 went too; both filled, and the book was long 1,500 with the kill switch on. The
    exit waits while the strategy's orders on its side could close the position; their
    cancels are sent again until they stop working."""
    h = Harness(refdata, -65 * 2)
    h.cancels_answered = False  # live: a cancel's answer comes later (here: refused)
    h.working = {"s.entry": 65 * 3}  # the strategy's buy, in flight
    h.em.start("s", KEY, "flatten")
    h.em.step()
    assert [(o.op, o.ref_order_id) for o in h.sent] == [("cancel", "s.entry")]
    h.now += 1.0
    h.em.step()
    assert len(h.sent) == 1  # nothing closes yet, and the cancel waits its turn
    h.now += 1.0
    h.em.step()
    assert [(o.op, o.ref_order_id) for o in h.sent[1:]] == [("cancel", "s.entry")]
    assert not h.events  # no exit while the buy could close it
    # it fills after all: now long one lot, the exit sells that
    h.fill("s", 65 * 3)
    h.working.clear()
    h.em.step()
    assert [(o.op, o.action, o.quantity) for o in h.sent[2:]] == [("place", "SELL", 65)]
    assert h.events == [("exit", "closing 65 (attempt 1)")]


def test_an_exit_sends_what_a_working_order_leaves_open(refdata: RefData) -> None:
    """A working sell of one lot covers one lot of a long three: the exit sells two now
    (the cancel's answer settles the third)."""
    h = Harness(refdata, 65 * 3)
    h.cancels_answered = False
    h.working = {"s.target": -65}
    h.em.start("s", KEY, "max_loss")
    h.em.step()
    assert [(o.op, o.action, o.quantity) for o in h.sent] == [
        ("cancel", "SELL", 0),
        ("place", "SELL", 130),
    ]
    assert h.events == [("exit", "closing 130, 65 covered by orders being cancelled (attempt 1)")]


def test_a_cancel_answered_at_once_lets_the_exit_go_at_once(refdata: RefData) -> None:
    """A venue that answers a cancel in the call (the backtest's) ends the covering
    order before the exit is sized: the whole position closes in the same step."""
    h = Harness(refdata, -65 * 2)
    h.working = {"s.entry": 65 * 3}
    h.em.start("s", KEY, "flatten")
    h.em.step()
    assert [(o.op, o.action, o.quantity) for o in h.sent] == [
        ("cancel", "SELL", 0),
        ("place", "BUY", 130),
    ]
