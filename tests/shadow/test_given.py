"""The operator's commands of the day, given to the shadow at their moments: read back from
risk's events, replayed by the backtest's risk as live risk took them, and what they
changed put to the bridge's ``operator`` line (the shadow without them to the shadow with
them), the bridge still adding up to the paisa."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from mytrading.backtest.data import DataError, GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.domain.refdata import IST, RefData
from mytrading.engine.strategy import BaseStrategy, StrategyParams
from mytrading.messaging import wire
from mytrading.risk.config import risk_files
from mytrading.settings import PROJECT_ROOT
from mytrading.shadow.given import given_commands
from mytrading.shadow.pairing import Bridge

DAY = date(2026, 11, 20)
NS = 10**9


def at(hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime(2026, 11, 20, hh, mm, ss, tzinfo=IST).timestamp()) * NS


def row(hhmmss: str, strategy: str, kind: str, rule: str, action: str, reason: str = "") -> tuple:
    """One row as ``risk.events.read_events`` gives it."""
    return (f"2026-11-20 {hhmmss}", strategy, kind, rule, None, None, action, reason, [])


def test_the_operators_commands_are_read_back_from_risks_events_and_nothing_else() -> None:
    rows = [
        row("11:10:00", "flipper", "state", "trading_state", "active", "resumed by cli:ops"),
        row("11:00:00", "flipper", "state", "trading_state", "halted", "paused by cli:ops"),
        row("12:00:00", "other", "state", "trading_state", "stop", "stopped by api:desk"),
        row("13:00:00", "*", "kill_switch", "trading_state", "flatten", "kill switch"),
        row("13:05:00", "*", "kill_switch", "trading_state", "off", ""),
        row("10:00:00", "flipper", "state", "max_loss", "halted", "its own limit"),  # risk's
        row("10:30:00", "flipper", "state", "unknown_order", "halted", "lost reply"),  # risk's
        row("10:40:00", "flipper", "rejected", "max_orders_per_min", "", ""),
        row("10:50:00", "flipper", "state", "trading_state", "sideways", ""),  # no command
    ]
    got = given_commands(rows)
    assert [(g.row()["at"], g.command.command, g.command.value, g.command.target) for g in got] == [
        ("11:00:00", "state", "halted", "flipper"),
        ("11:10:00", "state", "active", "flipper"),
        ("12:00:00", "stop", "", "other"),
        ("13:00:00", "kill_switch", "flatten", ""),
        ("13:05:00", "kill_switch", "off", ""),
    ]
    assert got[0].at_ns == at(11, 0) and got[0].command.reason == "paused by cli:ops"
    assert got[0].applies_to("flipper") and not got[0].applies_to("other")
    assert got[3].applies_to("flipper") and got[3].target == "*"


class FlipperParams(StrategyParams):
    """None of its own: it flips every minute."""


class Flipper(BaseStrategy):
    """Buys a lot at one minute's close, sells it at the next: a decision every minute."""

    name = "flipper"
    Params = FlipperParams

    def on_start(self) -> None:
        self.ex, self.sym = self.near_future("NIFTY")
        self.subscribe_bars(self.ex, self.sym, "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        held = self.position(self.ex, self.sym)
        lot = self.lot_size(self.ex, self.sym)
        if held:
            self.sell(self.ex, self.sym, held, product="MIS")
        else:
            self.buy(self.ex, self.sym, lot, product="MIS")


def run(refdata: RefData, commands: list[tuple[int, wire.Command]], grace_s: int = 0) -> Backtest:
    bt: Backtest

    def ticks() -> Iterator[wire.Tick]:  # the future the strategy chose at its start
        f = bt.runner.strategies["flipper"]
        rnd, px = random.Random(7), 24_500.0
        for i in range(2 * 60 * 4):  # 09:15 to 11:15, a tick every 15 s
            px = round(px + rnd.choice((-1.0, -0.5, 0.5, 1.0)), 1)
            yield wire.Tick(f.ex, f.sym, px, px - 0.1, px + 0.1, 500, 500, 10 * i + 1,
                            exch_ns=at(9, 15) + i * 15 * NS)  # fmt: skip

    bt = Backtest(
        Spec([(Flipper, {})], DAY, DAY, capital=5_000_000.0, fills="ticks"),
        refdata,
        risk_files(PROJECT_ROOT / "config", {}),
        GeneratedBars(refdata, 1, origin=DAY - timedelta(days=30)),
        ticks=ticks(),
        commands=commands,
        bar_grace_ns=grace_s * NS,
    )
    bt.run()
    return bt


def buys(bt: Backtest, lo: int, hi: int) -> int:
    return sum(1 for o in bt.results.orders.values()
               if o["op"] == "place" and o["action"] == "BUY" and lo <= o["time"] < hi)  # fmt: skip


def test_a_pause_given_at_its_moment_stops_the_shadows_entries_until_the_resume(
    refdata: RefData,
) -> None:
    pause, resume = at(10, 0, 20), at(10, 10, 20)
    cmds = [
        (resume, wire.Command("state", "active", reason="resumed", target="flipper")),
        (pause, wire.Command("state", "halted", reason="paused by cli:ops", target="flipper")),
    ]
    given, plain = run(refdata, cmds), run(refdata, [])
    assert buys(plain, pause, resume) >= 4  # it would have entered all through the pause
    assert buys(given, pause, resume) == 0  # paused: none (its exit went: it reduces)
    assert buys(given, resume, at(11, 15)) >= 20  # and it trades again after the resume
    assert buys(given, at(9, 15), pause) == buys(plain, at(9, 15), pause)  # same before it
    states = [(e["time"], e["action"]) for e in given.results.events
              if e["kind"] == "state" and e["strategy"] == "flipper"]  # fmt: skip
    assert [a for _, a in states] == ["halted", "active"]
    assert pause <= states[0][0] < pause + 15 * NS  # taken at the first tick after it


def test_a_pause_within_the_bars_grace_is_in_force_for_that_bars_decision(
    refdata: RefData,
) -> None:
    """Live hands a minute's bar ``MT_BAR_GRACE_S`` after its end: a pause one second
    after 10:00 reached the strategy before its 10:00 bar did, and the shadow says so."""
    pause = at(10, 0, 1)
    cmd = [(pause, wire.Command("state", "halted", reason="paused", target="flipper"))]
    at_end = at(10, 0)
    plain = run(refdata, [])
    assert buys(plain, at_end, at_end + NS) == 1  # the flipper buys at 10:00 ...
    assert buys(run(refdata, cmd, grace_s=0), at_end, at_end + NS) == 1  # ... before the pause
    assert buys(run(refdata, cmd, grace_s=2), at_end, at_end + NS) == 0  # ... or not, as live


def test_commands_at_moments_need_ticks(refdata: RefData) -> None:
    with pytest.raises(DataError, match="need tick data"):
        Backtest(
            Spec([(Flipper, {})], DAY, DAY),
            refdata,
            risk_files(PROJECT_ROOT / "config", {}),
            GeneratedBars(refdata, 1),
            commands=[(at(10, 0), wire.Command("kill_switch", "on"))],
        )


def test_the_operators_line_starts_the_bridge_at_the_untouched_shadow() -> None:
    b = Bridge(shadow_net=10_000, live_net=7_500)
    b.causes["slippage"] = -1_000
    b.causes["unexplained"] = -1_500
    b.start_untouched(25_000)  # without the pause the shadow made 250 rupees
    assert b.shadow_net == 25_000 and b.causes["operator"] == -15_000
    assert b.shadow_net + sum(b.causes.values()) == b.live_net
    assert list(b.rupees())[:2] == ["shadow_net", "operator"]
