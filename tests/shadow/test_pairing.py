"""Live trades paired with the shadow's, and the bridge between their P&L to the paisa
(``shadow/pairing.py``, ``shadow/trades.py``)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import msgspec
import pytest

from mytrading import venue
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.orders.state import UNSENT, OrderState
from mytrading.orders.tracker import TrackedOrder
from mytrading.risk.charges import load_charges
from mytrading.router import journal
from mytrading.settings import PROJECT_ROOT, Settings
from mytrading.shadow.day import (
    ShadowDay,
    ShadowError,
    StrategyShadow,
    answered,
    cold_start,
    cold_until,
    fills_differ,
    journal_of,
    refused_near,
    traded_strategies,
)
from mytrading.shadow.pairing import UNEXPLAINED, Pair, bridge, pair
from mytrading.shadow.summary import summarize
from mytrading.shadow.trades import Settled, SideOfDay, Trade, live_side, shadow_side

FUT = ("NFO", "NIFTY23NOV26FUT")
MARK = 24_510.00


def trade(side: str, n: int, action: str, qty: int, *fills: tuple[int, float],
          charges: float = 0.0) -> Trade:  # fmt: skip
    t = Trade(side, "s", f"{side}-{n}", *FUT, action, qty, n * 60_000_000_000)  # type: ignore[arg-type]
    for q, px in fills:
        t.add_fill(q, px, n * 60_000_000_000 + 1, charges / len(fills))
    return t


def paired(live: list[Trade], shadow: list[Trade]) -> list[tuple[str, str, str]]:
    """Each pair as (kind, live intent, shadow intent)."""
    return [(p.kind, p.live.intent_id if p.live else "", p.shadow.intent_id if p.shadow else "")
            for p in pair(live, shadow)]  # fmt: skip


def mark(_ex: str, _sym: str) -> int:
    return round(MARK * 100)


def test_the_same_decision_is_on_the_same_bar_not_the_next_of_its_kind() -> None:
    """A cold start: live bought at minute 1 and sold at 2, the shadow (not warm yet) did
    neither; at 30 and 31 both bought and sold. Paired by key alone, the shadow's 30 and
    31 took live's 1 and 2, half an hour apart, and left live's 30 and 31 over."""
    live = [trade("live", 1, "BUY", 65), trade("live", 2, "SELL", 65),
            trade("live", 30, "BUY", 65), trade("live", 31, "SELL", 65)]  # fmt: skip
    shadow = [trade("shadow", 30, "BUY", 65), trade("shadow", 31, "SELL", 65)]
    assert paired(live, shadow) == [
        ("live_only", "live-1", ""),
        ("live_only", "live-2", ""),
        ("matched", "live-30", "shadow-30"),
        ("matched", "live-31", "shadow-31"),
    ]


def test_decisions_that_name_their_bar_pair_on_it_however_late_one_side_acted() -> None:
    """Live's strategy warmed up late and decided on the 09:21 bar at 09:26 (held bars
    handed after the history); the shadow on the same bar at 09:23: the same decision,
    five minutes apart, paired on the bar. Two decisions of the same key a minute apart
    on different bars are not the same decision."""
    bar = lambda m: m * 60_000_000_000  # noqa: E731
    live = [trade("live", 26, "BUY", 65), trade("live", 30, "SELL", 65)]
    shadow = [trade("shadow", 23, "BUY", 65), trade("shadow", 31, "SELL", 65)]
    live[0].bar_ns, shadow[0].bar_ns = bar(21), bar(21)
    live[1].bar_ns, shadow[1].bar_ns = bar(28), bar(29)
    assert paired(live, shadow) == [
        ("matched", "live-26", "shadow-23"),
        ("live_only", "live-30", ""),
        ("shadow_only", "", "shadow-31"),
    ]
    live[1].bar_ns = 0  # one side did not say (an older journal): within the window
    assert paired(live, shadow)[1:] == [("matched", "live-30", "shadow-31")]


def test_a_decision_answering_a_fill_pairs_through_the_fills_pair() -> None:
    """Both sides sold at 30 (matched); live's entry filled late (a thin book), so its
    stop went at 37, the shadow's at 31, past the window; the stop's own fill set off a
    re-entry on each side (a chain). Each answer pairs through the pair of the fill it
    answers; an answer to an unmatched fill stays one-sided."""
    live = [trade("live", 30, "SELL", 65), trade("live", 37, "BUY", 65),
            trade("live", 45, "SELL", 65), trade("live", 50, "BUY", 65)]  # fmt: skip
    shadow = [trade("shadow", 30, "SELL", 65), trade("shadow", 31, "BUY", 65),
              trade("shadow", 40, "SELL", 65)]  # fmt: skip
    live[1].fill_of, live[2].fill_of, live[3].fill_of = "live-30", "live-37", "nobody"
    shadow[1].fill_of, shadow[2].fill_of = "shadow-30", "shadow-31"
    assert sorted(paired(live, shadow)) == sorted([
        ("matched", "live-30", "shadow-30"),
        ("matched", "live-37", "shadow-31"),
        ("matched", "live-45", "shadow-40"),
        ("live_only", "live-50", ""),
    ])  # fmt: skip


def test_decisions_on_two_instruments_in_crossed_order_are_all_paired() -> None:
    """At one minute live decided on A then B, the shadow on B then A (each instrument's
    bar closed at another moment on each side): all four paired, per instrument."""

    def t(side: str, sym: str, at_s: int) -> Trade:
        return Trade(side, "s", f"{side}-{sym}", "NSE", sym, "BUY", 10, at_s * 10**9)  # type: ignore[arg-type]

    live = [t("live", "A", 65), t("live", "B", 65)]
    shadow = [t("shadow", "B", 60), t("shadow", "A", 75)]
    assert [p.kind for p in pair(live, shadow)] == ["matched", "matched"]


def test_one_extra_decision_on_each_side_leaves_the_rest_paired() -> None:
    live = [trade("live", 1, "BUY", 65), trade("live", 2, "SELL", 65),
            trade("live", 3, "BUY", 130), trade("live", 5, "SELL", 65)]  # fmt: skip
    shadow = [trade("shadow", 1, "BUY", 65), trade("shadow", 2, "SELL", 65),
              trade("shadow", 4, "SELL", 130), trade("shadow", 5, "SELL", 65)]  # fmt: skip
    assert paired(live, shadow) == [
        ("matched", "live-1", "shadow-1"),
        ("matched", "live-2", "shadow-2"),
        ("live_only", "live-3", ""),
        ("shadow_only", "", "shadow-4"),
        ("matched", "live-5", "shadow-5"),
    ]


def test_the_bridge_puts_each_rupee_to_its_cause_and_adds_up_to_the_paisa() -> None:
    # matched, live paid 0.35 more on 65; matched, live filled 30 of 65 (a partial);
    # only live: a buy of 65 at 24,500.05; only the shadow: a sell of 130 at 24,520.10
    live = [
        trade("live", 1, "BUY", 65, (65, 24_501.85), charges=12.34),
        trade("live", 2, "SELL", 65, (30, 24_505.00), charges=5.01),
        trade("live", 3, "BUY", 65, (65, 24_500.05), charges=11.11),
    ]
    shadow = [
        trade("shadow", 1, "BUY", 65, (65, 24_501.50), charges=12.30),
        trade("shadow", 2, "SELL", 65, (40, 24_504.00), (25, 24_504.50), charges=10.00),
        trade("shadow", 4, "SELL", 130, (130, 24_520.10), charges=20.02),
    ]
    settled = [Settled("s", *FUT, -65, -65 * 2_450_000, 0)]  # the live book settled 65
    stray = Settled("s", *FUT, 65, 65 * 2_451_200, 100)  # a fill of no known order
    live_net = (sum(t.pnl(mark(*FUT)) - t.charges for t in live)
                + settled[0].pnl(mark(*FUT)) + stray.pnl(mark(*FUT)) - stray.charges)  # fmt: skip
    pairs = pair(live, shadow)
    b = bridge(pairs, settled, [], mark, live_net)

    shadow_value_2 = 40 * 2_450_400 + 25 * 2_450_450  # paise: 65 sold at 24,504.19 on average
    # bought 0.35 dearer on 65; sold 30 at 24,505.00 against the shadow's average on the
    # same 30 (a sale: dearer is better)
    slip_2 = round(-30 * (shadow_value_2 / 65 - 2_450_500))
    assert slip_2 == 2423
    assert b.causes["slippage"] == -65 * 35 + slip_2
    # the 35 the shadow sold more, valued at the close: the rest of that pair's difference
    live_2 = -(30 * MARK * 100 - 30 * 2_450_500)
    shadow_2 = -(65 * MARK * 100 - shadow_value_2)
    assert b.causes["fills_differ"] == live_2 - shadow_2 - slip_2
    assert b.causes["live_only"] == 65 * (2_451_000 - 2_450_005)
    assert b.causes["shadow_only"] == -(-130 * (2_451_000 - 2_452_010))
    assert b.causes["charges"] == -((1234 + 501 + 1111) - (1230 + 1000 + 2002))
    assert b.causes["settlement"] == -65 * 2_451_000 + 65 * 2_450_000
    assert b.causes[UNEXPLAINED] == 65 * (2_451_000 - 2_451_200) - 100  # the stray fill
    assert b.shadow_net + sum(b.causes.values()) == b.live_net == live_net


def test_the_messages_line_names_each_unmatched_trades_reason_with_its_rupees() -> None:
    live = [trade("live", 1, "BUY", 65, (65, 24_501.85)),
            trade("live", 3, "BUY", 65, (65, 24_500.05))]  # fmt: skip
    shadow = [trade("shadow", 1, "BUY", 65, (65, 24_501.50)),
              trade("shadow", 4, "SELL", 130, (130, 24_520.10)),
              trade("shadow", 6, "SELL", 65, (65, 24_515.00))]  # fmt: skip
    live_net = sum(t.pnl(mark(*FUT)) for t in live)
    pairs = pair(live, shadow)
    b = bridge(pairs, [], [], mark, live_net)
    refused = "risk, live, refused it (max_orders_per_min)"
    for p in pairs:
        if p.kind == "shadow_only":
            p.why = refused
    assert [p.moved for p in pairs if p.kind == "live_only"] == [b.causes["live_only"]]
    assert sum(p.moved for p in pairs if p.kind == "shadow_only") == b.causes["shadow_only"]
    line = StrategyShadow("s", pairs, b).line()
    two = b.causes["shadow_only"] / 100
    assert two == pytest.approx(-(130 * (24_520.10 - MARK) + 65 * (24_515.00 - MARK)))
    assert f"2 shadow only, {refused}, {two:+,.2f}" in line, line
    assert f"1 live only, {UNEXPLAINED}, {b.causes['live_only'] / 100:+,.2f}" in line, line
    assert f"slippage {-65 * 0.35:+,.2f}" in line, line
    assert line.startswith(f"s: live {live_net / 100:+,.2f} vs shadow {b.shadow_net / 100:+,.2f}: ")


def test_the_shadows_trades_come_from_a_backtests_rows_with_split_orders_summed() -> None:
    orders = {
        "o1": {"time": 2, "strategy": "s", "intent_id": "i1", "exchange": "NFO",
               "symbol": "X", "action": "SELL", "quantity": 1800, "op": "place"},
        "o2": {"time": 2, "strategy": "s", "intent_id": "i1", "exchange": "NFO",
               "symbol": "X", "action": "SELL", "quantity": 700, "op": "place"},
        "o3": {"time": 5, "strategy": "s", "intent_id": "i2", "exchange": "NFO",
               "symbol": "X", "action": "BUY", "quantity": 2500, "op": "modify"},
    }  # fmt: skip
    fills = [
        {"order_id": "o1", "strategy": "s", "exchange": "NFO", "symbol": "X",
         "action": "SELL", "quantity": 1800, "price": 10.05, "time": 3, "charges": 1.0},
        {"order_id": "o2", "strategy": "s", "exchange": "NFO", "symbol": "X",
         "action": "SELL", "quantity": 700, "price": 10.10, "time": 4, "charges": 0.5},
        {"order_id": "gone", "strategy": "s", "exchange": "NFO", "symbol": "X",
         "action": "BUY", "quantity": 100, "price": 9.0, "time": 6, "charges": 0.0},
    ]  # fmt: skip
    side: SideOfDay = shadow_side(orders, fills)
    (t,) = side.trades["s"]
    assert (t.intent_id, t.quantity, t.filled, t.value, t.charges, t.fills) == (
        "i1",
        2500,
        2500,
        1800 * 1005 + 700 * 1010,
        150,
        2,
    )
    assert [(x.signed, x.value) for x in side.stray["s"]] == [(100, 100 * 900)]


def test_live_trades_from_the_journal_leave_followers_out_and_charge_as_a_contract_note(
    refdata: RefData,
) -> None:
    """The lead account's orders are paired (a split order's children as one decision),
    a follower's are counted; each fill is charged by the same table as the backtest's."""
    day = date(2026, 11, 20)
    ns = int(datetime(2026, 11, 20, 10, 0, tzinfo=IST).timestamp() * 1e9)

    def order(oid: str, intent: str, qty: int, account: str = "main") -> wire.Order:
        return wire.Order(oid, intent, "s", *FUT, "BUY", qty, "MARKET", "NRML", 0.0, 0.0,
                          "risk", account=account)  # fmt: skip

    def fill(n: int, oid: str, qty: int, account: str = "main") -> wire.Fill:
        return wire.Fill(n, f"t{n}", oid, f"b{n}", "s", *FUT, "NRML", "BUY", qty, 24_500.05,
                         ns + n, account=account)  # fmt: skip

    table = load_charges(PROJECT_ROOT / "config")
    next_day = ns + 86_400 * 10**9
    side = live_side(
        [(order("a1", "i1", 1755), ns, "complete", ""),
         (order("a2", "i1", 65), ns + 1, "complete", ""),
         (order("f1", "i1", 65, account="follower"), ns + 2, "complete", ""),
         # the next day's first orders, in a journal rolled a moment late: one handed to the
         # broker (and filled), one not yet when the day's copy was made
         (order("n1", "i2", 65), next_day, "complete", ""),
         (order("n2", "i3", 65), 0, "new", "")],
        [fill(1, "a1", 1755), fill(2, "a2", 65), fill(3, "f1", 65, account="follower"),
         wire.Fill(4, "t4", "n1", "b4", "s", *FUT, "NRML", "BUY", 65, 24_600.0, next_day + 1)],
        refdata, table, day,
    )  # fmt: skip
    (t,) = side.trades["s"]
    assert (t.quantity, t.filled, t.fills, t.value) == (1820, 1820, 2, 1820 * 2_450_005)
    expect = sum(table.of_fill(f, "FUT", day, {}).total for f in (fill(1, "a1", 1755),
                                                                   fill(2, "a2", 65)))  # fmt: skip
    assert t.charges == round(expect * 100)
    assert side.left_out == {"s": 1} and side.other_days == 2
    assert side.stray == {} and side.settled == {}  # the next day's fill left with its order


def test_an_order_cancelled_before_it_reached_the_broker_is_still_the_days_decision(
    refdata: RefData,
) -> None:
    """Risk's halt cancelled an entry still in the router's queue: never handed to the
    broker (no hand-over moment), it is the decision its strategy made that day, paired
    with nothing filled and the router's reason; one decided another day stays out."""
    day = date(2026, 11, 20)
    ns = int(datetime(2026, 11, 20, 14, 52, tzinfo=IST).timestamp() * 1e9)
    base = wire.Order("q1", "i1", "s", *FUT, "BUY", 65, "MARKET", "NRML", 0.0, 0.0, "risk",
                      decided_ns=ns, bar_ns=ns - 120 * 10**9)  # fmt: skip
    later = msgspec.structs.replace(base, order_id="q2", intent_id="i2",
                                    decided_ns=ns + 86_400 * 10**9)  # fmt: skip
    reason = f"{UNSENT}s.risk-19f3-c1"
    # risk's exit close, refused by the router before sending: an exit says no moment
    close = msgspec.structs.replace(base, order_id="s.risk-1a-4", intent_id="risk-1a-4",
                                    decided_ns=0, bar_ns=0)  # fmt: skip
    theirs = msgspec.structs.replace(close, order_id="s@second.risk-1a-5",
                                     intent_id="risk-1a-5", account="second")  # fmt: skip
    side = live_side([(base, 0, "cancelled", reason), (later, 0, "new", ""),
                      (close, 0, "rejected", "broker session expired: place not sent to main"),
                      (theirs, 0, "rejected", "router restarted before sending it; not sent")],
                     [], refdata, load_charges(PROJECT_ROOT / "config"), day)  # fmt: skip
    (t,) = side.trades["s"]
    assert (t.intent_id, t.decided_ns, t.bar_ns, t.filled, t.state, t.reason) == (
        "i1", ns, ns - 120 * 10**9, 0, "cancelled", reason,
    )  # fmt: skip
    assert side.other_days == 1  # the later one; risk's unsent close is said on its own
    assert side.exits_unsent == 1  # the follower's is said on its own side
    assert not side.left_out  # nor counted as a follower's order of the lead's strategies


def test_a_live_trade_is_decided_when_its_strategy_decided_not_when_it_was_sent(
    refdata: RefData,
) -> None:
    """Risk's pacing held an order two minutes before its hand-over to the broker (a
    square-off's burst): it was decided when the strategy decided (the order carries the
    intent's moment), paired with the shadow's decision of then; the time to its fill is
    still counted from the hand-over. An order that says no moment (risk's own exit, an
    older journal) is decided at its hand-over."""
    day = date(2026, 11, 20)
    at = int(datetime(2026, 11, 20, 15, 10, tzinfo=IST).timestamp() * 1e9)
    sent = at + 120 * 10**9
    said = wire.Order("s.i1", "i1", "s", *FUT, "BUY", 65, "MARKET", "NRML", 0.0, 0.0, "risk",
                      decided_ns=at)  # fmt: skip
    unsaid = wire.Order("s.i2", "i2", "s", *FUT, "SELL", 65, "MARKET", "NRML", 0.0, 0.0, "risk")
    fill = wire.Fill(1, "t1", "s.i1", "b1", "s", *FUT, "NRML", "BUY", 65, 24_500.0, sent + 10**9)
    table = load_charges(PROJECT_ROOT / "config")
    side = live_side([(said, sent, "complete", ""), (unsaid, sent, "open", "")], [fill],
                     refdata, table, day)  # fmt: skip
    one, two = side.trades["s"]
    assert (one.decided_ns, one.sent_ns, two.decided_ns) == (at, sent, sent)
    shadow = Trade("shadow", "s", "bt-1", *FUT, "BUY", 65, at)  # type: ignore[arg-type]
    p = pair([one], [shadow])
    assert [q.kind for q in p] == ["matched"]
    assert p[0].row(0.05)["sent_to_fill_ms"] == 1000.0


def test_a_decision_only_live_made_just_after_a_live_rejection_answers_it() -> None:
    """t_strangle's stop rejected for its price band at 09:37:23 and placed again nearer
    the price: live's second decision is the rejection's answer, the shadow (its stop never
    rejected) had none to make. Only a rejection before the decision, within a minute, of
    the same strategy, the latest."""
    minute = 60_000_000_000
    gone = [(10 * minute, "s", "price outside the band"), (10 * minute + 5, "s", "later one"),
            (10 * minute, "other", "x")]  # fmt: skip
    assert answered(gone, "s", 10 * minute + 1_000_000_000) == "later one"
    assert answered(gone, "s", 10 * minute - 1) == ""  # decided before it: not its answer
    assert answered(gone, "s", 11 * minute + 6) == ""  # more than a minute after
    assert answered(gone, "t", 10 * minute + 1) == ""


def test_a_stop_on_a_one_sided_entrys_fill_takes_the_entrys_cause() -> None:
    """Seed 3's t_strangle: live re-entered after its stop was rejected (put to that
    rejection) and placed a stop on the re-entry's fill; the shadow, never re-entering,
    had no fill to answer. The stop takes the entry's cause; a stop on a matched entry's
    fill, or on an unexplained one's, takes none from it."""
    from mytrading.shadow.day import answers

    entry = trade("live", 1, "SELL", 65, (65, 100.0))
    stop = trade("live", 2, "BUY", 65)
    stop.fill_of = entry.intent_id
    why = "placed live after its order was rejected (price band)"
    assert answers([Pair(entry, None, why)], stop) == why
    assert answers([Pair(entry, trade("shadow", 1, "SELL", 65), "")], stop) == ""
    assert answers([Pair(entry, None, UNEXPLAINED)], stop) == ""
    shadow_stop = trade("shadow", 2, "BUY", 65)
    shadow_stop.fill_of = entry.intent_id  # its own side's entry only
    assert answers([Pair(entry, None, why)], shadow_stop) == ""
    assert answers([Pair(entry, None, why)], trade("live", 3, "BUY", 65)) == ""  # no fill_of


def test_an_unmatched_trade_is_put_to_a_refusal_near_it_or_said_unexplained() -> None:
    minute = 60_000_000_000
    refusals = [(10 * minute, "s", "max_orders_per_min"), (10 * minute + 5, "other", "x")]
    assert refused_near(refusals, "s", 10 * minute + 30_000_000_000, "risk, live,") == (
        "risk, live, refused it (max_orders_per_min)")  # fmt: skip
    assert refused_near(refusals, "s", 12 * minute, "risk, live,") == UNEXPLAINED  # too far
    assert refused_near(refusals, "other2", 10 * minute, "risk, live,") == UNEXPLAINED


def test_a_decision_after_the_other_sides_loss_limit_is_put_to_that_state() -> None:
    at = int(datetime(2026, 11, 20, 14, 0, 4, tzinfo=IST).timestamp() * 1e9)
    minute = 60_000_000_000
    states = [(at - 60 * minute, "s", "trading_state", "active"),
              (at, "s", "max_loss", "reducing"),
              (at + minute, "other", "max_loss", "halted")]  # fmt: skip
    why = refused_near([], "s", at + 5 * minute, "the shadow's risk", states)
    assert why == "the shadow's risk had it reducing since 14:00:04 (max_loss)"
    assert refused_near([], "s", at - 1, "the shadow's risk", states) == UNEXPLAINED  # before
    back = [*states, (at + 3 * minute, "s", "trading_state", "active")]  # active again
    assert refused_near([], "s", at + 5 * minute, "the shadow's risk", back) == UNEXPLAINED
    stack = [(at, "*", "kill_switch", "halted")]  # the whole stack's state counts too
    assert "had it halted since 14:00:04 (kill_switch)" in refused_near([], "s", at + 1, "x", stack)
    # a refusal near the moment is the nearer cause
    assert refused_near([(at + 5 * minute, "s", "max_orders_per_min")], "s", at + 5 * minute,
                        "x", states) == "x refused it (max_orders_per_min)"  # fmt: skip


def test_a_cold_start_of_the_shadow_is_the_cause_until_it_is_warm() -> None:
    """The shadow's warm-up found fewer bars than asked (a recording that begins on the
    day, where live warmed up from the broker's history): one side's decisions until the
    shadow has its bars (from the day's first tick) are put to that cold start."""
    first_tick = int(datetime(2026, 11, 20, 10, 19, 30, tzinfo=IST).timestamp() * 1e9)
    start = int(datetime(2026, 11, 20, 9, 15, tzinfo=IST).timestamp() * 1e9)
    warm = cold_until([("s", "1m", 1, 4, start), ("s", "3m", 50, 50, start)], first_tick)
    until, what = warm["s"]
    assert until == first_tick + 3 * 60 * 10**9 and what == "1 of 4 1m bars"
    assert "the shadow's cold start (it started with 1 of 4 1m bars" in cold_start(
        warm, "s", until - 1
    )
    assert cold_start(warm, "s", until) == "" and cold_start(warm, "other", 0) == ""
    # the in-router venue (MT_BROKER=sim) has no history: live was as cold, said so
    said = cold_start(warm, "s", 0, live_history=False)
    assert "live had no broker history either and started cold too" in said
    assert "warmed up from the broker's history" not in said


def test_days_sum_up_per_strategy_by_hour_instrument_and_cause() -> None:
    def at(h: int, m: int) -> int:
        return int(datetime(2026, 11, 20, h, m, tzinfo=IST).timestamp() * 1e9)

    def one(n: int, when: int, live_px: float, shadow_px: float | None) -> Pair:
        lv = trade("live", n, "BUY", 65, (65, live_px))
        lv.decided_ns = when
        if shadow_px is None:
            return Pair(lv, None, UNEXPLAINED)
        return Pair(lv, trade("shadow", n, "BUY", 65, (65, shadow_px)))

    pairs = [one(1, at(9, 20), 100.10, 100.00), one(2, at(9, 40), 100.05, 100.00),
             one(3, at(14, 5), 100.00, 100.00), one(4, at(14, 30), 101.00, None)]  # fmt: skip
    b = bridge(pairs, [], [], mark, sum(p.live.pnl(mark(*FUT)) for p in pairs if p.live))
    d = ShadowDay(date(2026, 11, 20), {"s": StrategyShadow("s", pairs, b)}, {}, {})
    sm = summarize([d, d])["s"]
    j = sm.to_json()
    assert (j["days"], j["matched"], j["live_only"], j["matched_share"]) == (2, 6, 2, 0.75)
    assert j["slippage_per_trade"] == {"mean": -3.25, "median": -3.25, "worst": -6.5,
                                       "trades": 6}  # fmt: skip
    assert j["slippage_by_hour"] == {"09": -4.88, "14": 0.0}
    assert j["slippage_by_instrument"] == {FUT[1]: -19.5}
    assert [k for k, _ in sm.ranked()] == ["live_only", "slippage"]
    assert round(sm.live_net - sm.shadow_net, 2) == round(sum(v for _, v in sm.ranked()), 2)


def test_a_matched_pair_filled_differently_says_why_from_its_orders_states() -> None:
    def both(live_state: str, live_fills: tuple[tuple[int, float], ...], reason: str = "") -> str:
        lv = trade("live", 1, "BUY", 65, *live_fills)
        lv.state, lv.reason = live_state, reason
        sh = trade("shadow", 1, "BUY", 65, (65, 100.0))
        sh.state = "complete"
        return fills_differ(Pair(lv, sh))

    assert both("rejected", (), "RMS: margin exceeds") == "rejected live (RMS: margin exceeds)"
    assert both("open", ()) == "a limit or stop not reached live by the close"
    assert both("partial", ((15, 100.0),)) == "partly filled live by the close"
    assert both("cancelled", ((15, 100.0),)) == "cancelled live with 15 of 65 filled"
    assert both("unknown", ()) == "unknown at the broker live (a lost reply never found)"
    assert both("complete", ((65, 100.1),)) == ""  # the same quantity: slippage only


def test_risks_own_exits_pair_apart_from_the_strategys_decisions() -> None:
    """A stop that only one side's prices set off does not shift the strategy's pairs."""
    exit_ = trade("live", 2, "SELL", 65)
    exit_.intent_id = "risk-abc-1"
    live = [trade("live", 1, "BUY", 65), exit_, trade("live", 3, "SELL", 65)]
    shadow = [trade("shadow", 1, "BUY", 65), trade("shadow", 3, "SELL", 65)]
    got = [(p.kind, p.live.intent_id if p.live else "", p.shadow.intent_id if p.shadow else "")
           for p in pair(live, shadow)]  # fmt: skip
    # (lined up as one sequence, the exit would have taken the shadow's sale of 3)
    assert got == [("matched", "live-1", "shadow-1"), ("live_only", "risk-abc-1", ""),
                   ("matched", "live-3", "shadow-3")]  # fmt: skip


def test_only_strategies_with_a_file_are_shadowed_and_the_others_are_said(
    settings: Settings,
) -> None:
    rep = journal.Replay()
    # a webhook strategy has no class to run; a follower account's copies are booked as
    # the lead's strategy at that account
    for name in ("sma_crossover", "tv_alerts", "sma_crossover@second"):
        o = wire.Order(f"{name}.1", "1", name, *FUT, "BUY", 65, "MARKET", "NRML", 0.0, 0.0,
                       "risk")  # fmt: skip
        rep.orders[o.order_id] = TrackedOrder(o, OrderState.COMPLETE)
    notes: list[str] = []
    assert traded_strategies(settings, rep, notes) == ["sma_crossover"]
    assert notes == [
        "a follower account's copies set against its lead's, not the shadow's (the shadow "
        "trades the lead account): sma_crossover@second (1 orders)",
        "not shadowed (no strategy file of that name: a webhook strategy or one removed "
        "since): tv_alerts",
    ]


def test_the_days_journal_is_found_rolled_aside_or_current(settings: Settings) -> None:
    """A later day's start rolls the journal aside as ``journal.bin.day-<day>``: the shadow
    of that day reads the copy; the current file is read for its own day only."""
    base = venue.current(settings).dir / "router" / "journal.bin"
    base.parent.mkdir(parents=True)

    def write(path: Path, day: str, oid: str) -> None:
        o = wire.Order(oid, "1", "sma_crossover", *FUT, "BUY", 65, "MARKET", "NRML", 0.0, 0.0,
                       "risk")  # fmt: skip
        t = TrackedOrder(o, OrderState.COMPLETE)
        path.write_bytes(journal.frame(journal.Record("day", 0, day=day))
                         + journal.frame(journal.order_record(oid, t, o)))  # fmt: skip

    write(base.with_name("journal.bin.day-2026-11-20"), "2026-11-20", "friday")
    write(base, "2026-11-23", "monday")
    assert list(journal_of(settings, date(2026, 11, 20)).orders) == ["friday"]
    assert list(journal_of(settings, date(2026, 11, 23)).orders) == ["monday"]
    with pytest.raises(ShadowError, match="no router journal of 2026-11-19"):
        journal_of(settings, date(2026, 11, 19))
