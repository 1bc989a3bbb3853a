"""Lost replies read back from risk's events (``shadow/lost.py``)."""

from __future__ import annotations

from mytrading.shadow.given import event_ns
from mytrading.shadow.lost import Lost, lost_cause, lost_replies, lost_while

DAY = "2026-11-20"


def row(at: str, action: str, reason: str, oid: str, rule: str = "unknown_order") -> tuple:
    """A ``read_events`` row: market time, strategy, kind, rule, threshold, value,
    action, reason, order ids, detail."""
    return (f"{DAY} {at}", "s", "state", rule, 0.0, 0.0, action, reason, [oid], "")


ROWS = [
    # newest first, as read_events gives them
    row(
        "10:05:00",
        "active",
        "order s.i7 found at the broker as 991: adopted: resumed by itself",
        "s.i7",
    ),
    row("10:01:00", "halted", "order s.i7 unknown at the broker (timed out): halted", "s.i7"),
    row("10:02:00", "halted", "order s@second.i7 unknown", "s@second.i7"),
    row("10:03:00", "halted", "by the operator", "", rule="trading_state"),
    row("11:00:00", "halted", "order s.i9 unknown at the broker", "s.i9"),
]


def test_each_lost_reply_from_its_halt_to_its_fate() -> None:
    lost = lost_replies(ROWS)
    assert lost["s.i7"] == Lost("s.i7", event_ns(f"{DAY} 10:01:00"), event_ns(f"{DAY} 10:05:00"),
                                "found at the broker as 991: adopted")  # fmt: skip
    assert lost["s.i9"].until_ns == 0  # never found that day
    assert set(lost) == {"s.i7", "s@second.i7", "s.i9"}  # an operator's halt is not one


def test_a_trade_is_named_by_its_own_lost_reply_not_a_followers() -> None:
    lost = lost_replies(ROWS)
    said = lost_cause(lost, "s", "i7")
    assert said.startswith("its reply lost live: unknown at the broker from 10:01:00 until "
                           "10:05:00 (found at the broker as 991"), said  # fmt: skip
    assert lost_cause(lost, "s", "i8") == "" and lost_cause(lost, "other", "i7") == ""
    only_follower = {"s@second.i7": lost["s@second.i7"]}
    assert lost_cause(only_follower, "s", "i7") == ""


def test_a_one_sided_decision_from_the_hand_over_until_the_fate_is_put_to_it() -> None:
    lost = {"s.i7": lost_replies(ROWS)["s.i7"]}
    sent = {"i7": event_ns(f"{DAY} 09:59:30")}  # handed to the broker; unknown at 10:01
    end = event_ns(f"{DAY} 23:59:59")
    at = lambda t: event_ns(f"{DAY} {t}")  # noqa: E731
    assert lost_while(lost, sent, "s", at("09:59:00"), end) == ""  # before it was sent
    said = lost_while(lost, sent, "s", at("10:00:00"), end)
    assert said == ("live's order s.i7 had its reply lost (sent 09:59:30, unknown at the broker "
                    "from 10:01:00 until 10:05:00)")  # fmt: skip
    assert lost_while(lost, sent, "s", at("10:06:00"), end) == ""  # found by then
    assert lost_while(lost, sent, "t", at("10:00:00"), end) == ""  # another strategy's
    never = {"s.i9": lost_replies(ROWS)["s.i9"]}
    assert "to the day's end" in lost_while(never, {}, "s", at("15:00:00"), end)
