"""Bars that differed between live and the shadow (``shadow/bars.py``): live's bars as the
feed's builder handed and recorded them, against the bars the recorded ticks make."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from mytrading.domain.bars import BarBuilder
from mytrading.domain.refdata import IST, RefData
from mytrading.messaging import wire
from mytrading.orders.state import UNSENT
from mytrading.shadow.bars import MINUTE_NS, BarDiff, bar_cause, compare, differing_bars
from mytrading.shadow.day import fills_differ, follows, last_held_alike, partings
from mytrading.shadow.pairing import UNEXPLAINED, Pair
from mytrading.shadow.trades import Trade
from mytrading.stores.recording import Recorder, connect

DAY = date(2026, 11, 24)
FUT = ("NFO", "NIFTY24NOV26FUT")
SPOT = ("NSE_INDEX", "NIFTY")


def at(hh: int, mm: int, ss: float = 0.0) -> int:
    return int(datetime(2026, 11, 24, hh, mm, tzinfo=IST).timestamp() * 1e9 + ss * 1e9)


def tick(key: tuple[str, str], t: int, ltp: float, vol: int) -> wire.Tick:
    return wire.Tick(*key, ltp, ltp - 0.05, ltp + 0.05, 75, 75, vol, exch_ns=t)


def test_a_late_tick_a_backfilled_hole_and_an_unhanded_minute_are_seen(
    refdata: RefData, tmp_path: Path
) -> None:
    """The feed's own builder, fed ticks with their arrival times, hands the bars; the
    recorder writes the ticks and the bars as the feed does. A tick stamped 10:00:59.9
    arriving at 10:01:05 (after its minute was handed) is in the recorded ticks but not in
    live's bar: the close differs. A minute the feed took from history has a bar and no
    tick. Every other minute is the same on both sides, and the index whose bars match is
    not listed."""
    rec = Recorder(tmp_path / "md.duckdb", idle_release_s=None)
    feed = BarBuilder(refdata.calendar, "1m", grace_ns=2 * 10**9)
    arrivals = [
        (tick(FUT, at(10, 0, 1), 24_500.0, 100), at(10, 0, 1)),
        (tick(SPOT, at(10, 0, 1), 24_480.0, 0), at(10, 0, 1)),
        (tick(FUT, at(10, 0, 30), 24_505.0, 200), at(10, 0, 30)),
        (tick(FUT, at(10, 1, 2), 24_510.0, 300), at(10, 1, 2)),  # hands 10:00, close 24,505
        (tick(SPOT, at(10, 1, 2), 24_481.0, 0), at(10, 1, 2)),
        (tick(FUT, at(10, 0, 59.9), 24_520.0, 250), at(10, 1, 5)),  # late: 10:00 is gone
        (tick(FUT, at(10, 1, 40), 24_512.0, 400), at(10, 1, 40)),
        (tick(FUT, at(10, 2, 10), 24_515.0, 500), at(10, 2, 10)),  # hands 10:01
    ]
    handed: list[wire.Bar] = []
    for t, arrived in arrivals:
        rec.add_tick(t)
        got = feed.on_tick(t, arrived)
        if got is not None:
            handed.append(got)
    handed += feed.close_due(at(10, 2, 5))  # the index, quiet, by the clock
    # 10:05: a minute the backfill brought from history after a gap (no tick recorded)
    handed.append(wire.Bar(*FUT, "1m", at(10, 5), 24_530.0, 24_540.0, 24_525.0, 24_535.0, 900,
                           closed_by="history"))  # fmt: skip
    for b in handed:
        rec.add_bar(b)
    rec.flush()
    rec.close()
    assert feed.stats.late == 1  # the builder's own count agrees: one late tick

    with connect(tmp_path / "md.duckdb", read_only=True) as con:
        diffs = differing_bars(con, DAY)
    assert list(diffs) == [FUT]
    late, unhanded, backfilled = diffs[FUT]
    assert (late.start_ns, late.live, late.ticks) == (
        at(10, 0),
        (24_500.0, 24_505.0, 24_500.0, 24_505.0),
        (24_500.0, 24_520.0, 24_500.0, 24_520.0),
    )
    assert late.said() == (
        "live's NIFTY24NOV26FUT 10:00 bar differed from its recorded ticks "
        "(high 24,505.00 vs 24,520.00, close 24,505.00 vs 24,520.00)"
    )
    # the 10:02 tick's bar was never handed (the stack stopped first): ticks, no live bar
    assert (unhanded.start_ns, unhanded.live, unhanded.n_ticks) == (at(10, 2), None, 1)
    assert unhanded.said() == "live handed no NIFTY24NOV26FUT 10:02 bar (1 tick(s) recorded in it)"
    assert (backfilled.start_ns, backfilled.ticks) == (at(10, 5), None)
    assert "from the broker's history after a gap in the feed" in backfilled.said()


def test_a_decision_is_put_to_the_latest_differing_bar_since_the_sides_last_held_alike() -> None:
    def diff(key: tuple[str, str], mm: int) -> BarDiff:
        return BarDiff(*key, at(10, mm), (1.0, 2.0, 1.0, 2.0), (1.0, 2.0, 1.0, 1.5), 3)

    diffs = {FUT: [diff(FUT, 0), diff(FUT, 4)], SPOT: [diff(SPOT, 2)]}
    # both watched; the sides last held alike at 10:00:30, before the 10:00 bar ended:
    # all three count, the 10:04 one is named
    why = bar_cause(diffs, [FUT, SPOT], at(10, 0, 30), at(10, 5, 2))
    assert why.startswith("a bar that differed: live's NIFTY24NOV26FUT 10:04 bar")
    assert why.endswith("(close 2.00 vs 1.50); 3 bars differed since the sides last held alike")
    # a bar that ends after the decision did not decide it
    assert bar_cause(diffs, [FUT], at(10, 1, 30), at(10, 4, 59)) == ""
    # one ending exactly at the decision's step did
    assert "10:04" in bar_cause(diffs, [FUT], 0, at(10, 4) + MINUTE_NS)
    # not a watched instrument: no cause
    assert bar_cause(diffs, [("NFO", "OTHER")], 0, at(11, 0)) == ""
    # alike again after the differing bar: it is not the cause of what came after
    assert bar_cause(diffs, [SPOT], at(10, 3, 1), at(10, 9)) == ""


def test_equal_bars_and_instruments_live_never_made_bars_of_are_not_listed() -> None:
    ohlc = (10.0, 11.0, 9.5, 10.5)
    got = compare(
        [("NFO", "A", 0, ohlc, 4), ("NFO", "B", 0, ohlc, 2)],  # B: live made no bars of it
        [("NFO", "A", 0, ohlc)],
    )
    assert got == {}


def test_the_sides_hold_alike_again_only_when_their_positions_are_the_same() -> None:
    """Both bought at 10:00; live sold at 10:01 alone (a bar differed in the shadow); at
    10:02 both bought, paired as one decision, yet live is long 65 and the shadow 130; the
    shadow's sale at 10:03 brings both to 65 again. Between 10:00 and 10:03 every pair looks
    back to 10:00; an order neither side filled (10:04) keeps them alike."""

    def t(side: str, mm: int, action: str, filled: int = 65) -> Trade:
        return Trade(side, "s", f"{side}{mm}", *FUT, action, 65, at(10, mm), filled=filled)  # type: ignore[arg-type]

    pairs = [
        Pair(t("live", 0, "BUY"), t("shadow", 0, "BUY")),  # alike after it: 10:00
        Pair(t("live", 1, "SELL"), None),  # live flat, shadow long
        Pair(t("live", 2, "BUY"), t("shadow", 2, "BUY")),  # live long, shadow 130
        Pair(None, t("shadow", 3, "SELL")),  # alike again: 10:03
        Pair(t("live", 4, "SELL", filled=0), t("shadow", 4, "SELL", filled=0)),  # unfilled
        Pair(t("live", 5, "SELL"), None),
    ]
    assert last_held_alike(pairs) == [0, at(10, 0), at(10, 0), at(10, 0), at(10, 3), at(10, 4)]


def test_a_decision_made_while_the_positions_are_apart_takes_the_cause_that_parted_them() -> None:
    def t(side: str, mm: int, action: str) -> Trade:
        return Trade(side, "s", f"{side}{mm}", *FUT, action, 65, at(10, mm), filled=65)  # type: ignore[arg-type]

    parted = Pair(t("live", 1, "BUY"), None, why="a bar that differed: live's ... 10:00 bar")
    pairs = [Pair(t("live", 0, "BUY"), t("shadow", 0, "BUY")), parted,
             Pair(None, t("shadow", 4, "SELL")), Pair(t("live", 6, "SELL"), None)]  # fmt: skip
    book, _, _ = partings(pairs)
    assert book == [None, None, parted, parted]  # apart since 10:01, still apart at 10:06
    assert follows(book[2]) == follows(book[3]) == parted.why
    assert follows(book[1]) == ""  # nothing parted them before
    parted.why = UNEXPLAINED
    assert follows(book[2]) == ""  # an unexplained origin explains nothing


def test_an_instruments_own_parting_is_the_cause_of_a_decision_on_it() -> None:
    """A strangle: live bought the put back at 10:01 alone (unexplained), then live's risk
    refused the call's re-entry at 10:02 that the shadow made. The shadow's exit of that
    call at 14:51 is the refusal's (its own instrument parted there), though the book as a
    whole parted first on the put; the shadow's exit of the put stays unexplained."""
    put, call = ("NFO", "PUT"), ("NFO", "CALL")

    def t(side: str, mm: int, leg: tuple[str, str], action: str, hh: int = 10) -> Trade:
        return Trade(side, "s", f"{side}{hh}{mm}{leg[1]}", *leg, action, 65, at(hh, mm),  # type: ignore[arg-type]
                     filled=65)  # fmt: skip

    refused = Pair(None, t("shadow", 2, call, "SELL"), why="risk, live, refused it (rate)")
    pairs = [
        Pair(t("live", 0, put, "SELL"), t("shadow", 0, put, "SELL")),
        Pair(t("live", 1, put, "BUY"), None, why=UNEXPLAINED),
        refused,
        Pair(None, t("shadow", 51, call, "BUY", hh=14)),
        Pair(None, t("shadow", 51, put, "BUY", hh=14)),
    ]
    book, here, _ = partings(pairs)
    assert book[3] is pairs[1] and here[3] is refused  # the call: apart since the refusal
    assert follows(book[3], here[3]) == refused.why
    assert follows(book[3]) == ""  # the book's first parting: the put's, unexplained
    assert here[4] is pairs[1] and follows(book[4], here[4]) == ""  # the put: unexplained
    # an instrument held alike until this decision: the book's parting steers it
    assert here[2] is None and follows(book[2], here[2]) == ""


def test_a_matched_decision_live_never_filled_parts_the_sides() -> None:
    """An iron condor's fourth leg: both sides decided it, live's order was cancelled in
    the router's queue by risk before it reached the broker, the shadow's filled. Live's
    later close of the three legs it held (its loss stop, on three legs) follows from that
    cancel, though every decision before it was matched and shares its moment."""
    legs = [("NFO", f"LEG{k}") for k in range(4)]

    def t(side: str, leg: int, action: str, hh: int = 9, filled: int = 65) -> Trade:
        return Trade(side, "s", f"{side}{hh}{leg}", *legs[leg], action, 65, at(hh, 31),  # type: ignore[arg-type]
                     filled=filled)  # fmt: skip

    never = t("live", 3, "SELL", filled=0)
    never.state, never.reason = "cancelled", f"{UNSENT}s.risk-19f3-c1"  # the router's words
    cancelled = Pair(never, t("shadow", 3, "SELL"))
    cancelled.why = fills_differ(cancelled)
    assert cancelled.why == (
        "cancelled live before it reached the broker (by risk) with 0 of 65 filled"
    )
    pairs = [Pair(t("live", k, "BUY"), t("shadow", k, "BUY")) for k in range(3)]
    pairs += [cancelled, Pair(t("live", 0, "SELL", hh=14), None)]
    book, here, _ = partings(pairs)
    assert book[:4] == [None] * 4 and book[4] is cancelled
    assert here[4] is None  # the leg it closed was held alike: the book's parting steers it
    assert follows(book[4], here[4]) == cancelled.why
