"""Two OpenAlgo accounts on real processes: two simulator servers (each its own broker,
standing in for real OpenAlgo servers, so the stack runs live, confirmed), router, risk
and reconciler. A strategy followed by the second account at twice its size:
its orders reach both brokers in parallel, fills and positions stay apart per account,
the lead's exit flattens both, the reconciler checks each account against its own broker,
and risk's own exit of a follower book goes to that account and is confirmed there. And
the feed's market data fails over to the second account and back."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from mytrading.messaging import bus, wire
from mytrading.messaging.bus import Pusher
from mytrading.settings import PROJECT_ROOT, Settings
from tests.procs import Watcher, confirm_live, live_on, spawn, stop
from tests.simhelpers import KEY, WS_URL, control, live_future, order, post, start_server

# live runs on the wall clock: a contract that has not expired by it
FUT = live_future()

SECOND_KEY = "second-account-key"
LOT = 65


def second_server(
    env: dict[str, str], tmp_path: Path, **extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    return start_server(
        {"MT_LOG_DIR": str(tmp_path / "logs2"), "MT_STATE_DIR": str(tmp_path / "state2")},
        MT_OPENALGO_API_KEY=SECOND_KEY,
        MT_CLOCK_ANCHOR_NS=env["MT_CLOCK_ANCHOR_NS"],
        MT_SIM_FAULTS="true",
        **{"MT_SIM_CAPITAL": "5000000", **extra},
    )


def accounts_env(env: dict[str, str], tmp_path: Path, host2: str, follow: str) -> dict[str, str]:
    path = tmp_path / "accounts.toml"
    path.write_text(
        f"""
[accounts.second]
host = "{host2}"
ws_url = "{WS_URL[host2]}"
api_key_env = "MT_TEST_SECOND_KEY"
orders_per_s = 5

[strategies.s]
follow = {{ second = {follow} }}

[strategies.v]
lead = "second"
"""
    )
    return {**env, "MT_ACCOUNTS_FILE": str(path), "MT_TEST_SECOND_KEY": SECOND_KEY}


def book(host: str, key: str, what: str) -> Any:
    status, body = post(host, what, {"apikey": key})
    assert status == 200, body
    return body["data"]


def net(host: str, key: str) -> int:
    return sum(int(p["quantity"]) for p in book(host, key, "positionbook") if p["symbol"] == FUT)


def intent(iid: str, action: str, lots: int, strategy: str = "s") -> wire.PlaceIntent:
    return wire.PlaceIntent(
        intent_id=iid,
        strategy=strategy,
        exchange="NFO",
        symbol=FUT,
        action=action,  # type: ignore[arg-type]
        quantity=lots * LOT,
        product="NRML",
    )


def risk_funded(w: Watcher) -> bool:
    """Risk has a funds figure from both accounts' brokers (its status says so)."""
    got = w.status["risk"].detail["margin_available"] if "risk" in w.status else {}
    return got.get("main") is not None and got.get("second") is not None


@pytest.mark.integration
def test_a_follower_account_mirrors_in_parallel_and_is_flattened_with_the_lead(
    sim_broker: tuple[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    host, env = sim_broker
    proc2, host2 = second_server(env, tmp_path, MT_SIM_CAPITAL="1000000")
    env = {
        **accounts_env(env, tmp_path, host2, "2"),
        "MT_RISK_ANY_HOUR": "true",
        "MT_OPENALGO_TIMEOUT_S": "5",
        "MT_RECON_INTERVAL_S": "1",
    }
    env = live_on(env, host)  # paper would fill both in the router: these are "real"
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event.", "recon."))
    ctx = zmq.Context()
    eps = settings.endpoints()
    as_engine = Pusher(ctx, eps["pipe.intents"], "engine", "intent")
    procs = {d: spawn(d, env) for d in ("router", "risk", "reconciler")}

    def updates(oid: str) -> list[wire.OrderUpdate]:
        return [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]

    def fills(strategy: str) -> list[wire.Fill]:
        return [m for _, m in w.seen if isinstance(m, wire.Fill) and m.strategy == strategy]

    def filled(strategy: str) -> int:
        return sum(f.quantity if f.action == "BUY" else -f.quantity for f in fills(strategy))

    def complete(oid: str) -> wire.OrderUpdate:
        w.wait(lambda: any(u.status == "complete" for u in updates(oid)), 20, f"{oid} complete")
        return next(u for u in updates(oid) if u.status == "complete")

    try:
        w.wait(lambda: {"router", "risk", "reconciler"} <= set(w.status), 30, "the daemons")
        w.wait(lambda: risk_funded(w), 15, "funds from both accounts, in risk")
        # Both brokers take two seconds to answer: the calls overlap, they do not queue.
        for h in (host, host2):
            control(
                h,
                "/_sim/faults",
                {"endpoint": "placeorder", "faults": ["hang_after"], "hang_s": 2.0},
            )
        w.wait(lambda: as_engine.send(intent("e1", "BUY", 1)), 10, "the intent pipe")
        lead, follower = complete("s.e1"), complete("s.e1@second")
        assert (lead.quantity, follower.quantity, follower.strategy) == (LOT, 2 * LOT, "s@second")
        assert abs(follower.sent_ns - lead.sent_ns) < 1.0e9  # sequential would be >= 2 s apart
        w.wait(lambda: filled("s") == LOT and filled("s@second") == 2 * LOT, 10, "both fills")
        assert {f.account for f in fills("s")} == {"main"}
        assert {f.account for f in fills("s@second")} == {"second"}
        assert (net(host, KEY), net(host2, SECOND_KEY)) == (LOT, 2 * LOT)
        # each broker saw its own order once, and only its own
        ours = [r for r in book(host, KEY, "orderbook")["orders"] if r["symbol"] == FUT]
        theirs = [r for r in book(host2, SECOND_KEY, "orderbook")["orders"] if r["symbol"] == FUT]
        assert [int(r["quantity"]) for r in ours] == [LOT]
        assert [int(r["quantity"]) for r in theirs] == [2 * LOT]
        # the router's snapshot keeps the books apart, each on its account
        reply = bus.request(ctx, eps["rpc.router"], wire.BrokerQuery(kind="strategy_positions"))
        assert isinstance(reply, wire.BrokerReply)
        snaps = {(p.strategy, p.account): p.quantity for p in reply.snapshots if p.quantity}
        assert snaps == {("s", "main"): LOT, ("s@second", "second"): 2 * LOT}
        # the lead exits: so does the follower, with all of its position
        as_engine.send(intent("e2", "SELL", 1))
        assert complete("s.e2@second").quantity == 2 * LOT
        w.wait(lambda: filled("s") == 0 and filled("s@second") == 0, 10, "both flat")
        assert (net(host, KEY), net(host2, SECOND_KEY)) == (0, 0)
        # the reconciler compares each account with its own broker: nothing to report
        checks = w.status["reconciler"].detail["checks"]
        w.wait(lambda: w.status["reconciler"].detail["checks"] >= checks + 2, 10, "two checks")
        assert w.status["reconciler"].detail["mismatches"] == 0
        assert not [m for _, m in w.seen if isinstance(m, wire.ReconEvent)]
        # a resting LIMIT entry works on both accounts; a cancel naming the wrong account
        # is refused without a broker call; the strategy's cancel reaches both
        ltp = float(
            post(host, "quotes", {"apikey": KEY, "symbol": FUT, "exchange": "NFO"})[1]["data"][
                "ltp"
            ]
        )
        rest = msgspec.structs.replace(
            intent("l1", "BUY", 1), pricetype="LIMIT", price=round(ltp * 0.9 / 0.05) * 0.05
        )
        as_engine.send(rest)
        for oid in ("s.l1", "s.l1@second"):
            w.wait(lambda o=oid: any(u.status == "open" for u in updates(o)), 10, f"{oid} open")
        as_risk = Pusher(ctx, eps["pipe.orders"], "risk", "order")
        forged = wire.Order(
            order_id="s.x1",
            intent_id="x1",
            strategy="s",
            exchange="NFO",
            symbol=FUT,
            action="BUY",
            quantity=LOT,
            pricetype="MARKET",
            product="NRML",
            price=0.0,
            trigger_price=0.0,
            approved_by="risk",
            op="cancel",
            ref_order_id="s.l1",
            account="second",
        )
        w.wait(lambda: as_risk.send(forged), 10, "the order pipe")
        w.wait(lambda: updates("s.x1"), 10, "the forged cancel answered")
        assert (updates("s.x1")[-1].status, updates("s.x1")[-1].reason) == (
            "rejected",
            "cancel: s.l1 is not working",
        )
        as_risk.close()
        cancel = wire.CancelIntent(
            intent_id="l2",
            strategy="s",
            exchange="NFO",
            symbol=FUT,
            action="BUY",
            quantity=LOT,
            product="NRML",
            ref_intent_id="l1",
        )
        as_engine.send(cancel)
        for oid in ("s.l1", "s.l1@second"):
            w.wait(
                lambda o=oid: any(u.status == "cancelled" for u in updates(o)),
                10,
                f"{oid} cancelled",
            )
        # a strategy that leads on the second account: its orders go there, and its margin
        # is that account's (10 lakh there, 1 crore on main: five lots do not fit)
        # risk's figure of the second account's funds is its broker's last report (every
        # 2 s): until one after the cancels comes, the resting order's margin still counts
        w.wait(
            lambda: (w.status["risk"].detail.get("margin_free") or {}).get("second", 0) > 800_000,
            10,
            "the cancelled orders' margin free again in risk",
        )
        as_engine.send(intent("v1", "BUY", 1, strategy="v"))
        assert complete("v.v1").account == "second"
        w.wait(lambda: filled("v") == LOT, 10, "v's fill")
        assert {f.account for f in fills("v")} == {"second"}
        assert (net(host, KEY), net(host2, SECOND_KEY)) == (0, LOT)
        as_engine.send(intent("v2", "BUY", 5, strategy="v"))
        w.wait(
            lambda: any(isinstance(m, wire.RiskEvent) and m.intent_id == "v2" for _, m in w.seen),
            10,
            "v's five lots refused",
        )
        refusal = next(
            m for _, m in w.seen if isinstance(m, wire.RiskEvent) and m.intent_id == "v2"
        )
        assert (refusal.kind, refusal.rule) == ("rejected", "margin"), refusal
        assert refusal.threshold < 1_000_000  # the second account's funds, not main's
        # a hand-placed order on the second account is reported there, as external
        status, body = post(
            host2,
            "placeorder",
            {
                "apikey": SECOND_KEY,
                "strategy": "hand",
                "symbol": FUT,
                "exchange": "NFO",
                "action": "BUY",
                "quantity": str(LOT),
                "pricetype": "MARKET",
                "product": "NRML",
            },
        )
        assert status == 200, body
        w.wait(
            lambda: any(
                isinstance(m, wire.ReconEvent) and m.account == "second" and m.kind == "position"
                for _, m in w.seen
            ),
            15,
            "the second account's external position reported",
        )
        ev = next(m for _, m in w.seen if isinstance(m, wire.ReconEvent) and m.kind == "position")
        assert (ev.account, ev.ours, ev.broker, ev.action) == ("second", LOT, 2 * LOT, "external")
        assert w.status["router"].detail["accounts"]["second"]["order_ws_up"] is True
    finally:
        stop([*procs.values(), proc2])
        as_engine.close()
        ctx.destroy(linger=0)
        w.close()


@pytest.mark.integration
def test_risk_closes_a_follower_book_on_its_own_account(
    sim_broker: tuple[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    """A max loss on the follower's book (its charges alone breach 1 rupee) closes it on
    the second account, confirmed by that account's position book; the lead on main is
    untouched, and the follower, now REDUCING, does not follow the lead's next entry."""
    host, env = sim_broker
    proc2, host2 = second_server(env, tmp_path)
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    with (config / "risk.toml").open("a") as f:
        f.write('\n[strategies."s@second"]\nmax_loss = 1.0\n')
    env = {
        **accounts_env(env, tmp_path, host2, "2"),
        "MT_RISK_ANY_HOUR": "true",
        "MT_CONFIG_DIR": str(config),
    }
    env = live_on(env, host)
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    ctx = zmq.Context()
    as_engine = Pusher(ctx, settings.endpoints()["pipe.intents"], "engine", "intent")
    procs = {d: spawn(d, env) for d in ("router", "risk")}

    def events(kind: str) -> list[wire.RiskEvent]:
        return [m for _, m in w.seen if isinstance(m, wire.RiskEvent) and m.kind == kind]

    try:
        w.wait(lambda: {"router", "risk"} <= set(w.status), 30, "the daemons")
        w.wait(lambda: risk_funded(w), 15, "funds from both accounts, in risk")
        w.wait(lambda: as_engine.send(intent("e1", "BUY", 1)), 10, "the intent pipe")
        w.wait(lambda: events("exit_confirmed"), 30, "the follower's exit confirmed")
        assert [e.strategy for e in events("exit_confirmed")] == ["s@second"]
        (trigger,) = events("trigger")
        assert (trigger.strategy, trigger.rule) == ("s@second", "max_loss")
        assert (net(host, KEY), net(host2, SECOND_KEY)) == (LOT, 0)
        exits = [
            m
            for _, m in w.seen
            if isinstance(m, wire.Fill) and m.order_id.startswith("s@second.risk-")
        ]
        # one exit order of both lots on the second account; the simulator's market order
        # walks levels of the touch's size, so it may fill in more than one part
        assert {(f.account, f.action, f.order_id) for f in exits} == {
            ("second", "SELL", exits[0].order_id)
        }
        assert sum(f.quantity for f in exits) == 2 * LOT
        w.pump(1.2)
        assert w.status["risk"].detail["states"]["strategies"] == {"s@second": "reducing"}
        as_engine.send(intent("e2", "BUY", 1))  # the lead adds; the follower stays out
        w.wait(lambda: net(host, KEY) == 2 * LOT, 15, "the lead's second lot")
        w.pump(1.0)
        assert net(host2, SECOND_KEY) == 0
        assert not [
            m
            for _, m in w.seen
            if isinstance(m, wire.Order | wire.OrderUpdate) and m.order_id == "s.e2@second"
        ]
    finally:
        stop([*procs.values(), proc2])
        as_engine.close()
        ctx.destroy(linger=0)
        w.close()


@pytest.mark.integration
def test_market_data_fails_over_to_the_next_account_and_back(
    tmp_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    anchor = str(time.time_ns())
    common = {"MT_CLOCK_ANCHOR_NS": anchor, "MT_SIM_TICK_HZ": "4"}
    proc1, host1 = start_server(
        {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": str(tmp_path / "s1")}, **common
    )
    env = {
        **tmp_env,
        "MT_BROKER": "openalgo",
        "MT_OPENALGO_API_KEY": KEY,
        "MT_SIM_REST_PORT": host1.rsplit(":", 1)[1],
        "MT_SIM_WS_PORT": WS_URL[host1].rsplit(":", 1)[1],
        "MT_SIM_START": "2026-11-20T10:00",
        "MT_SIM_SPEED": "1",
        "MT_CLOCK_ANCHOR_NS": anchor,
        "MT_SIM_UNDERLYINGS": "NIFTY",
        "MT_SIM_STRIKES": "1",
        "MT_FEED_FAILBACK_S": "1",
        "MT_RECORD": "false",
    }
    proc2, host2 = second_server(env, tmp_path, MT_SIM_TICK_HZ="4")
    env = accounts_env(env, tmp_path, host2, "1")
    w = Watcher(settings, ("sys.status.", "md.tick."))
    feed = spawn("feed", env)
    ticks = lambda: sum(isinstance(m, wire.Tick) for _, m in w.seen)  # noqa: E731
    detail = lambda: w.status["feed"].detail if "feed" in w.status else {}  # noqa: E731
    try:
        w.wait(lambda: detail().get("connected") and ticks() > 10, 30, "ticks from main")
        assert detail()["data_account"] == "main"
        proc1.send_signal(signal.SIGTERM)  # the main account's server goes away
        proc1.wait(timeout=10)
        w.wait(lambda: detail().get("data_account") == "second", 20, "failover to second")
        w.wait(lambda: detail().get("connected"), 10, "connected to second")
        before = ticks()
        w.wait(lambda: ticks() > before + 10, 10, "ticks from the second account")
        # main comes back on the same ports: the feed goes back to it
        proc1, _ = start_server(
            {"MT_LOG_DIR": tmp_env["MT_LOG_DIR"], "MT_STATE_DIR": str(tmp_path / "s1")},
            MT_SIM_REST_PORT=env["MT_SIM_REST_PORT"],
            MT_SIM_WS_PORT=env["MT_SIM_WS_PORT"],
            **common,
        )
        w.wait(lambda: detail().get("data_account") == "main", 20, "failback to main")
        w.wait(lambda: detail().get("connected"), 10, "connected to main again")
        before = ticks()
        w.wait(lambda: ticks() > before + 10, 10, "ticks from main again")
        assert detail()["failovers"] == 2
    finally:
        stop([feed, proc1, proc2])
        w.close()


def test_each_account_has_its_own_rate_window() -> None:
    from mytrading.domain.accounts import Account
    from mytrading.router.lanes import Lane

    lane = Lane("second", None, Lane.rates(Account("second", "h", "w", "k", 5, 1)))  # type: ignore[arg-type]
    now = time.monotonic()
    for i in range(8):
        lane.throttle.push(f"o{i}", "order", False)
    sent = []
    while (item := lane.throttle.pop_ready(now)) is not None:
        sent.append(item.key)
    assert len(sent) == 5  # five in any one second on this account
    assert lane.throttle.next_in(now) == pytest.approx(1.0, abs=0.01)


@pytest.mark.integration
def test_an_order_on_an_account_removed_across_a_restart_is_unknown_and_halts(
    sim_broker: tuple[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    """An order rests on the second account; the router restarts with that account gone
    from the configuration. It cannot settle the order, so it never guesses: UNKNOWN, an
    alert, and the strategy halted in risk."""
    host, env = sim_broker
    proc2, host2 = second_server(env, tmp_path)
    env = live_on({**accounts_env(env, tmp_path, host2, "2"), "MT_RISK_ANY_HOUR": "true"}, host)
    w = Watcher(settings, ("sys.status.", "exec.order."))
    ctx = zmq.Context()
    as_risk = Pusher(ctx, settings.endpoints()["pipe.orders"], "risk", "order")
    procs = {d: spawn(d, env) for d in ("router", "risk")}

    def last(oid: str) -> wire.OrderUpdate | None:
        ups = [m for _, m in w.seen if isinstance(m, wire.OrderUpdate) and m.order_id == oid]
        return ups[-1] if ups else None

    try:
        w.wait(lambda: {"router", "risk"} <= set(w.status), 30, "the daemons")
        ltp = float(
            post(host2, "quotes", {"apikey": SECOND_KEY, "symbol": FUT, "exchange": "NFO"})[1][
                "data"
            ]["ltp"]
        )
        resting = msgspec.structs.replace(
            order("r1", LOT, FUT), pricetype="LIMIT", price=round(ltp * 0.9 / 0.05) * 0.05
        )
        resting = msgspec.structs.replace(resting, account="second")
        w.wait(lambda: as_risk.send(resting), 10, "the order pipe")
        w.wait(lambda: (u := last("s.r1")) is not None and u.status == "open", 15, "resting")
        old = w.status["router"].pid
        procs["router"].send_signal(signal.SIGTERM)
        procs["router"].wait(timeout=10)
        (tmp_path / "none.toml").write_text("")
        fewer = confirm_live({**env, "MT_ACCOUNTS_FILE": str(tmp_path / "none.toml")})
        procs["router"] = spawn("router", fewer)  # confirmed again: the accounts changed
        w.wait(lambda: w.status["router"].pid != old, 20, "the router back")
        w.wait(lambda: (u := last("s.r1")) is not None and u.status == "unknown", 15, "UNKNOWN")
        assert "account 'second' is no longer configured" in last("s.r1").reason  # type: ignore[union-attr]
        w.wait(
            lambda: w.status["risk"].detail["states"]["strategies"].get("s") == "halted",
            15,
            "the strategy halted in risk",
        )
        # nothing was sent again anywhere, and the order still rests where it was
        book2 = [r for r in book(host2, SECOND_KEY, "orderbook")["orders"] if r["symbol"] == FUT]
        assert [r["order_status"] for r in book2] == ["open"]
        assert [r for r in book(host, KEY, "orderbook")["orders"] if r["symbol"] == FUT] == []
    finally:
        stop([*procs.values(), proc2])
        as_risk.close()
        ctx.destroy(linger=0)
        w.close()


@pytest.mark.integration
def test_a_follower_whose_broker_was_down_catches_up_when_it_returns(
    sim_broker: tuple[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    """Issue 38: the follower account's broker is killed; the lead trades on; the
    follower's copy cannot be sent; the router says the account is away; when its broker
    is back (the same server, its books kept) the follower is brought to its lead's book
    within seconds, and the account is said to be back."""
    host, env = sim_broker
    proc2, host2 = second_server(env, tmp_path)
    port2, ws2 = host2.rsplit(":", 1)[1], WS_URL[host2].rsplit(":", 1)[1]
    env = {**accounts_env(env, tmp_path, host2, "1"), "MT_RISK_ANY_HOUR": "true",
           "MT_OPENALGO_TIMEOUT_S": "2", "MT_ROUTER_RETRY_BACKOFF_S": "0.2"}  # fmt: skip
    env = live_on(env, host)
    w = Watcher(settings, ("sys.status.", "exec.", "risk.event."))
    ctx = zmq.Context()
    as_engine = Pusher(ctx, settings.endpoints()["pipe.intents"], "engine", "intent")
    procs = {d: spawn(d, env) for d in ("router", "risk")}

    def away() -> dict[str, str]:
        return w.status["router"].detail.get("accounts_away") or {} if "router" in w.status else {}

    try:
        w.wait(lambda: {"router", "risk"} <= set(w.status), 30, "the daemons")
        w.wait(lambda: risk_funded(w), 15, "funds from both accounts, in risk")
        w.wait(lambda: as_engine.send(intent("f1", "BUY", 1)), 10, "the intent pipe")
        w.wait(lambda: net(host, KEY) == LOT and net(host2, SECOND_KEY) == LOT, 15, "both")
        proc2.kill()  # the follower's broker goes away
        proc2.wait(timeout=10)
        w.wait(lambda: "second" in away(), 20, "the account said away")
        as_engine.send(intent("f2", "BUY", 1))  # the lead trades on
        w.wait(lambda: net(host, KEY) == 2 * LOT, 15, "the lead's second lot")
        w.pump(4.0)
        assert "second" in away()
        proc2, _ = start_server(
            {"MT_LOG_DIR": str(tmp_path / "logs2"), "MT_STATE_DIR": str(tmp_path / "state2")},
            MT_OPENALGO_API_KEY=SECOND_KEY,
            MT_CLOCK_ANCHOR_NS=env["MT_CLOCK_ANCHOR_NS"],
            MT_SIM_FAULTS="true",
            MT_SIM_REST_PORT=port2,
            MT_SIM_WS_PORT=ws2,
        )
        back = time.monotonic()
        w.wait(lambda: net(host2, SECOND_KEY) == 2 * LOT, 60, "the follower caught up")
        took = time.monotonic() - back
        w.wait(lambda: "second" not in away(), 10, "the account said back")
        assert took < 30, took

        def caught() -> int:
            return sum(
                m.quantity
                for _, m in w.seen
                if isinstance(m, wire.Fill) and m.strategy == "s@second"
            )

        # the catch-up's fill is published once the router reads the order's end (the
        # follower's order updates come back with its socket, its books polled behind):
        # it can follow the position at the broker by a poll
        w.wait(lambda: caught() >= 2 * LOT, 20, "the catch-up's fill")
        assert caught() == 2 * LOT  # the first copy, and the catch-up
        w.wait(lambda: w.status["risk"].detail.get("followers_behind") == {}, 10, "risk agrees")
    finally:
        stop([*procs.values(), proc2])
        as_engine.close()
        ctx.destroy(linger=0)
        w.close()
