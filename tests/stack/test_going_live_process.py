"""Going live without surprises (issue 23). Each scenario that once sent or kept real
orders nobody asked for, run on real processes, with a simulator server on other ports
standing in for a real OpenAlgo; outcomes are read from that server's own books."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from mytrading import venue
from mytrading.messaging import wire
from mytrading.messaging.bus import Pusher
from mytrading.router.journal import read as read_journal
from mytrading.settings import Settings
from tests.procs import Watcher, cli, confirm_live, live_on, run_cli, settings_of, spawn
from tests.simhelpers import KEY, WS_URL, live_future, order, post, start_server

# live runs on the wall clock: a contract that has not expired by it
FUT = live_future()

LOT = 65
SECOND_KEY = "second-account-key"


def real_broker(tmp_path: Path, name: str, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """A simulator server standing in for a real OpenAlgo, its books its own."""
    return start_server(
        {"MT_LOG_DIR": str(tmp_path / name / "logs"), "MT_STATE_DIR": str(tmp_path / name)},
        **extra,
    )


def rows_at(host: str, key: str = KEY) -> list[dict[str, Any]]:
    """The server's order book (every order it ever got today)."""
    status, body = post(host, "orderbook", {"apikey": key})
    assert status == 200, body
    return body["data"]["orders"]


def net_at(host: str, key: str = KEY) -> int:
    status, body = post(host, "positionbook", {"apikey": key})
    assert status == 200, body
    return sum(int(p["quantity"]) for p in body["data"] if p["symbol"] == FUT)


def by_hand(host: str, action: str, qty: int, key: str = KEY) -> None:
    """An order placed at the broker by someone else (its own terminal, another tool)."""
    status, body = post(
        host,
        "placeorder",
        {
            "apikey": key,
            "strategy": "hand",
            "symbol": FUT,
            "exchange": "NFO",
            "action": action,
            "quantity": str(qty),
            "pricetype": "MARKET",
            "product": "NRML",
        },
    )
    assert status == 200, body


def ltp_at(host: str, key: str = KEY) -> float:
    return float(
        post(host, "quotes", {"apikey": key, "symbol": FUT, "exchange": "NFO"})[1]["data"]["ltp"]
    )


def intent(
    iid: str, action: str, lots: int = 1, strategy: str = "s", **kw: Any
) -> wire.PlaceIntent:
    return wire.PlaceIntent(
        intent_id=iid,
        strategy=strategy,
        exchange="NFO",
        symbol=FUT,
        action=action,  # type: ignore[arg-type]
        quantity=lots * LOT,
        product="NRML",
        **kw,
    )


def stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        p.wait(timeout=10)
    procs.clear()


def teardown(
    procs: dict[str, subprocess.Popen[bytes]], bus: Bus, w: Watcher, *servers: Any
) -> None:
    stop(procs)
    bus.close()
    w.close()
    for p in servers:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)


class Bus:
    """The test's hands on the bus: intents as the engine, commands as the CLI."""

    def __init__(self, settings: Settings) -> None:
        self.ctx = zmq.Context()
        eps = settings.endpoints()
        self.engine = Pusher(self.ctx, eps["pipe.intents"], "engine", "intent")
        self.cli = Pusher(self.ctx, eps["pipe.commands"], "cli", "command")

    def close(self) -> None:
        self.engine.close()
        self.cli.close()
        self.ctx.destroy(linger=0)


def up(w: Watcher, procs: dict[str, subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """Wait for a heartbeat from each of these processes themselves (not one still in the
    watcher's socket from the processes they replaced)."""
    w.wait(
        lambda: all(d in w.status and w.status[d].pid == p.pid for d, p in procs.items()),
        timeout,
        f"{sorted(procs)} up",
    )


def seen(w: Watcher, kind: type, **match: Any) -> list[Any]:
    return [
        m
        for _, m in w.seen
        if isinstance(m, kind) and all(getattr(m, k) == v for k, v in match.items())
    ]


@pytest.mark.integration
def test_paper_on_a_real_openalgo_sends_it_nothing_and_fills_on_its_quotes(
    tmp_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """MT_MODE=paper against a real OpenAlgo: its market data, fills from the simulated
    exchange in the router at its quotes, for every account (a follower too); the server
    gets no order at all. config check says so before anything starts."""
    anchor = str(time.time_ns())
    proc, host = real_broker(tmp_path, "real", MT_CLOCK_ANCHOR_NS=anchor)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f'[accounts.second]\nhost = "{host}"\nws_url = "{WS_URL[host]}"\n'
        'api_key_env = "MT_TEST_SECOND_KEY"\n\n[strategies.s]\nfollow = { second = 1 }\n'
    )
    env = {
        **tmp_env,
        "MT_MODE": "paper",
        "MT_BROKER": "openalgo",
        "MT_SIM_SERVER": "false",
        "MT_OPENALGO_HOST": host,
        "MT_OPENALGO_WS_URL": WS_URL[host],
        "MT_OPENALGO_API_KEY": KEY,
        "MT_ACCOUNTS_FILE": str(accounts),
        "MT_TEST_SECOND_KEY": KEY,
        "MT_SIM_START": "2026-11-20T10:00",  # market time on the server's clock
        "MT_SIM_SPEED": "1",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_FEED_SUBSCRIBE": "universe",
        "MT_RECORD": "false",
    }
    r = cli("config", "check", env=env)
    assert r.returncode == 0, r.stderr
    assert f"orders: PAPER: simulated fills against live quotes from {host} for main, second" in (
        r.stdout
    )
    w = Watcher(settings, ("sys.status.", "exec."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk", "feed")}
    try:
        w.wait(lambda: {"router", "risk", "feed"} <= set(w.status), 30, "the daemons")
        w.wait(
            lambda: (
                None not in w.status["risk"].detail["margin_available"].values()
                and len(w.status["risk"].detail["margin_available"]) == 2
            ),
            15,
            "funds of both paper accounts",
        )
        assert "PAPER" in w.status["router"].detail["venue"]["banner"]
        w.wait(lambda: bus.engine.send(intent("p1", "BUY")), 10, "the intent pipe")
        w.wait(
            lambda: seen(w, wire.Fill, strategy="s") and seen(w, wire.Fill, strategy="s@second"),
            20,
            "fills for the lead and its follower",
        )
        ltp = ltp_at(host)
        for f in (*seen(w, wire.Fill, strategy="s"), *seen(w, wire.Fill, strategy="s@second")):
            assert abs(f.price / ltp - 1) < 0.01, (f.price, ltp)  # at the server's quotes
        w.pump(1.0)
        assert rows_at(host) == []  # not one order reached the "real" OpenAlgo
        assert net_at(host) == 0
    finally:
        teardown(procs, bus, w, proc)


@pytest.mark.integration
def test_a_simulated_day_never_reaches_live_and_unconfirmed_positions_are_never_traded(
    sim_broker: tuple[str, dict[str, str]],
    tmp_env: dict[str, str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Positions held on the simulator, then live against a "real" broker that holds
    only what someone placed by hand: nothing restored, no order, the hand position a
    reported mismatch. Later, a live position the broker no longer holds (closed by hand
    while the stack was down) is restored to nobody, and not even a flatten trades it."""
    _, sim_env = sim_broker
    env_a = {**sim_env, "MT_RISK_ANY_HOUR": "true"}
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event.", "recon."))
    bus = Bus(settings)
    procs = {d: spawn(d, env_a) for d in ("router", "risk")}
    proc, host = real_broker(tmp_path, "real")
    try:
        # A: the simulated day ends holding a position
        up(w, procs)
        w.wait(lambda: bus.engine.send(intent("a1", "BUY")), 10, "the intent pipe")
        w.wait(lambda: seen(w, wire.Fill, order_id="s.a1"), 15, "the simulated fill")
        sim_venue = w.status["router"].detail["venue"]["id"]
        assert sim_venue.startswith("paper-sim-")
        stop(procs)
        # B: live against an empty broker, where someone has placed an order by hand
        by_hand(host, "BUY", LOT)
        env_b = live_on(
            {
                **tmp_env,
                "MT_BROKER": "openalgo",
                "MT_OPENALGO_API_KEY": KEY,
                "MT_RISK_ANY_HOUR": "true",
                "MT_RECON_INTERVAL_S": "1",
                "MT_OPENALGO_POLL_S": "0.3",
            },
            host,
        )
        w.seen.clear()
        procs = {d: spawn(d, env_b) for d in ("router", "risk", "reconciler")}
        w.wait(
            lambda: (
                {"router", "risk", "reconciler"} <= set(w.status)
                and w.status["router"].detail["venue"]["live"]
            ),
            30,
            "the live daemons",
        )
        live_venue = w.status["router"].detail["venue"]["id"]
        assert live_venue.startswith("live-") and live_venue != sim_venue
        assert "LIVE: REAL ORDERS to " + host in w.status["router"].detail["venue"]["banner"]

        def positions() -> list[wire.ReconEvent]:  # (its order is reported as not ours too)
            return [e for e in seen(w, wire.ReconEvent) if e.kind == "position"]

        w.wait(positions, 15, "the hand position reported")
        ev = positions()[0]
        assert (ev.symbol, ev.ours, ev.broker, ev.action) == (FUT, 0, LOT, "external")
        assert w.status["risk"].detail["positions_open"] == 0  # nothing restored
        w.pump(1.5)
        assert len(rows_at(host)) == 1  # the hand order only: not one order from us
        log = (Path(tmp_env["MT_LOG_DIR"]) / "router.log").read_text()
        assert "no state of this venue here: starting clean" in log
        # the simulated day is still there, for its own venue
        assert (settings.state_dir / "venues" / sim_venue / "router" / "journal.bin").exists()
        # C: live, our own position; then, with the stack down, closed at the broker by hand
        w.wait(lambda: bus.engine.send(intent("c1", "BUY")), 10, "the intent pipe")
        w.wait(lambda: seen(w, wire.Fill, order_id="s.c1"), 15, "the live fill")
        assert net_at(host) == 2 * LOT
        stop(procs)
        by_hand(host, "SELL", 2 * LOT)
        assert net_at(host) == 0
        orders_before = len(rows_at(host))
        w.seen.clear()
        procs = {d: spawn(d, env_b) for d in ("router", "risk", "reconciler")}
        up(w, procs)
        assert w.status["router"].detail["unconfirmed"] == [f"main/NFO/{FUT}/NRML"]
        assert w.status["risk"].detail["positions_open"] == 0  # restored to nobody
        w.wait(
            lambda: bus.cli.send(wire.Command(command="kill_switch", value="flatten")),
            10,
            "the command pipe",
        )
        w.wait(lambda: w.status["risk"].detail["kill_mode"] == "flatten", 10, "flatten in force")
        w.wait(
            lambda: any(e.ours == LOT and e.broker == 0 for e in seen(w, wire.ReconEvent)),
            15,
            "the reconciler reports what we remember and the broker does not hold",
        )
        w.pump(2.0)
        assert len(rows_at(host)) == orders_before  # never an order for it, flatten or not
        assert net_at(host) == 0
    finally:
        teardown(procs, bus, w, proc)


@pytest.mark.integration
def test_the_kill_switch_cancels_entries_keeps_stops_and_refuses_entries(
    tmp_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """Live: a resting LIMIT entry is cancelled at the broker when the switch goes on; a
    protective stop of the filled position is placed and stays working; a new entry is
    refused; the CLI is told when the cancels are confirmed."""
    proc, host = real_broker(tmp_path, "real")
    env = live_on(
        {
            **tmp_env,
            "MT_BROKER": "openalgo",
            "MT_OPENALGO_API_KEY": KEY,
            "MT_RISK_ANY_HOUR": "true",
            "MT_OPENALGO_POLL_S": "0.3",
        },
        host,
    )
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk")}

    def status_at(oid: str) -> str:
        bid = seen(w, wire.OrderUpdate, order_id=oid)[-1].broker_order_id
        return next(r["order_status"] for r in rows_at(host) if r["orderid"] == bid)

    try:
        up(w, procs)
        w.wait(lambda: bus.engine.send(intent("k1", "BUY")), 10, "the intent pipe")
        w.wait(lambda: seen(w, wire.Fill, order_id="s.k1"), 15, "the entry filled")
        ltp = ltp_at(host)
        rest = intent("k2", "BUY", pricetype="LIMIT", price=round(ltp * 0.9 / 0.05) * 0.05)
        bus.engine.send(rest)
        w.wait(lambda: any(u.status == "open" for u in seen(w, wire.OrderUpdate, order_id="s.k2")),
               10, "a resting entry")  # fmt: skip
        assert status_at("s.k2") == "open"
        r = run_cli("kill-switch", "on", "--reason", "test", env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "every working entry order is cancelled at its broker" in r.stdout, r.stdout
        w.wait(lambda: status_at("s.k2") == "cancelled", 10, "the entry cancelled at the broker")
        # the filled position's protective stop is placed, and kept
        stop_px = round(ltp * 0.95 / 0.05) * 0.05
        bus.engine.send(intent("k3", "SELL", pricetype="SL-M", trigger_price=stop_px))
        w.wait(lambda: seen(w, wire.OrderUpdate, order_id="s.k3"), 10, "the stop answered")
        w.pump(1.5)
        assert status_at("s.k3") == "trigger pending"
        assert not seen(w, wire.RiskEvent, intent_id="k3")
        # a new entry is refused, and reaches nobody
        bus.engine.send(intent("k4", "BUY"))
        w.wait(lambda: seen(w, wire.RiskEvent, intent_id="k4"), 10, "the entry refused")
        assert seen(w, wire.RiskEvent, intent_id="k4")[0].rule == "kill_switch"
        w.pump(2.0)  # the halt's enforcement runs every second: the stop stays
        assert status_at("s.k3") == "trigger pending"
        assert len(rows_at(host)) == 3  # k1, k2 (cancelled), k3: nothing else
        assert w.status["risk"].detail["entries_halted"] == 0
    finally:
        teardown(procs, bus, w, proc)


@pytest.mark.integration
def test_followers_obey_the_caps_against_their_own_account(
    tmp_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """follow = { second = 100 } turned one lot into a hundred on the follower: now the
    follower's order is refused by the lead's caps (nothing reaches its broker), while a
    follower within them (x2) trades."""
    proc, host = real_broker(tmp_path, "real")
    proc2, host2 = real_broker(tmp_path, "real2", MT_OPENALGO_API_KEY=SECOND_KEY)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        f'[accounts.second]\nhost = "{host2}"\nws_url = "{WS_URL[host2]}"\n'
        'api_key_env = "MT_TEST_SECOND_KEY"\n\n'
        "[strategies.s]\nfollow = { second = 100 }\n\n[strategies.u]\nfollow = { second = 2 }\n"
    )
    env = live_on(
        {
            **tmp_env,
            "MT_BROKER": "openalgo",
            "MT_OPENALGO_API_KEY": KEY,
            "MT_RISK_ANY_HOUR": "true",
            "MT_ACCOUNTS_FILE": str(accounts),
            "MT_TEST_SECOND_KEY": SECOND_KEY,
        },
        host,
    )
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    bus = Bus(settings)
    procs = {d: spawn(d, env) for d in ("router", "risk")}
    try:
        up(w, procs)
        w.wait(lambda: bus.engine.send(intent("f1", "BUY")), 10, "the intent pipe")
        w.wait(lambda: seen(w, wire.RiskEvent, strategy="s@second"), 10, "the follower refused")
        refusal = seen(w, wire.RiskEvent, strategy="s@second")[0]
        assert refusal.kind == "rejected" and refusal.rule == "max_order_qty", refusal
        w.wait(lambda: seen(w, wire.Fill, order_id="s.f1"), 15, "the lead filled")
        bus.engine.send(intent("g1", "BUY", strategy="u"))
        w.wait(lambda: seen(w, wire.Fill, strategy="u@second"), 15, "the x2 follower filled")
        w.pump(1.0)
        assert [int(r["quantity"]) for r in rows_at(host2, SECOND_KEY)] == [2 * LOT]
        assert net_at(host2, SECOND_KEY) == 2 * LOT and net_at(host) == 2 * LOT
    finally:
        teardown(procs, bus, w, proc, proc2)


@pytest.mark.integration
def test_a_flipped_byte_mid_journal_loses_no_order(
    sim_broker: tuple[str, dict[str, str]], settings: Settings, tmp_env: dict[str, str]
) -> None:
    """Five orders at the broker (four resting, one filled), the router stopped, one byte
    of the second order's first record flipped: every other order is replayed, the second
    is rebuilt from the broker's book, the filled order's fill (its record damaged too)
    comes from the trade book, nothing is sent again, and an alert says what was lost."""
    host, env = sim_broker
    w = Watcher(settings, ("sys.status.", "exec."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    router = spawn("router", env)
    journal = venue.current(settings_of(env)).dir / "router" / "journal.bin"
    try:
        w.wait(lambda: "router" in w.status, 20, "the router")
        ltp = ltp_at(host)
        orders = []
        for k in range(5):
            o = order(f"j{k}", LOT, FUT)
            if k != 3:
                o = msgspec.structs.replace(
                    o, pricetype="LIMIT", price=round(ltp * 0.9 / 0.05) * 0.05
                )
            orders.append(o)
        for o in orders:
            w.wait(lambda o=o: as_risk.send(o), 10, "the order pipe")
            w.wait(lambda o=o: _placed(w, o.order_id), 10, f"{o.order_id} at the broker")
        w.wait(lambda: seen(w, wire.Fill, order_id="s.j3"), 10, "the market order filled")
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=10)
        data = bytearray(journal.read_bytes())
        rep = read_journal(journal)
        assert sorted(rep.orders) == [o.order_id for o in orders]
        first = data.find(b"s.j1")  # inside j1's first record (it carries the order)
        fill = data.rfind(b"s.j3")  # inside the fill record of j3 (the last one written)
        data[first] ^= 0xFF
        data[fill] ^= 0xFF
        journal.write_bytes(bytes(data))
        assert sorted(read_journal(journal).orders) == ["s.j0", "s.j2", "s.j3", "s.j4"]
        before = len(rows_at(host))
        router = spawn("router", env)
        up(w, {"router": router})
        w.wait(lambda: "journal_damage" in w.status["router"].detail, 5, "the damage said")
        damage = w.status["router"].detail["journal_damage"]
        assert damage["rebuilt_from_broker"] == ["s.j1"]
        assert damage["lost_bytes"] > 0 and Path(damage["kept_at"]).exists()
        assert damage["at_broker_unaccounted"] == [] and damage["lost_orders"] == []
        reply = _orders(ctx, settings)
        got = {w_.order.order_id: w_ for w_ in reply.working}
        assert sorted(got) == [o.order_id for o in orders]  # every order accounted for
        assert got["s.j1"].order.symbol == FUT and got["s.j1"].order.quantity == LOT
        assert got["s.j1"].status == "open" and got["s.j3"].status == "complete"
        fills = _fills(ctx, settings)
        assert sum(f.quantity for f in fills if f.order_id == "s.j3") == LOT  # none twice
        assert len(rows_at(host)) == before  # nothing sent again
    finally:
        router.send_signal(signal.SIGTERM)
        router.wait(timeout=10)
        as_risk.close()
        ctx.destroy(linger=0)
        w.close()


def _placed(w: Watcher, order_id: str) -> bool:
    return any(u.broker_order_id for u in seen(w, wire.OrderUpdate, order_id=order_id))


def _orders(ctx: zmq.Context, settings: Settings) -> wire.BrokerReply:
    from mytrading.messaging import bus

    reply = bus.request(ctx, settings.endpoints()["rpc.router"], wire.BrokerQuery(kind="orders"))
    assert isinstance(reply, wire.BrokerReply) and reply.ok
    return reply


def _fills(ctx: zmq.Context, settings: Settings) -> list[wire.Fill]:
    from mytrading.messaging import bus

    reply = bus.request(ctx, settings.endpoints()["rpc.router"], wire.BrokerQuery(kind="fills"))
    assert isinstance(reply, wire.BrokerReply) and reply.ok
    return reply.fills


BROKEN = """from mytrading.engine.strategy import BaseStrategy

1 / 0


class Broken(BaseStrategy):
    name = "broken_one"
"""
HALF_WRITTEN = "class Draft(BaseStrategy:\n    name = 'draft'\n"


@pytest.mark.integration
def test_bad_files_and_settings_stop_nothing(
    tmp_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """Three kinds of bad input around a running stack, none of which stops it:
    * a syntax error in a strategy file nobody enabled, and an enabled strategy whose file
      raises: the engine runs, the broken one quarantined with its traceback, the other
      trading;
    * a read-only DuckDB session holding risk.duckdb from before risk starts: risk is up
      within 5 s, its events wait, and reach the file once the reader is gone;
    * an alert webhook URL without a scheme: config check says so (exit 2) without the
      URL; the monitor, started with it anyway, delivers on its other channel, shows the
      webhook DISABLED, and logs no secret."""
    import shutil
    import sys

    import duckdb

    from mytrading.settings import PROJECT_ROOT
    from tests.alertsinks import TOKEN, Sink

    strategies = tmp_path / "strategies"
    strategies.mkdir()
    shutil.copy(PROJECT_ROOT / "strategies" / "sma_crossover.py", strategies)
    (strategies / "broken_one.py").write_text(BROKEN)
    (strategies / "draft.py").write_text(HALF_WRITTEN)
    sink = Sink().start()
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    (config / "alerts.toml").write_text(
        "[channels.webhook]\nenabled = true\nurl_env = 'MT_TEST_HOOK'\n\n"
        f"[channels.telegram_bot]\nenabled = true\nchat_id = '42'\napi = '{sink.url}'\n"
        "token_env = 'MT_TEST_BOT'\n"
    )
    secret = "hooks.example.com/services/T0KEN-SECRET"
    env = {
        **tmp_env,
        "MT_STRATEGIES_DIR": str(strategies),
        "MT_STRATEGIES": "sma_crossover,broken_one",
        "MT_SIM_SPEED": "120",
        "MT_RISK_ANY_HOUR": "true",
        "MT_STRATEGY_PARAMS": json.dumps({"sma_crossover": {"fast": 2, "slow": 3}}),
        "MT_CONFIG_DIR": str(config),
        "MT_TEST_HOOK": secret,
        "MT_TEST_BOT": TOKEN,
        "MT_MONITOR_PORT": str(_port()),
    }
    r = cli("config", "check", env=env)  # a broken enabled strategy: nothing starts
    assert r.returncode == 2 and "strategy broken_one does not load" in r.stderr
    assert "ZeroDivisionError" in r.stderr
    r = cli("config", "check", env={**env, "MT_STRATEGIES": "sma_crossover"})
    assert r.returncode == 2
    assert "webhook: the url in MT_TEST_HOOK must start with https://" in r.stderr
    assert "SECRET" not in r.stderr + r.stdout
    risk_db = Path(tmp_env["MT_RISK_DB"])
    risk_db.parent.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(risk_db)).close()  # it exists, as on a second day
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(risk_db)!r}, read_only=True); "
            "print('held', flush=True); sys.stdin.readline()",
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    procs = {d: spawn(d, env) for d in ("router", "feed", "engine", "monitor")}
    try:
        w.wait(lambda: {"router", "feed"} <= set(w.status), 30, "router and feed")
        t0 = time.monotonic()
        procs["risk"] = spawn("risk", env)
        w.wait(lambda: "risk" in w.status, 10, "risk up while its file is held")
        # a risk that waited for the file would never beat (the holder keeps it to the
        # end); one that gave up waiting later would: 30 s, as a loaded 2-core machine
        # took over 5 s for risk's start alone (2026-11-27)
        assert time.monotonic() - t0 < 30.0
        w.wait(lambda: "engine" in w.status, 20, "the engine up")
        strategies_seen = w.status["engine"].detail["strategies"]
        assert "ZeroDivisionError" in strategies_seen["broken_one"]["quarantined"]
        assert strategies_seen["sma_crossover"]["quarantined"] == ""
        assert "draft" not in strategies_seen  # never imported
        w.wait(lambda: seen(w, wire.Fill, strategy="sma_crossover"), 40, "the other trading")
        bus = Bus(settings)  # a risk event to store: a state change, as the CLI makes it
        cmd = wire.Command(command="state", value="reducing", target="nobody", reason="test")
        w.wait(lambda: bus.cli.send(cmd), 10, "the command pipe")
        bus.close()
        w.wait(lambda: w.status["risk"].detail["events_store_held"], 15, "risk's store held")
        assert w.status["risk"].detail["events_pending"] >= 1
        assert holder.stdin is not None
        holder.stdin.close()  # the reader goes away
        holder.wait(timeout=10)
        w.wait(
            lambda: (
                w.status["risk"].detail["events_pending"] == 0
                and not w.status["risk"].detail["events_store_held"]
            ),
            20,
            "risk's events written once the reader is gone",
        )
        assert w.status["risk"].detail["events_stored"] > 0
        # the monitor: the webhook disabled, its other channel delivering (daemons never
        # started here, reconciler and signals, are DOWN 10 s after its start)
        states = w.status["monitor"].detail["channel_state"]
        assert states["webhook"].startswith("DISABLED") and states["telegram_bot"] == "ok"
        w.wait(lambda: len(sink.got["bot"]) >= 1, 25, "an alert on the other channel")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
        monitor = procs.pop("monitor")
        monitor.send_signal(signal.SIGTERM)
        err = monitor.communicate(timeout=10)[1]
        stop(procs)
        w.close()
        sink.stop()
    logs = (Path(tmp_env["MT_LOG_DIR"]) / "monitor.log").read_text() + err.decode()
    assert "SECRET" not in logs and TOKEN not in logs


def _port() -> int:
    from tests.simhelpers import free_port

    return free_port()


@pytest.mark.integration
def test_live_refuses_to_start_without_the_operators_confirmation(
    tmp_env: dict[str, str], tmp_path: Path
) -> None:
    """MT_MODE=live in the environment is not enough: start without --live and no
    terminal refuses; a router started by hand refuses (and, started by supervisord,
    would end FATAL); --live with any other mode is refused too."""
    proc, host = real_broker(tmp_path, "real")
    env = {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_MODE": "live",
        "MT_SIM_SERVER": "false",
        "MT_OPENALGO_HOST": host,
        "MT_OPENALGO_WS_URL": WS_URL[host],
        "MT_OPENALGO_API_KEY": KEY,
    }
    routers: list[subprocess.Popen[bytes] | None] = [None]
    try:
        r = cli("start", env=env)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "needs the operator's confirmation" in r.stderr
        assert "REAL ORDERS to " + host in r.stdout  # what it would have done, said first
        router = routers[0] = spawn("router", env)
        router.communicate(timeout=30)
        assert router.returncode != 0
        assert (
            "without the operator's confirmation"
            in (Path(tmp_env["MT_LOG_DIR"]) / "router.log").read_text()
        )
        r = cli("start", "--live", env={**env, "MT_MODE": "paper"})
        assert r.returncode == 2 and "nothing real would trade" in r.stderr
        # a confirmation for other accounts does not do either
        confirmed = confirm_live(env)
        other = {**confirmed, "MT_OPENALGO_HOST": host.replace("127.0.0.1", "localhost")}
        router = routers[0] = spawn("router", other)
        router.communicate(timeout=30)
        assert router.returncode != 0
        assert rows_at(host) == []
    finally:
        for p in (*routers, proc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
