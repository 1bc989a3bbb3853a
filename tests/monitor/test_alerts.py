"""Alert rules, what is said when, and delivery: each rule fires once when its condition
starts and says its recovery once; a flapping condition is rate-limited; a restarted
monitor says nothing twice; each channel is reached through its own protocol (local
servers that speak it); a channel that is down is retried with backoff and loses nothing."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from mytrading.domain.refdata import IST
from mytrading.messaging import wire
from mytrading.monitor import sender as sender_mod
from mytrading.monitor.alerting import Alerter, Said
from mytrading.monitor.channels import OpenAlgoTelegram, TelegramBot, Webhook, build_channels
from mytrading.monitor.config import AlertConfig, Rule, load_alerts
from mytrading.monitor.rules import Watch, calendar_needs
from mytrading.monitor.sender import Sender
from mytrading.monitor.store import AlertStore
from mytrading.monitor.view import View
from mytrading.settings import PROJECT_ROOT, ConfigError, Settings
from tests.alertsinks import API_KEY, TOKEN, Sink, alerts_toml

DAEMONS = ("feed", "engine", "risk", "router", "reconciler", "signals")


def status(name: str, pid: int = 100, uptime: float = 60.0, **detail: Any) -> wire.Status:
    return wire.Status(
        name=name,
        pid=pid,
        state="running",
        started_ns=1,
        uptime_s=uptime,
        msgs_in=0,
        msgs_out=0,
        errors=0,
        gaps=0,
        lat_p50_us=0.0,
        lat_p99_us=0.0,
        peers_down=[],
        detail=detail,
    )


class Rig:
    """A view, the rules and the alerter over a real store; hand-driven clocks."""

    def __init__(self, tmp: Path, cfg: AlertConfig | None = None) -> None:
        self.cfg = cfg or load_alerts(PROJECT_ROOT / "config" / "alerts.toml")
        self.store = AlertStore(tmp / "alerts.sqlite")
        self.view = View(DAEMONS)
        self.mono = 1000.0
        self.wall = time.time()
        self.watch = Watch(self.cfg, started=self.mono)
        # the morning check is its own test's: today's counts as said in the others
        self.watch._morning_said = datetime.fromtimestamp(self.wall, IST).date()
        self.alerter = Alerter(self.cfg, self.store, ["hook"])
        for d in DAEMONS:
            self.view.on_status(status(d), now=self.mono)

    def beat(self, name: str, **detail: Any) -> None:
        self.view.on_status(status(name, **detail), now=self.mono)

    def step(self, seconds: float = 0.5, beats: bool = True) -> list[Said]:
        self.mono += seconds
        self.wall += seconds
        if beats:
            for d in DAEMONS:
                seen = self.view.beats[d]
                self.view.on_status(seen.status, now=self.mono)
        return self.alerter.step(self.watch.findings(self.view, self.mono, self.wall), self.wall)


def kinds(said: list[Said]) -> list[tuple[str, str, str]]:
    return [(s.rule, s.key, s.kind) for s in said]


def test_a_daemon_down_fires_once_and_recovers_once(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    assert r.step() == []
    silent = [d for d in DAEMONS if d != "router"]
    said = []
    for _ in range(12):  # 6 s: the router sends no heartbeat
        r.mono += 0.5
        r.wall += 0.5
        for d in silent:
            r.view.on_status(r.view.beats[d].status, now=r.mono)
        said += r.alerter.step(r.watch.findings(r.view, r.mono, r.wall), r.wall)
    assert kinds(said) == [("daemon_down", "router", "fire")]
    assert "router is DOWN: no heartbeat for" in said[0].text
    assert said[0].text.startswith("[CRITICAL] mytrading daemon_down:")
    back = r.step()  # it beats again
    assert kinds(back) == [("daemon_down", "router", "recover")]
    assert "[RECOVERED]" in back[0].text and "is back" in back[0].text
    assert r.step() == []


@pytest.mark.parametrize(
    "rule, start, stop",
    [
        (
            "unknown_order",
            lambda r: r.view.on_message(order("unknown")),
            lambda r: r.view.on_message(order("complete")),
        ),
        (
            "coverage_low",
            lambda r: r.beat("feed", coverage="5/10 symbols fresh within 5 s"),
            lambda r: r.beat("feed", coverage="10/10 symbols fresh within 5 s"),
        ),
        (
            "daily_loss",
            lambda r: r.beat("risk", pnl={"s": {"net": -45_000.0}}, limits=LIMITS),
            lambda r: r.beat("risk", pnl={"s": {"net": -1_000.0}}, limits=LIMITS),
        ),
        (
            "kill_switch",
            lambda r: r.beat("risk", kill_switch=True),
            lambda r: r.beat("risk", kill_switch=False),
        ),
        (
            "recon_mismatch",
            lambda r: r.view.recon_events.append((r.wall, recon())),
            lambda r: r.view.recon_events.clear(),
        ),
        (
            "rejection_burst",
            lambda r: [r.view.on_message(rejected()) for _ in range(10)],
            lambda r: r.view.risk_events.clear(),
        ),
        (
            "memory_growth",
            lambda r: r.beat("feed", health={"rss_growing": True, "rss_mb": 900.0}),
            lambda r: r.beat("feed", health={"rss_growing": False, "rss_mb": 150.0}),
        ),
        (
            "journal_damage",
            lambda r: r.beat(
                "router",
                journal_damage={"lost_bytes": 40, "kept_at": "j.damaged", "lost_orders": []},
            ),
            lambda r: r.beat("router"),  # a router started with a whole journal
        ),
        (
            "journal_unwritable",
            lambda r: r.beat("router", journal_fault="journal write refused: No space left"),
            lambda r: r.beat("router"),
        ),
        (
            "disk_low",
            lambda r: r.beat(
                "router", health={"disk": [{"path": "/s", "free_mb": 90.0, "free_pct": 2.0}]}
            ),
            lambda r: r.beat(
                "router", health={"disk": [{"path": "/s", "free_mb": 9e3, "free_pct": 40.0}]}
            ),
        ),
        (
            "strategy_halted",
            lambda r: r.beat(
                "risk",
                states={
                    "stack": "active",
                    "strategies": {"s": "halted"},
                    "holds": {"s": {"orders": ["s.1"], "for_person": False}},
                    "why": {"s": {"reason": "order s.1 unknown at the broker"}},
                },
            ),
            lambda r: r.beat("risk", states={"stack": "active", "strategies": {}}),
        ),
        (
            "account_unreachable",
            lambda r: r.beat("router", accounts_away={"second": "2026-11-23T10:00:00+05:30"}),
            lambda r: r.beat("router", accounts_away={}),
        ),
        (
            "feed_lag",
            lambda r: r.beat("feed", lag={"main": {"p50_ms": 4000.0, "p99_ms": 9000.0}}),
            lambda r: r.beat("feed", lag={"main": {"p50_ms": 200.0, "p99_ms": 600.0}}),
        ),
        (
            "clock_offset",
            lambda r: r.beat("feed", clock_offset_ping_s=-7.5, clock_offset_ticks_s=-7.8),
            lambda r: r.beat("feed", clock_offset_ping_s=0.1, clock_offset_ticks_s=-0.3),
        ),
        (
            "late_ticks",
            lambda r: r.beat("feed", late_ticks_last_minute=40, late_max_s=3.2),
            lambda r: r.beat("feed", late_ticks_last_minute=0),
        ),
        (
            "recording_held",
            lambda r: r.beat("feed", recording_held_s=300.0, recording_dropped=0),
            lambda r: r.beat("feed", recording_held_s=0.0, recording_dropped=0),
        ),
        (
            "webhook_refusals",
            lambda r: (
                r.beat("signals", answered={"200": 3, "401": 0}),
                r.step(),
                r.beat("signals", answered={"200": 3, "401": 12}),
            ),
            lambda r: (setattr(r, "mono", r.mono + 61), setattr(r, "wall", r.wall + 61)),
        ),
    ],
)
def test_each_condition_fires_once_and_recovers_once(
    tmp_path: Path, rule: str, start: Any, stop: Any
) -> None:
    r = Rig(tmp_path)
    r.step()
    start(r)
    said = r.step()
    assert [(s.rule, s.kind) for s in said] == [(rule, "fire")], said
    for _ in range(5):  # still on: not said again (repeat_s is 15 minutes)
        assert r.step() == []
    stop(r)
    said = [*r.step(), *r.step()]
    assert [(s.rule, s.kind) for s in said] == [(rule, "recover")], said
    assert r.step() == []
    rows = r.store.log()
    assert [(a["rule"], a["kind"]) for a in rows] == [(rule, "recover"), (rule, "fire")]
    assert all(a["deliveries"][0]["state"] == "pending" for a in rows)


def test_events_are_said_once_each(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.beat("feed", failovers=0, data_account="main")
    r.step()
    r.view.on_status(status("engine", pid=200), now=r.mono)  # a new process
    r.beat("feed", failovers=1, data_account="backup")
    r.view.on_message(
        wire.RiskEvent(
            strategy="s", kind="trigger", rule="max_loss", reason="loss 5,000", action="close"
        )
    )
    said = r.step()
    assert sorted(kinds(said)) == [
        ("daemon_restart", "engine", "fire"),
        ("feed_failover", "feed", "fire"),
        ("risk_trigger", "s:max_loss", "fire"),
    ]
    assert r.step() == [] and r.step() == []
    assert not r.alerter.active  # events are never "on"


def test_a_flapping_condition_is_said_once_per_gap(tmp_path: Path) -> None:
    cfg = AlertConfig(rules={"kill_switch": Rule(min_gap_s=60, repeat_s=0)})
    r = Rig(tmp_path, cfg)
    said = []
    for i in range(20):  # on and off every step for 10 s
        r.beat("risk", kill_switch=i % 2 == 0)
        said += r.step()
    assert kinds(said) == [("kill_switch", "*", "fire"), ("kill_switch", "*", "recover")]
    assert r.alerter.suppressed["kill_switch"] >= 8
    r.step(61)  # after the gap, a new start is said again
    r.beat("risk", kill_switch=True)
    assert kinds(r.step()) == [("kill_switch", "*", "fire")]


def test_a_condition_still_on_is_repeated_after_repeat_s(tmp_path: Path) -> None:
    cfg = AlertConfig(rules={"kill_switch": Rule(repeat_s=30, min_gap_s=0)})
    r = Rig(tmp_path, cfg)
    r.beat("risk", kill_switch=True)
    assert kinds(r.step()) == [("kill_switch", "*", "fire")]
    assert r.step(20) == []
    again = r.step(11)
    assert kinds(again) == [("kill_switch", "*", "repeat")] and "still:" in again[0].text


def test_a_restarted_monitor_says_nothing_twice_and_recovers_what_cleared(
    tmp_path: Path,
) -> None:
    r = Rig(tmp_path)
    r.beat("risk", kill_switch=True)
    r.view.on_message(order("unknown"))
    assert len(r.step()) == 2
    # the monitor restarts: a new alerter on the same file, the conditions as they are
    again = Rig(tmp_path)  # its view has no unknown order: it resolved meanwhile
    again.beat("risk", kill_switch=True)  # still on
    assert kinds(again.step()) == [("unknown_order", "s.1", "recover")]
    assert again.step() == []  # the kill switch was said before the restart: not again
    rows = again.store.log()
    assert sum(1 for a in rows if a["kind"] == "fire") == 2  # each said once, in all


@pytest.fixture
def sink():
    s = Sink().start()
    yield s
    s.stop()


def channels(sink: Sink) -> list[Any]:
    return [
        OpenAlgoTelegram(sink.url, API_KEY, "trader"),
        TelegramBot(sink.url, TOKEN, "42"),
        Webhook(f"{sink.url}/hook"),
    ]


def test_each_channel_speaks_its_receivers_protocol(sink: Sink, tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "a.sqlite")
    names = [c.name for c in channels(sink)]
    aid = store.add(time.time(), "kill_switch", "*", "critical", "fire", "[CRITICAL] k", names)
    s = Sender(store, channels(sink))
    assert s.deliver_due() == 3
    assert sink.got["openalgo"] == [
        {"apikey": API_KEY, "username": "trader", "message": f"#{aid} [CRITICAL] k", "priority": 10}
    ]
    assert sink.got["bot"] == [{"chat_id": "42", "text": f"#{aid} [CRITICAL] k"}]
    assert sink.got["hook"][0] == {
        "text": f"#{aid} [CRITICAL] k",
        "content": f"#{aid} [CRITICAL] k",
        "id": aid,
        "severity": "critical",
    }
    assert store.pending() == 0 and s.deliver_due() == 0  # nothing goes twice
    bad = OpenAlgoTelegram(sink.url, "wrong-key", "trader")
    store.add(time.time(), "t", "*", "info", "fire", "x", [bad.name])
    Sender(store, [bad]).deliver_due()
    (row,) = [d for d in store.log(1)[0]["deliveries"]]
    assert "Invalid openalgo apikey" in row["error"] and "wrong-key" not in row["error"]


def test_a_channel_that_is_down_is_retried_with_backoff_and_loses_nothing(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender_mod, "BACKOFF_BASE_S", 0.05)
    store = AlertStore(tmp_path / "a.sqlite")
    hook = Webhook(f"{sink.url}/hook")
    sink.fail["hook"] = 503
    ids = [
        store.add(time.time(), "r", str(i), "warning", "fire", f"m{i}", ["webhook"])
        for i in range(3)
    ]
    s = Sender(store, [hook])
    for _ in range(4):
        s.deliver_due()
        time.sleep(0.06)
    assert sink.got["hook"] == [] and store.pending() == 3
    tries = [d["attempts"] for a in store.log() for d in a["deliveries"]]
    assert tries == [0, 0, sink.calls["hook"]]  # the oldest is tried; the rest wait their turn
    assert 2 <= sink.calls["hook"] <= 4  # backoff: not a try per round
    sink.fail["hook"] = 0  # back
    deadline = time.monotonic() + 5
    while store.pending() and time.monotonic() < deadline:
        s.deliver_due()
        time.sleep(0.05)
    assert [m["id"] for m in sink.got["hook"]] == ids  # all of them, in order, once each
    assert sender_mod.backoff(1) == 0.05 and sender_mod.backoff(30) == sender_mod.BACKOFF_CAP_S


def test_what_a_dead_monitor_left_pending_is_sent_by_the_next_once(
    sink: Sink, tmp_path: Path
) -> None:
    path = tmp_path / "a.sqlite"
    store = AlertStore(path)
    hook = Webhook(f"{sink.url}/hook")
    sink.fail["hook"] = 503
    aid = store.add(time.time(), "daemon_down", "router", "critical", "fire", "down", ["webhook"])
    Sender(store, [hook]).deliver_due()  # fails; then this monitor dies
    store.close()
    sink.fail["hook"] = 0
    again = AlertStore(path)  # the restarted monitor, its own sender
    again.con.execute("UPDATE deliveries SET next_try = 0")  # its backoff has run out
    s = Sender(again, [hook])
    assert s.deliver_due() == 1 and s.deliver_due() == 0
    assert [m["id"] for m in sink.got["hook"]] == [aid]


def test_a_channel_that_raises_never_stops_the_others(
    sink: Sink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A channel that raises what no receiver answers (urllib's ValueError for a URL with
    no scheme, its text holding the URL) is retried like a failure, logged without its
    text; one that cannot work is disabled with its reason; the sender thread lives on and
    the other channel delivers every message."""
    from mytrading.monitor.channels import ChannelError

    class Broken:
        name = "webhook"

        def send(self, alert_id: int, severity: str, text: str) -> None:
            raise ValueError("unknown url type: 'hooks.example/T0KEN-SECRET'")

    class Hopeless:
        name = "openalgo_telegram"

        def send(self, alert_id: int, severity: str, text: str) -> None:
            raise ChannelError("openalgo_telegram: bad request (ValueError)", fatal=True)

    store = AlertStore(tmp_path / "a.sqlite")
    bot = TelegramBot(sink.url, TOKEN, "42")
    names = ["webhook", "openalgo_telegram", bot.name]
    for i in range(3):
        store.add(time.time(), "kill_switch", str(i), "critical", "fire", f"k{i}", names)
    s = Sender(store, [Broken(), Hopeless(), bot])  # type: ignore[list-item]
    s.start()
    try:
        deadline = time.monotonic() + 5
        while len(sink.got["bot"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m["text"].split(" ", 1)[1] for m in sink.got["bot"]] == ["k0", "k1", "k2"]
        assert s._thread.is_alive()
        states = s.states()
        assert states["webhook"].startswith("retrying") and states[bot.name] == "ok"
        assert states["openalgo_telegram"].startswith("DISABLED")
        assert "SECRET" not in s.last_error and "SECRET" not in caplog.text
        assert "SECRET" not in json.dumps(store.log())
    finally:
        s.stop()


def test_telegrams_retry_after_is_respected(sink: Sink, tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "a.sqlite")
    bot = TelegramBot(sink.url, TOKEN, "42")
    store.add(time.time(), "r", "*", "warning", "fire", "flood", [bot.name])
    sink.flood_retry_after = 3
    s = Sender(store, [bot])
    t0 = time.time()
    assert s.deliver_due() == 0
    assert store.due(t0 + 2.5) == [] and len(store.due(t0 + 3.5)) == 1  # not before 3 s
    assert "retry after 3" in s.last_error and TOKEN not in s.last_error


def test_the_config_is_checked_and_channels_need_their_secrets(
    tmp_path: Path, sink: Sink, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(alerts_toml(sink))
    cfg = load_alerts(path)
    monkeypatch.delenv("MT_TEST_BOT_TOKEN", raising=False)
    got, problems = build_channels(cfg, settings)
    assert [c.name for c in got] == ["openalgo_telegram", "webhook"]
    assert problems == ["telegram_bot: no token in MT_TEST_BOT_TOKEN or no chat_id"]
    monkeypatch.setenv("MT_TEST_BOT_TOKEN", TOKEN)
    assert len(build_channels(cfg, settings)[0]) == 3
    path.write_text("[rules.no_such_rule]\nseverity = 'critical'\n")
    with pytest.raises(ConfigError, match="unknown rules"):
        load_alerts(path)
    path.write_text("[rules.kill_switch]\nseverity = 'loud'\n")
    with pytest.raises(ConfigError, match="severity"):
        load_alerts(path)
    shipped = load_alerts(PROJECT_ROOT / "config" / "alerts.toml")
    assert shipped.rule("daemon_down").severity == "critical"


LIMITS = {"stack": {"daily_loss_limit": 50_000.0}, "defaults": {"max_loss": 0.0}}


def order(st: str) -> wire.OrderUpdate:
    return wire.OrderUpdate(
        order_id="s.1",
        intent_id="1",
        strategy="s",
        exchange="NFO",
        symbol="NIFTY23NOV26FUT",
        action="BUY",
        quantity=65,
        status=st,
        reason="broker timeout",
    )  # type: ignore[arg-type]


def recon() -> wire.ReconEvent:
    return wire.ReconEvent(
        exchange="NFO", symbol="NIFTY23NOV26FUT", product="NRML", ours=65, broker=0, action="report"
    )


def rejected() -> wire.RiskEvent:
    return wire.RiskEvent(strategy="s", kind="rejected", rule="max_position", reason="cap")


def test_the_morning_check_says_once_what_waits_for_a_person(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.watch._morning_said = None
    r.wall = datetime(2026, 11, 23, 8, 40, tzinfo=IST).timestamp()
    r.beat("risk", kill_switch=True, kill_mode="on",
           states={"stack": "active", "strategies": {"sma_crossover": "halted"}})  # fmt: skip
    r.beat("engine", strategies={"momo": {"quarantined": "its bar hook was stuck"}})
    r.beat("router", unknown_orders=["s.i7"])
    assert "morning_check" not in {x.rule for x in r.step(40)}  # 08:40: not yet
    said = [x for x in r.step(300) if x.rule == "morning_check"]  # 08:45
    assert len(said) == 1 and said[0].kind == "fire"
    text = said[0].text
    for want in ("4 thing(s) need you", "kill-switch off", "sma_crossover is HALTED",
                 "momo is QUARANTINED", "s.i7 is UNKNOWN"):  # fmt: skip
        assert want in text, text
    assert [x for x in r.step(600) if x.rule == "morning_check"] == []  # once a day
    r.wall += 86400  # the next morning, all clear
    r.beat("risk", kill_switch=False, states={"stack": "active", "strategies": {}})
    r.beat("engine", strategies={})
    r.beat("router", unknown_orders=[])
    said = [x for x in r.step(1) if x.rule == "morning_check"]
    assert len(said) == 1 and "nothing needs you today" in said[0].text


def test_the_morning_check_says_a_year_without_exchange_holidays_a_month_ahead() -> None:
    """config/holidays.toml lists 2025 and 2026: from a month before 2027 the morning says
    so (every weekday would be taken as a trading day), never before."""
    years = frozenset({2025, 2026})
    assert calendar_needs(years, date(2026, 11, 25)) == []
    (said,) = calendar_needs(years, date(2026, 12, 1))
    assert "no exchange holidays for 2027" in said and "config/holidays.toml" in said
    assert len(calendar_needs(years, date(2027, 3, 1))) == 1  # still missing in the year
    assert calendar_needs(None, date(2027, 3, 1)) == []  # not known to this process
    w = Watch(load_alerts(PROJECT_ROOT / "config" / "alerts.toml"), started=0.0,
              holiday_years=years)  # fmt: skip
    view = View(DAEMONS)
    wall = datetime(2026, 12, 7, 8, 50, tzinfo=IST).timestamp()
    (morning,) = [f for f in w.findings(view, now=100.0, wall=wall) if f.rule == "morning_check"]
    assert "1 thing(s) need you" in morning.text and "2027" in morning.text


def test_a_clock_off_the_brokers_names_ntp_and_the_morning_check_says_it(
    tmp_path: Path,
) -> None:
    r = Rig(tmp_path)
    r.step()
    r.beat("feed", clock_offset_ping_s=4.0)
    (said,) = r.step()
    assert "4.0 s behind the broker's" in said.text and "NTP" in said.text
    r.watch._morning_said = None
    r.watch.started -= 60
    r.wall = datetime(2026, 11, 26, 8, 46, tzinfo=IST).timestamp()
    morning = [f for f in r.watch.findings(r.view, r.mono, r.wall) if f.rule == "morning_check"]
    assert "4.0 s behind the broker's" in morning[0].text
    r.beat("feed", clock_offset_ping_s=-0.03)  # the next day, a clock in step: said so
    r.watch._morning_said = None
    morning = [f for f in r.watch.findings(r.view, r.mono, r.wall) if f.rule == "morning_check"]
    assert "nothing needs you" in morning[0].text and "-0.03 s from the broker's" in morning[0].text


def test_the_kill_switch_alert_names_who_turned_it_and_through_what(tmp_path: Path) -> None:
    r = Rig(tmp_path, AlertConfig())
    why = {"*": {"reason": "kill switch on by telegram:123456789 via telegram", "by": "x"}}
    r.beat("risk", kill_switch=True, kill_mode="on", states={"stack": "halted", "why": why})
    said = r.step()
    assert kinds(said) == [("kill_switch", "*", "fire")]
    assert (
        "the kill switch is ON (kill switch on by telegram:123456789 via telegram)" in said[0].text
    )


def test_a_missed_start_and_a_schedules_own_halt(tmp_path: Path) -> None:
    """A strategy in its hours for a minute that does not trade is a missed start (halted
    by an operator, or not run by the engine); halted by its own schedule it is neither
    a missed start nor ``strategy_halted`` news."""
    r = Rig(tmp_path)
    plan = {"schedule": "every trading day 09:20-15:00", "start": "09:20", "phase": "before"}
    off = {"by": "schedule", "reason": "schedule: before its start 09:20"}
    r.beat("engine", strategies={"a": {}, "b": {}})
    r.beat("risk", schedule={"a": plan, "b": plan, "c": plan},
           states={"stack": "active", "strategies": {"a": "halted", "b": "halted"},
                   "why": {"a": off, "b": off}})  # fmt: skip
    assert r.step() == []  # before their start, halted by their schedule: nothing said
    during = {**plan, "phase": "during"}
    paused = {"by": "cli:op", "reason": "paused by cli:op via cli"}
    halted_b = {"stack": "active", "strategies": {"b": "halted"}, "why": {"b": paused}}
    r.beat("risk", schedule={"a": during, "b": during, "c": during}, states=halted_b)
    assert kinds(r.step()) == [("strategy_halted", "b", "fire")]  # an operator's: news
    assert r.step(59) == []  # not a minute in its hours yet
    said = r.step(2)
    assert kinds(said) == [("missed_start", "b", "fire"), ("missed_start", "c", "fire")]
    assert "paused by cli:op" in said[0].text and "engine does not run it" in said[1].text
    r.beat("risk", schedule={"a": during, "b": during, "c": during},
           states={"stack": "active", "strategies": {}})  # fmt: skip
    r.beat("engine", strategies={"a": {}, "b": {}, "c": {}})
    assert sorted(kinds(r.step())) == [
        ("missed_start", "b", "recover"),
        ("missed_start", "c", "recover"),
        ("strategy_halted", "b", "recover"),
    ]
