"""The signals daemon as it runs: real HTTP requests to the real daemon, intents through the
real risk daemon and router to the OpenAlgo-compatible simulator server, where the orders
are checked. Every format and mode; the refusals over HTTP; a duplicate delivery; the rate
limit; the kill switch; risk down; fuzzed bodies; the daily square-off, including after a
restart past its time, once; a restart keeping strategies, mappings and audit."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings

from mytrading import venue
from mytrading.domain.clock import build_clock
from mytrading.domain.refdata import load_refdata
from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.settings import Settings, load_settings
from mytrading.webhook.model import StrategyFields, SymbolMap
from mytrading.webhook.store import WebhookStore
from tests.fuzz import alert_bodies
from tests.procs import Watcher, run_cli, spawn
from tests.simhelpers import KEY, WS_URL, start_server

FUT, BNF = "NIFTY23NOV26FUT", "BANKNIFTY23NOV26FUT"  # quoted by the simulator on 2026-11-20
DAEMONS = ("router", "risk", "feed", "signals")  # no engine: every order here is a webhook's


def hook(port: int, wid: str, body: bytes | dict[str, Any], client: str) -> tuple[int, dict]:
    """POST an alert as TradingView would, from ``client`` (the daemon trusts the header
    here, MT_SIGNALS_TRUST_PROXY, so each scenario has its own rate-limit budget)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/strategy/webhook/{wid}",
        data=data,
        method="POST",
        headers={"Content-Type": "application/json", "X-Forwarded-For": client},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Stack:
    """The simulator server and the four daemons on one market clock."""

    def __init__(self, tmp_env: dict[str, str], start: str, speed: str, **extra: str) -> None:
        self.anchor = str(time.time_ns())
        self.server, host = start_server(
            {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": tmp_env["MT_STATE_DIR"] + "-sim"},
            MT_CLOCK_ANCHOR_NS=self.anchor,
            MT_SIM_START=start,
            MT_SIM_SPEED=speed,
        )
        self.host = host
        self.env = {
            **tmp_env,
            "MT_BROKER": "openalgo",
            "MT_OPENALGO_API_KEY": KEY,
            "MT_SIM_REST_PORT": host.rsplit(":", 1)[1],
            "MT_SIM_WS_PORT": WS_URL[host].rsplit(":", 1)[1],
            "MT_SIM_START": start,
            "MT_SIM_SPEED": speed,
            "MT_CLOCK_ANCHOR_NS": self.anchor,
            "MT_OPENALGO_POLL_S": "0.3",
            "MT_SIGNALS_TRUST_PROXY": "true",
            **extra,
        }
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("MT_")})
        self.settings: Settings = load_settings()
        self.port = self.settings.signals.port
        self.store = WebhookStore(self.settings.stores.webhook_db)
        self.venue = venue.current(self.settings).id  # square-offs are kept per venue
        self.procs: dict[str, Any] = {}
        self.w = Watcher(self.settings, ("sys.status.", "exec.", "risk.event."))

    def up(self, *daemons: str) -> None:
        for d in daemons:
            self.procs[d] = spawn(d, self.env)
        self.w.wait(
            lambda: all(
                d in self.w.status and self.w.status[d].state == "running" for d in daemons
            ),
            40,
            f"{daemons} running",
        )

    def stop(self, daemon: str) -> None:
        p = self.procs.pop(daemon)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)

    def new(self, name: str, maps: dict[str, str], passphrase: str = "", **kw: Any) -> str:
        _, wid = self.store.create(StrategyFields(name=name, **kw), passphrase)
        for external, contract in maps.items():
            self.store.add_symbol(
                name, SymbolMap(external=external, exchange="NFO", symbol=contract, product="NRML")
            )
        return wid

    def signals(self) -> dict[str, Any]:
        return self.w.status["signals"].detail

    def orders(self, strategy: str) -> list[wire.OrderUpdate]:
        """The strategy's orders the router reported complete, in order."""
        return [
            m
            for _, m in self.w.seen
            if isinstance(m, wire.OrderUpdate) and m.strategy == strategy and m.status == "complete"
        ]

    def outcome(self, request_id: int) -> str:
        rows = [r for r in self.store.audit(n=500) if r["id"] == request_id]
        return rows[0]["outcome"] if rows else ""

    def close(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait(timeout=10)
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(timeout=10)
        self.w.close()
        self.store.close()


@pytest.fixture
def stack(tmp_env: dict[str, str]) -> Iterator[Stack]:
    s = Stack(
        tmp_env,
        "2026-11-20T10:00",
        "1",
        MT_WEBHOOK_UNKNOWN_PER_MIN="5",
        MT_WEBHOOK_RATE_PER_MIN="100000",
        MT_RISK_WAIT_S="1.5",
    )
    yield s
    s.close()


def at_broker(host: str) -> dict[str, dict[str, Any]]:
    from openalgo import api

    rows = api(api_key=KEY, host=host, timeout=5.0).orderbook()["data"]["orders"]
    return {r["orderid"]: r for r in rows}


@pytest.mark.integration
def test_every_format_and_mode_trades_through_risk_to_the_broker(stack: Stack) -> None:
    s = stack
    ids = {
        "tv_long": s.new("tv_long", {"NIFTY1!": FUT}, mode="LONG"),
        "tv_short": s.new("tv_short", {"NIFTY1!": FUT}, mode="SHORT"),
        "ab_both": s.new("ab_both", {"NIFTY": FUT}, mode="BOTH"),
        "ab_long": s.new("ab_long", {"NIFTY": FUT}, mode="LONG"),
        "ck_long": s.new("ck_long", {"NIFTY": FUT, "BANKNIFTY": BNF}, mode="LONG"),
        "ck_short": s.new("ck_short", {"NIFTY": FUT}, mode="SHORT"),
        "pw": s.new("pw", {"NIFTY1!": FUT}, passphrase="s3cret"),
        "off": s.new("off", {"NIFTY1!": FUT}, enabled=False),
    }
    s.up(*DAEMONS)
    clients = (f"10.0.0.{i}" for i in itertools.count(1))

    def send(name: str, body: Any, expect: int = 200) -> dict[str, Any]:
        status, answer = hook(s.port, ids.get(name, name), body, next(clients))
        assert status == expect, (name, body, answer)
        return answer

    def filled(name: str, n: int) -> None:
        s.w.wait(lambda: len(s.orders(name)) >= n, 20, f"{n} orders of {name} complete")

    ami = {
        "apikey": "ignored",
        "strategy": "x",
        "exchange": "NFO",
        "pricetype": "MARKET",
        "product": "NRML",
    }
    # TradingView: {{strategy.order.action}} lower case, {{strategy.order.contracts}}
    tv_buy = {"symbol": "NIFTY1!", "action": "buy", "contracts": "2", "position_size": "2"}
    send("tv_long", tv_buy)
    assert "duplicate" in send("tv_long", tv_buy)["message"]  # TradingView's retry
    filled("tv_long", 1)
    send("tv_long", {"symbol": "NIFTY1!", "action": "sell", "position_size": "0"})
    # the seed's plain body: SHORT mirrors LONG
    send("tv_short", {"symbol": "NIFTY1!", "action": "SELL", "position_size": "-1"})
    filled("tv_short", 1)
    send("tv_short", {"symbol": "NIFTY1!", "action": "BUY", "position_size": "0"})
    # Amibroker: a smart order in BOTH (a target), a plain order in LONG
    send(
        "ab_both",
        {**ami, "symbol": "NIFTY", "action": "BUY", "quantity": "1", "position_size": "2"},
    )
    filled("ab_both", 1)
    send(
        "ab_both",
        {**ami, "symbol": "NIFTY", "action": "SELL", "quantity": "1", "position_size": "-1"},
    )
    send("ab_both", {**ami, "symbol": "NIFTY", "action": "BUY", "position_size": "-1"}, 400)
    send("ab_long", {**ami, "symbol": "NIFTY", "action": "BUY", "quantity": "3"})
    # ChartInk: several stocks in one alert, the keyword in the scan's name
    ck = {"stocks": "NIFTY,BANKNIFTY", "trigger_prices": "24000,52000", "scan_name": "Gap BUY"}
    send("ck_long", ck)
    filled("ck_long", 2)
    send("ck_long", {**ck, "scan_name": "trend over SELL"})
    send("ck_short", {"stocks": "NIFTY", "trigger_prices": "1", "scan_name": "weak SHORT"})
    filled("ck_short", 1)
    send("ck_short", {"stocks": "NIFTY", "trigger_prices": "1", "scan_name": "COVER now"})
    # refusals over HTTP
    assert send("pw", {"symbol": "NIFTY1!", "action": "buy"}, 401)["message"]
    send("pw", {"symbol": "NIFTY1!", "action": "buy", "passphrase": "s3cret"})
    send("off", {"symbol": "NIFTY1!", "action": "buy"}, 403)
    send("not-an-id", {"symbol": "NIFTY1!", "action": "buy"}, 404)
    send(
        "tv_long", b'{"symbol": "NIFTY1!", "action": "buy", "note": "' + b"x" * 17_000 + b'"}', 413
    )
    send("tv_long", b"{oops", 400)
    # a TradingView template's extra fields are ignored (as OpenAlgo's webhook does) and
    # named in the audit; tv_long is flat, so this target of 0 trades nothing
    tv_extra = {"symbol": "NIFTY1!", "action": "sell", "position_size": "0", "price": "24500"}
    tv_extra |= {"time": "2026-11-20T10:03:00Z", "comment": "exit"}
    extra_id = send("tv_long", tv_extra)["request_id"]
    for _ in range(5):  # unknown ids: one client, 5 a minute here
        hook(s.port, "not-an-id", b"{}", "10.9.9.9")
    status, answer = hook(s.port, "not-an-id", b"{}", "10.9.9.9")
    assert status == 429 and answer["retry_after"] >= 1
    # ... which never holds up a known id from the same address (answered on its merits:
    # an unmapped symbol, so that it trades nothing here)
    unmapped = {"symbol": "BANK", "action": "buy"}
    assert hook(s.port, ids["tv_long"], unmapped, "10.9.9.9")[0] == 400

    expected = {  # (action, quantity) of each order, in order; lots of 65 and 30
        "tv_long": [("BUY", 130), ("SELL", 130)],
        "tv_short": [("SELL", 65), ("BUY", 65)],
        "ab_both": [("BUY", 130), ("SELL", 195)],
        "ab_long": [("BUY", 195)],
        "ck_long": [("BUY", 65), ("BUY", 30), ("SELL", 65), ("SELL", 30)],
        "ck_short": [("SELL", 65), ("BUY", 65)],
        "pw": [("BUY", 65)],
    }
    for name, want in expected.items():
        filled(name, len(want))
    book = at_broker(s.host)
    for name, want in expected.items():
        got = s.orders(name)
        assert sorted((u.action, u.quantity) for u in got) == sorted(want), name
        for u in got:  # each one at the broker, as the router reported it
            row = book[u.broker_order_id]
            assert (row["action"], int(row["quantity"]), row["order_status"]) == (
                u.action,
                u.quantity,
                "complete",
            )
    assert not s.orders("off")
    s.w.wait(lambda: s.signals()["strategies"]["ck_long"]["fills"] == 4, 5, "status fills")
    sig = s.signals()
    assert sig["strategies"]["tv_long"]["open_orders"] == 0 and sig["refused"] == 0
    assert sig["http"].startswith("listening 127.0.0.1")
    s.w.wait(  # risk keeps its book and P&L like a Python strategy's
        lambda: {"tv_long", "ck_long"} <= set(s.w.status["risk"].detail.get("pnl", {})),
        5,
        "the webhook strategies in risk's P&L",
    )
    refused = (s.settings.log_dir / "signals.log").read_text()
    assert '"webhook refused"' in refused and ids["pw"] not in refused  # only a hint
    log = s.store.audit(n=200)
    assert {r["status"] for r in log} >= {200, 400, 401, 403}
    s.w.wait(  # floods: counts, not rows, in the database within a second (FLUSH_S)
        lambda: {r["status"] for r in s.store.refused_counts(100)} == {404, 413, 429},
        5,
        "the refused requests counted",
    )
    (extra,) = [r for r in log if r["id"] == extra_id]
    assert (extra["status"], extra["ignored"]) == (200, "comment,time")
    assert all(r["ignored"] == "" for r in log if r["id"] != extra_id)
    done = [r for r in log if r["strategy"] == "tv_long" and r["intents"]]
    assert len(done) == 2 and all("complete" in r["outcome"] for r in done), done

    # the kill switch: accepted over HTTP, refused by risk, nothing at the router
    ctx = zmq.Context()
    cmds = Pusher(ctx, s.settings.endpoints()["pipe.commands"], "test", "command")
    deadline = time.monotonic() + 5
    while not cmds.send(wire.Command(command="kill_switch", value="on", issued_by="test")):
        assert time.monotonic() < deadline, "risk never took the command"
        time.sleep(0.05)
    s.w.wait(lambda: s.w.status["risk"].detail.get("kill_switch") is True, 10, "kill switch on")
    rid = send("tv_long", {"symbol": "NIFTY1!", "action": "buy", "contracts": "1"})["request_id"]
    s.w.wait(lambda: "rejected by risk" in s.outcome(rid), 10, "a rejection by risk")
    assert "kill" in s.outcome(rid).lower()
    cmds.close()
    ctx.destroy(linger=0)

    # risk down: the alert is taken, waits 1.5 s for risk, then is refused with the reason
    s.stop("risk")
    s.w.wait(lambda: "risk" in s.w.status["signals"].peers_down, 10, "signals to see risk down")
    s.w.pump(1.2)  # the router's count after anything risk had already sent
    sent = s.w.status["router"].detail.get("sent", 0)
    rid = send("tv_long", {"symbol": "NIFTY1!", "action": "buy", "contracts": "3"})["request_id"]
    s.w.wait(lambda: "refused" in s.outcome(rid), 10, "the intent refused")
    assert "risk daemon unavailable for 1.5s" in s.outcome(rid)
    assert s.w.status["router"].detail.get("sent", 0) == sent  # nothing went around risk
    s.w.wait(lambda: s.signals()["refused"] == 1, 5, "the refusal counted in the heartbeat")

    # fuzzed bodies: answered, never a crash, never an intent
    pid, before = s.w.status["signals"].pid, s.signals()["intents"]
    fuzz_clients = (f"10.8.{i // 250}.{i % 250}" for i in itertools.count())

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(alert_bodies())
    def fuzz(body: bytes) -> None:
        status, answer = hook(s.port, ids["ab_both"], body, next(fuzz_clients))
        assert status == 400 and answer["status"] == "error", answer

    fuzz()
    s.w.pump(1.0)
    assert s.w.status["signals"].pid == pid and s.w.status["signals"].errors == 0
    assert s.signals()["intents"] == before


@pytest.mark.integration
def test_square_off_at_its_time_and_after_a_restart_past_it_once(tmp_env: dict[str, str]) -> None:
    # Market time runs 10x (a minute is 6 s); the strategies are made once the stack is up
    # (the daemon reads them as they change), with square-off times from the market clock.
    s = Stack(tmp_env, "2026-11-20T11:00:00", "10")
    try:
        s.up(*DAEMONS)
        market = build_clock(s.settings, load_refdata(s.settings.config_dir).calendar)
        at = (market.now() + timedelta(seconds=80)).replace(second=0, microsecond=0)
        first, second = at.time(), (at + timedelta(minutes=2)).time()  # 12 s apart
        ids = {
            "early": s.new("early", {"N": FUT}, end=first, squareoff=first),
            "late": s.new("late", {"N": FUT}, end=second, squareoff=second),
            "held": s.new("held", {"N": FUT}, intraday=False, end=first, squareoff=first),
        }
        for name, wid in ids.items():
            status, answer = hook(s.port, wid, {"symbol": "N", "action": "buy"}, name)
            assert status == 200, answer
        s.w.wait(lambda: all(len(s.orders(n)) == 1 for n in ids), 15, "three entries filled")
        assert market.now().time() < first  # the square-off below is the daemon's own
        s.w.wait(lambda: len(s.orders("early")) == 2, 20, "early squared off")
        s.w.wait(
            lambda: s.signals()["strategies"]["early"]["squared_off"] == "2026-11-20",
            10,
            "the router's book to confirm early flat",
        )
        assert s.store.squared_off_on("early", s.venue).isoformat() == "2026-11-20"
        assert s.orders("early")[1].action == "SELL" and s.orders("early")[1].quantity == 65
        # the daemon is down at "late"'s time; it squares "late" off when it is back, once
        s.stop("signals")
        assert market.now().time() < second
        while market.now() < at + timedelta(minutes=2, seconds=5):
            s.w.pump(0.2)
        assert len(s.orders("late")) == 1  # nobody squared it off meanwhile
        s.up("signals")
        s.w.wait(lambda: len(s.orders("late")) == 2, 20, "late squared off after the restart")
        s.w.wait(lambda: s.store.squared_off_on("late", s.venue) is not None, 10, "late confirmed")
        s.stop("signals")
        s.up("signals")  # and again: the day is done, nothing more
        s.w.pump(2.0)
        assert len(s.orders("late")) == 2 and len(s.orders("early")) == 2
        assert len(s.orders("held")) == 1  # positional: kept overnight
        # a restart keeps strategies, mappings and the audit
        assert {r.name for r in s.store.all()} == set(ids)
        rows = s.store.audit(n=50)
        squareoffs = [r for r in rows if r["client"] == "square-off"]
        assert sorted(r["strategy"] for r in squareoffs) == ["early", "late"]
        assert all("complete" in r["outcome"] for r in squareoffs), squareoffs
        out = run_cli("webhook", "log", "--strategy", "late", env=s.env)
        assert out.returncode == 0 and "daily square-off" in out.stdout, out.stdout + out.stderr
        assert s.store.symbols("late")["N"].symbol == FUT
    finally:
        s.close()


@pytest.mark.integration
def test_a_taken_port_leaves_the_daemon_up_degraded_until_it_is_free(
    settings: Settings, tmp_env: dict[str, str]
) -> None:
    import socket

    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", settings.signals.port))
    squatter.listen()
    w = Watcher(settings, ("sys.status.signals",))
    proc = spawn("signals", tmp_env)
    try:
        w.wait(lambda: "signals" in w.status, 20, "a heartbeat from signals")
        st = w.status["signals"]
        assert st.state == "degraded" and st.detail["http"].startswith("DOWN: OSError"), st
        assert st.errors >= 1
        squatter.close()
        w.wait(lambda: w.status["signals"].detail["http"].startswith("listening"), 15, "listening")
        status, answer = hook(settings.signals.port, "nope", b"{}", "1.1.1.1")
        assert status == 404 and answer["message"] == "unknown webhook id"
    finally:
        squatter.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        w.close()
