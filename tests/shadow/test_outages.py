"""Stretches when a part of live's stack was away, read back from risk's events
(``shadow/outages.py``)."""

from __future__ import annotations

from mytrading.domain.refdata import RefData
from mytrading.shadow.day import refusal_said
from mytrading.shadow.given import event_ns
from mytrading.shadow.outages import outage_cause, outages

DAY = "2026-11-20"


def row(at: str, kind: str, rule: str, value: float = 0.0, action: str = "",
        reason: str = "") -> tuple:  # fmt: skip
    return (f"{DAY} {at}", "*", kind, rule, 0.0, value, action, reason, [], "")


def at(t: str) -> int:
    return event_ns(f"{DAY} {t}")


def decided_at(detail: str | None) -> int:
    """A refusal's decision, as the shadow reads it from the event's detail."""
    return refusal_said(detail).get("decided_ns", 0)


def bar_decided(detail: str | None) -> int:
    """A refusal's deciding bar, as the shadow reads it from the event's detail."""
    return refusal_said(detail).get("bar_ns", 0)


ROWS = [
    row("09:10:00", "start", "risk", action="started"),
    row("10:00:40", "restart", "feed", 40.0, "restarted"),  # silent since 10:00:00
    row(
        "11:00:00",
        "router",
        "session_expired",
        action="refusing",
        reason="the router refuses orders: the broker session expired",
    ),
    row("11:05:00", "router", "taking", action="taking", reason="the router takes orders again"),
    row("12:00:00", "start", "risk", action="started"),  # a restart: the day's second
    row(
        "13:00:00",
        "router",
        "journal_fault",
        action="refusing",
        reason="the router refuses orders: its journal refused writes (ENOSPC)",
    ),
    row("13:30:00", "restart", "engine", 5.0, "restarted"),  # silent since 13:29:55
]


def test_each_outage_from_its_start_to_its_end() -> None:
    got = [(o.who, o.from_ns, o.to_ns) for o in outages(reversed(ROWS))]  # any order
    assert got == [
        ("feed", at("10:00:00"), at("10:00:40")),
        ("router", at("11:00:00"), at("11:05:00")),
        ("risk", at("12:00:00"), at("12:00:00")),
        ("router", at("13:00:00"), 0),  # not taking again by the day's end
        ("engine", at("13:29:55"), at("13:30:00")),
    ]


def test_a_decision_is_put_to_the_latest_outage_since_the_sides_held_alike() -> None:
    outs = outages(ROWS)
    assert outage_cause(outs, at("09:30:00"), at("09:59:00")) == ""  # before any
    assert outage_cause(outs, at("09:30:00"), at("10:30:00")) == (
        "the feed restarted live (silent from 10:00:00, back at 10:00:40): no ticks while "
        "it was down, the gap's bars from the broker's history after"
    )
    # the sides held alike again after the feed was back: not its doing
    assert outage_cause(outs, at("10:10:00"), at("10:30:00")) == ""
    assert outage_cause(outs, at("10:10:00"), at("11:02:00")) == (
        "live's router refused orders (the broker session expired) from 11:00:00 to 11:05:00"
    )
    assert outage_cause(outs, at("11:50:00"), at("12:01:00")).startswith(
        "the risk restarted live (back at 12:00:00)"
    )
    assert outage_cause(outs, at("12:30:00"), at("13:20:00")) == (
        "live's router refused orders (its journal refused writes (ENOSPC)) from 13:00:00 "
        "to the day's end"
    )
    # the sides held alike at the very moment the engine came back (the shadow's entry
    # and its stop, both filled at 13:30:00, while live's engine was still starting):
    # the outage is still the cause of a decision made then, or later while apart
    assert outage_cause(outs, at("13:30:00"), at("13:30:00")).startswith(
        "the engine restarted live"
    )
    assert outage_cause(outs, at("13:30:01"), at("13:33:00")).startswith(
        "live's router refused orders"
    )  # held alike after the engine was back: only the refusal, still on, steers it
    # the latest that began by the decision: the engine's restart, amid the refusal
    assert outage_cause(outs, at("12:30:00"), at("15:00:00")) == (
        "the engine restarted live (silent from 13:29:55, back at 13:30:00): no decision "
        "while it was down, its strategies started afresh after"
    )


def test_a_refusal_is_found_at_its_intents_decision() -> None:
    """Risk held an intent for the broker's funds figure and refused it three minutes
    later: the event keeps the decision's moment, the shadow reads it back."""
    from mytrading.risk.orders import rejected_event
    from mytrading.risk.rules import Rejection

    ev = rejected_event("s", "i1", Rejection("margin", "no funds figure"), at("09:18:00"))
    assert decided_at(ev.detail) == at("09:18:00")
    assert rejected_event("s", "i1", Rejection("margin", "x")).detail == ""
    assert decided_at("") == decided_at("not json") == decided_at('{"x": 1}') == 0


def test_a_refusal_is_found_on_the_bar_that_decided_it_however_late() -> None:
    """Live's bars held for a warm-up that ended late are handed at once: the strategy
    decides on the 09:16 bar at 09:20:54, risk refuses it (no funds figure yet); the
    shadow decided on that bar at 09:17. The refusal keeps its bar, and the shadow's
    decision alone is put to it, where the decisions' moments lie minutes apart."""
    from mytrading.risk.orders import rejected_event
    from mytrading.risk.rules import Rejection
    from mytrading.shadow.day import WINDOW_NS, refused_near, refused_on_bar

    ev = rejected_event("s", "i1", Rejection("margin", "no funds figure"), at("09:20:54"),
                        at("09:16:00"))  # fmt: skip
    assert (decided_at(ev.detail), bar_decided(ev.detail)) == (at("09:20:54"), at("09:16:00"))
    assert bar_decided(rejected_event("s", "i2", Rejection("margin", "x"), 5).detail) == 0
    assert bar_decided('{"bar_ns": "x"}') == bar_decided("[1]") == 0
    by_bar = [(at("09:16:00"), "s", "margin")]
    by_time = [(at("09:20:54"), "s", "margin")]
    shadow_decided = at("09:17:00")
    assert at("09:20:54") - shadow_decided > WINDOW_NS  # the moments alone do not meet
    assert refused_near(by_time, "s", shadow_decided, "risk, live,") == "unexplained"
    assert refused_on_bar(by_bar, "s", at("09:16:00"), "risk, live,") == (
        "risk, live, refused it (margin)"
    )
    assert refused_on_bar(by_bar, "s", at("09:17:00"), "risk, live,") == ""  # another bar
    assert refused_on_bar(by_bar, "other", at("09:16:00"), "risk, live,") == ""
    assert refused_on_bar(by_bar, "s", 0, "risk, live,") == ""  # not a bar's decision


def test_a_live_exit_finds_its_own_trigger_by_its_orders() -> None:
    """Risk's exit event names its orders (``<book>.risk-...``): the exit's trade, handed
    to the broker minutes after the trigger on a fast clock (or retried), finds its rule
    by them, not by a minute's window ("its trigger not found" on 23 fault-free decisions
    of the simulated days before)."""
    from mytrading.shadow.day import exits_by_intent

    rows = [
        ("2026-11-27 15:16:12", "s", "exit", "mis_squareoff", 0, 0, "close", "",
         ["s.risk-19e-4", "s.risk-19e-5.2"], "", ""),
        ("2026-11-27 14:52:12", "s@second", "exit", "max_loss", 0, 0, "close", "",
         ["s@second.risk-19e-1"], "", ""),
        ("2026-11-27 14:52:12", "s", "exit", "daily_loss", 0, 0, "close", "", ["not an id"],
         "", ""),
        ("2026-11-27 14:52:12", "s", "rejected", "max_loss", 0, 0, "reject", "",
         ["s.risk-19e-9"], "", ""),
        # the broker refused the first close: the retry's order is named by its retry only
        ("2026-11-27 14:56:12", "s", "exit_retry", "trailing_stop", 0, 0, "close", "",
         ["s.risk-19e-6", "s.risk-19e-7"], "", ""),
    ]  # fmt: skip
    assert exits_by_intent((r[2], r[3], r[8]) for r in rows) == {
        "risk-19e-4": "mis_squareoff", "risk-19e-5": "mis_squareoff", "risk-19e-1": "max_loss",
        "risk-19e-6": "trailing_stop", "risk-19e-7": "trailing_stop",
    }  # fmt: skip


def test_the_shadows_exit_finds_its_own_trigger_by_its_orders_too(refdata: RefData) -> None:
    """The backtest keeps an exit event's orders beside its rule, so the shadow's own
    exits are found as live's are (by a minute's window before: the trigger and the
    exit's order can be further apart)."""
    from mytrading.backtest.results import Results
    from mytrading.messaging import wire
    from mytrading.risk.charges import load_charges
    from mytrading.settings import PROJECT_ROOT
    from mytrading.shadow.day import exits_by_intent

    res = Results(refdata, load_charges(PROJECT_ROOT / "config"), capital=1e7)
    exit_ = wire.RiskEvent(strategy="s", kind="exit", rule="trailing_stop", reason="stop hit",
                           action="close", order_ids=["s.risk-1a-3"])  # fmt: skip
    refused = wire.RiskEvent(strategy="s", kind="rejected", rule="margin", reason="no funds",
                             action="reject")  # fmt: skip
    res.on_event(exit_, at("14:51:00"))
    res.on_event(refused, at("14:52:00"))
    assert [e["orders"] for e in res.events] == [["s.risk-1a-3"], []]
    got = exits_by_intent((e["kind"], e["rule"], e["orders"]) for e in res.events)
    assert got == {"risk-1a-3": "trailing_stop"}
