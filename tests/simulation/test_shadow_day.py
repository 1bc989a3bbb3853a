"""The day's shadow of a simulated trading day (``Options.record``): the feed records
the ticks and bars, risk's events are kept in its DuckDB file, and after the close
``shadow_day`` reads the stack's own files (recording, router journal, risk events, the
in-process OpenAlgo's history for the warm-ups) as it does after a real close. A
planted cause (a lost reply) is seen in its own words, on the daemons' own cores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mytrading.domain.refdata import RefData
from mytrading.settings import PROJECT_ROOT
from mytrading.shadow.pairing import UNEXPLAINED
from mytrading.simulation.run import run_seed
from mytrading.simulation.stack import Options

pytestmark = pytest.mark.integration  # a trading day of the whole stack


def test_a_simulated_days_shadow_pairs_live_with_its_backtest(
    refdata: RefData, tmp_path: Path
) -> None:
    r = run_seed(3, tmp_path, refdata, Options(record=True, faults=False, operator=False))
    assert r.ok, r.violations
    sd = r.shadow
    assert sd is not None and sd.day.isoformat() == r.day
    live = sum(st.counts()["matched"] + st.counts()["live_only"] for st in sd.strategies.values())
    matched = sum(st.counts()["matched"] for st in sd.strategies.values())
    assert live >= 20, "the day hardly traded: nothing to compare"
    # decisions paired on the bar that made them (a strategy that warmed up late in the
    # simulated stack decided on its held bars minutes after the shadow: unpaired before)
    assert matched >= 0.8 * live, (matched, live)
    whole = [n for n, st in sd.strategies.items() if st.counts()["matched"]
             and not st.counts()["live_only"] and not st.counts()["shadow_only"]]  # fmt: skip
    assert len(whole) >= 4, whole
    for name in whole:  # every decision matched: nothing but slippage and charges between
        b = sd.strategies[name].bridge
        assert b.causes[UNEXPLAINED] == 0, (name, b.causes)
        assert b.shadow_net + b.causes["slippage"] + b.causes["charges"] + b.causes[
            "fills_differ"] == b.live_net  # fmt: skip


def test_a_lost_reply_is_named_where_it_parted_the_sides(refdata: RefData, tmp_path: Path) -> None:
    """The simulator loses the reply of the next placement at 9 s (09:33 at 120x) and
    garbles the books until 13 s: the order is unknown, its strategy halted, then found
    at the broker and adopted. Its trade is matched and says so; what its strategy did
    on one side only from its hand-over until it was found is put to it."""

    def lose(stack: Any) -> None:
        stack.main.faults.lose_next = 1
        stack.main.faults.garble = 1.0

    def heal(stack: Any) -> None:
        stack.main.faults.garble = 0.0

    opts = Options(record=True, faults=False, operator=False, script=((9.0, lose), (13.0, heal)))
    r = run_seed(3, tmp_path, refdata, opts)
    assert r.ok, r.violations
    lost = [(n, p) for n, st in r.shadow.strategies.items() for p in st.pairs
            if p.why.startswith("its reply lost live")]  # fmt: skip
    assert len(lost) == 1, "no lost reply seen: the scenario proves nothing"
    name, pr = lost[0]
    assert pr.kind == "matched" and "found at the broker as" in pr.why, pr.why
    parted = [p for p in r.shadow.strategies[name].pairs
              if p.kind != "matched" and p.why.startswith("live's order ")]  # fmt: skip
    assert parted, "nothing put to the lost reply"
    assert all(pr.live and pr.live.intent_id in p.why for p in parted)
    line = r.shadow.strategies[name].line()  # the end-of-day message's, with its rupees
    assert "had its reply lost" in line, line


def test_a_feed_gap_the_backfill_filled_is_named_where_it_parted_the_sides(
    refdata: RefData, tmp_path: Path
) -> None:
    """The broker drops the feed's connection at 6 s (09:27 at 120x) and refuses it
    again until 10 s: the feed reconnects and backfills the gap's minutes from history,
    so live decided on bars with no recorded tick; the shadow, on the recorded ticks,
    had none. The decisions that parted are put to those bars, with their rupees in the
    end-of-day line."""

    def drop(stack: Any) -> None:
        stack.main.ws_refused = True
        for c in list(stack.main.connections):
            if not c.server.orders:  # the feed's session; the router's stays
                c.drop("the server dropped the connection")

    def back(stack: Any) -> None:
        stack.main.ws_refused = False

    opts = Options(record=True, faults=False, operator=False, script=((6.0, drop), (10.0, back)))
    r = run_seed(3, tmp_path, refdata, opts)
    assert r.ok, r.violations
    gap = "from the broker's history after a gap in the feed (no tick recorded)"
    parted = {n: [p for p in st.pairs if gap in p.why] for n, st in r.shadow.strategies.items()}
    parted = {n: ps for n, ps in parted.items() if ps}
    assert parted, "no decision put to the backfilled bars: the scenario proves nothing"
    for name, ps in parted.items():
        assert all(p.kind != "matched" for p in ps)
        assert gap in r.shadow.strategies[name].line()


def test_a_seeds_shadow_is_the_same_every_time(tmp_path: Path) -> None:
    """``main.py simulate --seed 7 --shadow`` (faults, an operator: a whole bad day)
    prints the day's shadow; the same seed run again shadows to the same lines: the
    recording the feed's writer thread made and every cause read back are the seed's.
    Both runs by the command, which fixes string hashing (as a seed's day needs: an
    in-process run under another hash seed may order a set otherwise, and a thin book
    then fills otherwise; seen on seed 2 of ``bench/shadow_simulated.py`` run twice).

    Seed 7's day: live's warm-up ends late on the fast clock (09:20:54), so its
    strategies decide on the 09:16 bar minutes after the shadow did, and risk, with no
    funds figure from the broker (its session expired at 09:18:09), refuses them. Each
    such decision is found on its bar (the refusal keeps it): none unexplained."""
    runs = []
    for i in range(2):
        out = subprocess.run(
            [sys.executable, "main.py", "simulate", "--seed", "7", "--shadow", "--json",
             "--trace", str(tmp_path / f"seed-7-{i}.trace")],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        runs.append(json.loads(out.stdout)["shadow"]["strategies"])
    cli, here = runs
    assert len(cli) >= 5, "the day hardly traded"
    assert {n: s["line"] for n, s in here.items()} == {n: s["line"] for n, s in cli.items()}
    for name in ("sma_crossover", "rsi_mean_reversion"):
        assert "1 shadow only, risk, live, refused it (margin)" in cli[name]["line"], cli[name]
    # sma_crossover's follower account (x2) against its lead: copies the follower's own
    # risk refused (max_notional, from risk's events by the copy's intent) are named
    second = cli["sma_crossover"]["followers"]["second"]
    assert second["decisions"] >= 3 and second["copied"] >= 1, second
    assert second["not_copied"].get("refused: max_notional", 0) >= 1, second
    assert "; follower second: " in cli["sma_crossover"]["line"]
    assert not [s["line"] for s in cli.values() if UNEXPLAINED in s["line"]]


def test_a_broker_session_that_expired_is_named_where_it_parted_the_sides(
    refdata: RefData, tmp_path: Path
) -> None:
    """The broker's session expires at 6 s (09:27 at 120x) and comes back at 10 s: the
    router refuses the lead account's orders meanwhile. Risk keeps both moments from the
    router's beats (kind ``router``); the entries live never placed are put to them."""

    def expire(stack: Any) -> None:
        stack.main.server.session_expired = True

    def renew(stack: Any) -> None:
        stack.main.server.session_expired = False

    opts = Options(record=True, faults=False, operator=False, script=((6.0, expire), (10.0, renew)))
    r = run_seed(3, tmp_path, refdata, opts, keep=True)  # its files kept: risk's events read
    assert r.ok, r.violations
    kept = [(ev.kind, ev.rule, ev.action) for ev in r_events(tmp_path)]
    assert ("router", "session_expired", "refusing") in kept
    assert ("router", "taking", "taking") in kept
    said = "live's router refused orders (the broker session expired) from 09:2"
    parted = [p for st in r.shadow.strategies.values() for p in st.pairs if said in p.why]
    assert parted, "no decision put to the expired session: the scenario proves nothing"
    assert all(p.kind == "shadow_only" for p in parted)  # live placed none of them


def test_orders_a_full_disk_refused_are_named_where_they_parted_the_sides(
    refdata: RefData, tmp_path: Path
) -> None:
    """The router's disk is full from 8 s to 11 s (09:31-09:37 at 120x): its journal
    refuses the writes, so the orders of then are rejected before the journal takes
    them (kept nowhere but risk's record of the rejection), and the router refuses
    orders until its journal writes again (risk's record of its beats)."""

    def full(stack: Any) -> None:
        stack.disk_full = True

    def free(stack: Any) -> None:
        stack.disk_full = False

    opts = Options(record=True, faults=False, operator=False, script=((8.0, full), (11.0, free)))
    r = run_seed(3, tmp_path, refdata, opts)
    assert r.ok, r.violations
    whys = [p.why for st in r.shadow.strategies.values() for p in st.pairs if p.kind != "matched"]
    assert any(w.startswith("live's order for it was rejected (not sent: journal write refused")
               for w in whys), whys  # fmt: skip
    assert any(w.startswith("live's router refused orders (its journal refused writes")
               for w in whys), whys  # fmt: skip


def test_entries_a_risk_cap_refused_live_are_named_with_their_rupees(
    refdata: RefData, tmp_path: Path
) -> None:
    """t_strangle capped at 5 orders a minute. Risk counts that minute on the wall
    clock, and the simulated day runs 120-240 market seconds to a wall second, so live
    refuses the strategy's re-entries of the morning (09:39, 09:43) that the shadow,
    counting on the market's clock as a backtest does, lets through: a cap that binds
    live only, as a burst of decisions does on a real day. The shadow's trades live never
    made are put to the refusal, the re-entry's exit hours later too, each with what the
    shadow's trade made by the close."""
    opts = Options(record=True, faults=False, operator=False,
                   risk=(("t_strangle", "max_orders_per_min", 5),))  # fmt: skip
    r = run_seed(3, tmp_path, refdata, opts, keep=True)
    assert r.ok, r.violations
    refusals = [ev for ev in r_events(tmp_path)
                if ev.strategy == "t_strangle" and ev.kind == "rejected"]  # fmt: skip
    assert [ev.rule for ev in refusals] == ["order_rate_minute"] * 2, refusals
    sd = r.shadow
    assert sd is not None
    st = sd.strategies["t_strangle"]
    said = "risk, live, refused it (order_rate_minute)"
    refused = [p for p in st.pairs if p.why == said]
    assert refused and all(p.kind == "shadow_only" for p in refused), st.pairs
    # the refused entry, and its exit after the quiet midday: one cause for both
    assert {p.shadow.action for p in refused if p.shadow} == {"SELL", "BUY"}
    assert max(p.decided_ns for p in refused) - min(p.decided_ns for p in refused) > 3600e9
    for p in refused:  # each one's rupees: what the shadow's trade made by the close
        t = p.shadow
        assert t is not None
        made = t.sign * (sd.marks[(t.exchange, t.symbol)] - t.avg) * t.filled
        assert abs(p.moved / 100 + made) < 0.01, (p.moved, made)
    rupees = sum(p.moved for p in refused) / 100
    assert f"{len(refused)} shadow only, {said}, {rupees:+,.2f}" in st.line(), st.line()
    b = st.bridge  # still adding up to the paisa
    assert b.shadow_net + sum(b.causes.values()) == b.live_net


def r_events(workdir: Path) -> list[Any]:
    """Risk's events of the seed's day, as stored in its DuckDB file."""
    from mytrading.messaging import wire
    from mytrading.risk.events import read_events

    rows = read_events(workdir / "seed-3" / "data" / "risk.duckdb", limit=100_000)
    return [wire.RiskEvent(strategy=r[1], kind=r[2], rule=r[3], reason=r[7], action=r[6])
            for r in rows]  # fmt: skip


def test_decisions_live_made_on_bars_a_warm_up_held_are_named(
    refdata: RefData, tmp_path: Path
) -> None:
    """Seed 1's day on the fast clock: a strategy's first live bar waits for the broker's
    whole copy up to 5 s, ten market minutes at 120x, and its bars wait with it, then go
    to it at once, each decided without the fills of the ones before. The engine keeps
    each hold (``engine/warmlog.py``); the shadow puts the one-sided decisions on those
    bars, and those after them until the sides agree again, to it."""
    from mytrading.engine import warmlog

    r = run_seed(1, tmp_path, refdata, Options(record=True, faults=False, operator=False),
                 keep=True)  # fmt: skip
    assert r.ok, r.violations
    sd = r.shadow
    assert sd is not None
    records = warmlog.read(tmp_path / "seed-1" / "state" / "engine", sd.day)
    holds = [h for h in records if h.held >= 2]
    assert holds, records
    named = [(n, p) for n, st in sd.strategies.items() for p in st.pairs
             if "held for a warm-up" in p.why]  # fmt: skip
    assert named, "no decision put to a hold: the scenario proves nothing"
    for name, p in named:
        mine = [h for h in holds if h.strategy == name]
        assert mine, (name, p.why)  # the hold named is the strategy's own
        assert any(f"{h.held} handed at once" in p.why and h.first_ns <= p.decided_ns
                   for h in mine), (p.why, mine)  # fmt: skip
    assert any(
        h.holds(t.bar_ns)
        for n, p in named
        for h in holds
        if h.strategy == n
        for t in (p.live, p.shadow)
        if t is not None
    )  # one decided on a held bar
    for st in sd.strategies.values():
        b = st.bridge
        assert b.shadow_net + sum(b.causes.values()) == b.live_net


def test_a_pause_a_parameter_change_and_an_engine_restart_are_each_named(
    refdata: RefData, tmp_path: Path
) -> None:
    """Seed 3 at 120x with an operator's hand on it: stock_futures_trend paused for ten
    market minutes (09:29 to 09:39, over its 09:33 reversal), rsi_mean_reversion's period
    changed at 09:21, and the engine killed at 14:52 and back at 14:56 (after the quiet
    midday). The pause and the change are given to the shadow at their moments (the
    pause's rupees the bridge's operator line, the paused strategy's alone); the
    decisions live missed or made late around the restart are put to it; nothing is left
    unexplained and every bridge adds up to the paisa."""

    def command(what: str, target: str, arg: Any = None) -> Any:
        return lambda stack: stack.operator._command(what, target, arg)

    script = (
        (3.0, command("params", "rsi_mean_reversion", {"period": 10})),
        (7.0, command("pause", "stock_futures_trend")),
        (12.0, command("resume", "stock_futures_trend")),
        (17.0, lambda stack: stack.restart_daemon("engine", 1.0)),
    )
    opts = Options(record=True, faults=False, operator=False, script=script)
    r = run_seed(3, tmp_path, refdata, opts)
    assert r.ok, r.violations
    sd = r.shadow
    assert sd is not None
    given = [(g.row()["target"], g.row()["what"]) for g in sd.given]
    assert given == [("stock_futures_trend", "state halted"),
                     ("stock_futures_trend", "state active")], sd.given  # fmt: skip
    assert sd.given[1].at_ns - sd.given[0].at_ns == 600 * 10**9  # ten market minutes
    (change,) = sd.switches
    assert (change.strategy, change.after) == ("rsi_mean_reversion", {"period": 10})
    operator = {n: st.bridge.causes.get("operator", 0) for n, st in sd.strategies.items()}
    assert operator.pop("stock_futures_trend") != 0, "the pause changed nothing: proves nothing"
    assert not any(operator.values()), operator  # no other strategy was paused
    assert "operator " in sd.strategies["stock_futures_trend"].line()
    restart = [p for st in sd.strategies.values() for p in st.pairs
               if p.why.startswith("the engine restarted live")]  # fmt: skip
    assert restart, "no decision put to the engine's restart: the scenario proves nothing"
    assert all(p.decided_ns >= sd.given[1].at_ns for p in restart)  # the afternoon's kill
    for name, st in sd.strategies.items():
        assert not [p for p in st.pairs if p.why == UNEXPLAINED], (name, st.pairs)
        b = st.bridge
        assert b.shadow_net + sum(b.causes.values()) == b.live_net
