"""Risk's core (``risk/core.py``) as its two shells drive it.

The parity test feeds one stream of intents, order updates, fills and ticks over two
trading days to the core as the risk daemon builds it (``risk.daemon.build_core``: the
configuration, the ``MT_RISK_*`` overrides, the accounts) and to the backtest's shell
(``backtest.risk.BacktestRisk``), and asserts they send the same orders and publish the
same events: approvals split by an override, a reversal after the entry window (its
closing part goes), a daily loss limit (REDUCING, risk's exit, confirmed flat), and the
next day's reset to ACTIVE.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mytrading.backtest.risk import BacktestRisk
from mytrading.config import for_process
from mytrading.domain.accounts import Accounts
from mytrading.domain.positions import Ledger
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.book import RiskBook
from mytrading.risk.config import risk_files
from mytrading.risk.core import RiskCore
from mytrading.risk.daemon import build_core
from mytrading.risk.limits import env_overrides, limits_for
from mytrading.risk.monitor import Key
from mytrading.risk.orders import closing_part, decide
from mytrading.risk.rules import Approval, Rejection
from mytrading.risk.state import TradingStates
from mytrading.settings import PROJECT_ROOT, load_settings
from tests.conftest import interpreted_only
from tests.risk.test_risk_rules import LIMITS, at, intent

FUT = "NIFTY29DEC26FUT"  # lot 65
NS = 1_000_000_000


# ------------------------------------------------------------ the reversal rule


def test_a_reversal_after_the_entry_window_still_closes(refdata: RefData) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = 65
    late = at(15, 12)
    got = decide(intent(130, "SELL", product="NRML"), book, refdata, LIMITS, late, 0, None)
    assert isinstance(got, Approval) and got.quantity == 65  # the closing part, as an exit
    assert got.refused_open is not None and got.refused_open.rule == "entry_window"
    whole = decide(intent(130, "SELL"), book, refdata, LIMITS, at(11, 0), 0, None)
    assert isinstance(whole, Approval) and whole.quantity == 130 and whole.refused_open is None
    # an entry that is not a reversal is refused whole, as before
    more = decide(intent(65, "BUY", product="NRML"), book, refdata, LIMITS, late, 0, None)
    assert isinstance(more, Rejection) and more.rule == "entry_window"


def test_a_halted_or_capped_book_reverses_only_as_far_as_flat(refdata: RefData) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = -65
    book.states = TradingStates("halted")
    got = decide(intent(195, "BUY"), book, refdata, LIMITS, at(10, 0), 0, None)
    assert isinstance(got, Approval) and got.quantity == 65
    assert got.refused_open is not None and got.refused_open.rule == "kill_switch"
    book.states = TradingStates()
    capped = LIMITS.model_copy(update={"max_position_lots": 1})
    got = decide(intent(195, "BUY"), book, refdata, capped, at(10, 0), 0, None)
    assert isinstance(got, Approval) and got.quantity == 65
    assert got.refused_open is not None and got.refused_open.rule == "max_position"


def test_what_is_never_cut_to_its_closing_part(refdata: RefData) -> None:
    book = RiskBook()
    book.positions[("s", "NFO", FUT)] = 65
    twice = intent(130, "SELL")
    book.seen_intents.add(twice.intent_id)
    got = decide(twice, book, refdata, LIMITS, at(15, 12), 0, None)
    assert isinstance(got, Rejection) and got.rule == "duplicate_intent"
    # the closing part itself refused (outside the exit window too): the whole reason
    got = decide(intent(130, "SELL"), book, refdata, LIMITS, at(15, 45), 0, None)
    assert isinstance(got, Rejection) and got.rule in ("market_hours", "exit_window")
    assert closing_part(intent(65, "SELL"), 65) is None  # an exit, not a reversal
    assert closing_part(intent(65, "SELL"), 0) is None  # an entry from flat
    assert closing_part(intent(130, "SELL", sizing="margin:0.5"), 65) is None
    assert closing_part(intent(130, "SELL", op="modify", ref_intent_id="x"), 65) is None  # type: ignore[arg-type]
    part = closing_part(intent(130, "SELL"), 65)
    assert part is not None and part.quantity == 65 and part.action == "SELL"


# ------------------------------------------------------------------ the parity


@dataclass
class Broker:
    """Fills every order in full at the last price; cancels what it names."""

    ledger: Ledger = field(default_factory=Ledger)
    trades: int = 0
    ltp: dict[str, float] = field(default_factory=dict)
    fill_no: int = 0

    def net(self, key: Key) -> int:
        p = self.ledger.positions.get(key)
        return p.qty if p else 0

    def execute(self, o: wire.Order, t: datetime) -> list[wire.Msg]:
        base = dict(
            order_id=o.order_id,
            intent_id=o.intent_id,
            strategy=o.strategy,
            exchange=o.exchange,
            symbol=o.symbol,
            action=o.action,
            quantity=o.quantity,
            part=o.part,
            parts=o.parts,
        )
        if o.op != "place":
            return [wire.OrderUpdate(**base, status="complete")]  # type: ignore[arg-type]
        price = self.ltp[o.symbol]
        signed = o.quantity if o.action == "BUY" else -o.quantity
        self.ledger.apply((o.exchange, o.symbol, o.product), signed, price)
        self.trades += 1
        self.fill_no += 1
        fill = wire.Fill(
            fill_no=self.fill_no,
            fill_id=f"T{self.fill_no}",
            order_id=o.order_id,
            broker_order_id=f"B{self.fill_no}",
            strategy=o.strategy,
            exchange=o.exchange,
            symbol=o.symbol,
            product=o.product,
            action=o.action,
            quantity=o.quantity,
            price=price,
            exch_ns=int(t.timestamp() * NS),
        )
        done = wire.OrderUpdate(
            **base,  # type: ignore[arg-type]
            status="complete",
            filled_qty=o.quantity,
            avg_price=price,
        )
        return [fill, done]


class LivePorts:
    """What the daemon's ports do, into lists: the outbox, the bus, the state file."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.orders: list[wire.Order] = []
        self.events: list[wire.RiskEvent] = []
        self.saved: list[str] = []

    def send(self, order: wire.Order) -> bool:
        self.orders.append(order)
        return True

    def emit(self, event: wire.RiskEvent) -> None:
        self.events.append(event)

    def save_states(self, states: TradingStates, reason: str) -> None:
        self.saved.append(reason)

    def broker_net(self, key: Key, account: str) -> int | None:
        return self.broker.net(key)

    def want_funds(self, account: str) -> None:
        raise AssertionError("funds are reported before every intent here")

    def room(self) -> int:
        return 1000

    def error(self, what: str, **ctx: object) -> None:
        raise AssertionError(what)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The repository's configuration with a daily loss limit for strategy ``loser``."""
    cfg = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", cfg)
    risk = cfg / "risk.toml"
    risk.write_text(risk.read_text() + "\n[strategies.loser]\nmax_loss = 20000.0\n")
    return cfg


def test_the_daemon_and_the_backtest_drive_risk_alike(
    refdata: RefData, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MT_RISK_MAX_ORDER_LOTS", "1")  # an override: children of one lot
    monkeypatch.setenv("MT_CONFIG_DIR", str(config))
    s = load_settings()
    assert env_overrides(s) == {"max_order_lots": 1}
    t = [at(10, 0).replace(day=23)]  # Monday 2026-11-23
    now = lambda: t[0]  # noqa: E731
    now_ns = lambda: int(t[0].timestamp() * NS)  # noqa: E731
    broker = Broker()
    ports = LivePorts(broker)
    live = build_core(  # both clocks on market time, as the backtest runs
        s, refdata, Accounts(by_name={}), ports, now, "bt", None, now_ns, lambda: now_ns() / NS
    )
    bt_orders: list[wire.Order] = []
    bt_events: list[wire.RiskEvent] = []
    bt = BacktestRisk(
        refdata,
        for_process(s).backtest_risk(env_overrides(s)),  # what a backtest is given
        10_000_000.0,
        broker,  # type: ignore[arg-type]
        now_ns,
        now,
        bt_orders.append,
        bt_events.append,
    )
    assert bt.limits.as_dict() == live.limits.as_dict() == limits_for(s).as_dict()

    def tick(price: float) -> None:
        broker.ltp[FUT] = price
        tk = wire.Tick(
            exchange="NFO", symbol=FUT, ltp=price, bid=price, ask=price, bid_qty=1, ask_qty=1,
            volume=1, exch_ns=now_ns(),
        )  # fmt: skip
        live.on_tick(tk)
        bt.on_tick(tk)

    def send(i: wire.PlaceIntent) -> None:
        live.on_funds("main", bt._available(), now_ns())  # what the broker would report
        live.on_intent(i)
        bt.on_intent(i)
        settle()

    sent: list[wire.Order] = []

    def settle() -> None:
        """Orders both sent (the same ones) to the broker; its answers to both."""
        while ports.orders or bt_orders:
            assert ports.orders == bt_orders
            out = list(ports.orders)
            sent.extend(out)
            ports.orders.clear()
            bt_orders.clear()
            for o in out:
                for m in broker.execute(o, t[0]):
                    if isinstance(m, wire.Fill):
                        live.on_fill(m)
                        bt.on_fill(m)
                    else:
                        live.on_update(m)  # type: ignore[arg-type]
                        bt.on_update(m)  # type: ignore[arg-type]

    def step(h: int, m: int, day: int = 23) -> None:
        t[0] = at(h, m).replace(day=day)
        live.step()
        bt.step()
        settle()

    tick(24_000.0)
    send(intent(130, "BUY", strategy="loser", product="NRML"))  # 2 children of 1 lot
    send(intent(65, "BUY", strategy="rev", product="NRML"))
    step(10, 1)
    tick(23_800.0)  # loser: -26,000 < -20,000: REDUCING, closed by risk
    step(10, 2)
    step(10, 3)  # the exit confirmed flat in the broker's book
    t[0] = at(15, 12).replace(day=23)
    send(intent(130, "SELL", strategy="rev", product="NRML"))  # a reversal, too late
    assert broker.net(("NFO", FUT, "NRML")) == 0
    step(9, 20, day=24)  # a new day: loser is ACTIVE again

    assert ports.events == bt_events
    assert [(o.strategy, o.action, o.quantity, o.exit) for o in sent] == [
        ("loser", "BUY", 65, False),  # 130 in children of one lot: MT_RISK_MAX_ORDER_LOTS
        ("loser", "BUY", 65, False),
        ("rev", "BUY", 65, False),
        ("loser", "SELL", 65, True),  # risk's exit, split the same way
        ("loser", "SELL", 65, True),
        ("rev", "SELL", 65, True),  # the reversal's closing part, as an exit
    ]
    kinds = [(e.strategy, e.kind, e.rule, e.action) for e in ports.events]
    assert kinds == [
        ("loser", "trigger", "max_loss", "close"),
        ("loser", "state", "max_loss", "reducing"),  # the state it set, for the engine
        ("loser", "exit", "max_loss", "close"),
        ("loser", "exit_confirmed", "max_loss", "close"),
        ("rev", "part_rejected", "entry_window", "close_only"),
        ("loser", "state", "trading_state", "active"),
    ]
    assert live.counts == bt.core.counts
    assert live.book.states.as_dict() == bt.book.states.as_dict()
    assert (
        live.book.positions
        == bt.book.positions
        == {
            ("loser", "NFO", FUT): 0,
            ("rev", "NFO", FUT): 0,
        }
    )


def test_the_core_is_the_backtests(refdata: RefData, config: Path) -> None:
    """The backtest's shell holds a ``RiskCore``, not logic of its own."""
    bt = BacktestRisk(
        refdata,
        risk_files(config, {}),
        1e6,
        Broker(),  # type: ignore[arg-type]
        lambda: 0,
        lambda: at(10, 0),
        lambda o: None,
        lambda e: None,
    )
    assert isinstance(bt.core, RiskCore) and bt.book is bt.core.book
    own = {n for n, v in vars(BacktestRisk).items() if callable(v) and not n.startswith("__")}
    assert own <= {
        *("send", "emit", "save_states", "broker_net", "want_funds", "room", "error"),
        *("on_intent", "on_update", "on_fill", "on_bar", "on_tick"),
        *("_available", "_work_out_funds"),
    }


def test_live_refuses_any_hour_from_the_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mytrading.settings import ConfigError

    risk = config / "risk.toml"
    risk.write_text(risk.read_text() + "\n[strategies.night]\nany_hour = true\n")
    monkeypatch.setenv("MT_CONFIG_DIR", str(config))
    assert limits_for(load_settings()).of("night").any_hour  # paper: a demo may
    with pytest.raises(ConfigError, match=r"any_hour = true in \['night'\]"):
        limits_for(
            load_settings(mode="live", broker="openalgo", sim_server=False, openalgo_api_key="k")
        )


def test_restore_after_a_restart_is_the_cores(refdata: RefData, config: Path) -> None:
    """What the router knows after a restart, given to the core: working orders count
    against the caps, today's fills rebuild the day's P&L (a fill of a position the broker
    did not confirm is left out), a carried position starts at its average price."""
    from mytrading.messaging.catchup import Snapshot

    t = at(11, 0).replace(day=23)
    ports = LivePorts(Broker())
    s = load_settings(config_dir=config)
    core = build_core(s, refdata, Accounts(by_name={}), ports, lambda: t, "r", None)

    def fill(no: int, strategy: str, action: str, qty: int, px: float, account: str = "main"):
        return wire.Fill(
            fill_no=no, fill_id=f"f{no}", order_id=f"{strategy}.e{no}", broker_order_id=str(no),
            strategy=strategy, exchange="NFO", symbol=FUT, product="NRML", action=action,
            quantity=qty, price=px, exch_ns=0, account=account,
        )  # fmt: skip

    def position(strategy: str, qty: int, avg: float) -> wire.PositionSnapshot:
        return wire.PositionSnapshot(
            strategy=strategy, exchange="NFO", symbol=FUT, product="NRML", quantity=qty,
            avg_price=avg, realized_pnl=0.0, unrealized_pnl=0.0, ltp=avg,
        )  # fmt: skip

    working = wire.Order(
        order_id="day.e9", intent_id="e9", strategy="day", exchange="NFO", symbol=FUT,
        action="BUY", quantity=130, pricetype="LIMIT", product="NRML", price=24_000.0,
        trigger_price=0.0, approved_by="risk",
    )  # fmt: skip
    snap = Snapshot(
        positions=[position("day", 65, 24_000.0), position("old", -65, 23_500.0)],
        last_fill_no=3,
        working=[wire.WorkingOrder(order=working, status="open", filled_qty=65)],
        unconfirmed=frozenset({("ghost", "NFO", FUT, "NRML")}),
    )
    fills = [
        fill(1, "day", "BUY", 130, 24_000.0),
        fill(2, "day", "SELL", 65, 24_100.0),  # 65 closed today at +100: 6,500 realized
        fill(3, "x", "BUY", 65, 1.0, account="ghost"),  # unconfirmed: not replayed
    ]
    core.restore(snap, fills)
    assert core.book.positions == {("day", "NFO", FUT): 65, ("old", "NFO", FUT): -65}
    assert core.book.net(("day", "NFO", FUT)) == 65 + 65  # the working order's rest
    assert core.post.pnl("day")["realized"] == pytest.approx(6_500.0)
    assert "x" not in core.post.books
    core.mark(("NFO", FUT), 23_400.0)  # the carried short from its average: +100 a unit
    assert core.post.pnl("old")["unrealized"] == pytest.approx(6_500.0)


@interpreted_only
def test_an_intent_goes_through_risks_modules_in_one_direction(refdata: RefData) -> None:
    """Followed call by call, one intent crosses risk's modules only downwards: the core
    into orders, orders into the rules, the rules into the book and reference data;
    nothing below calls back up (an edge both ways, or a cycle, fails this)."""
    import sys

    t = at(11, 0).replace(day=23)
    core = build_core(load_settings(), refdata, Accounts(by_name={}), LivePorts(Broker()),
                      lambda: t, "r", None)  # fmt: skip
    core.on_tick(
        wire.Tick(exchange="NFO", symbol=FUT, ltp=24_000.0, bid=24_000.0, ask=24_000.0,
                  bid_qty=1, ask_qty=1, volume=1)
    )  # fmt: skip
    core.on_funds("main", 1e7, time.time_ns())
    edges: set[tuple[str, str]] = set()

    def mod(code_file: str) -> str:
        return code_file.split("/mytrading/")[1] if "/mytrading/" in code_file else ""

    def watch(frame: Any, event: str, arg: object) -> None:
        if event == "call" and frame.f_back is not None:
            callee, caller = mod(frame.f_code.co_filename), mod(frame.f_back.f_code.co_filename)
            if callee and caller and callee != caller:
                edges.add((caller, callee))

    intent = wire.PlaceIntent(intent_id="i1", strategy="s", exchange="NFO", symbol=FUT,
                              action="BUY", quantity=65, product="NRML")  # fmt: skip
    sys.setprofile(watch)
    try:
        core.on_intent(intent)
    finally:
        sys.setprofile(None)
    assert ("risk/core.py", "risk/orders.py") in edges
    assert ("risk/orders.py", "risk/rules.py") in edges
    assert ("risk/rules.py", "risk/book.py") in edges
    assert not {(b, a) for a, b in edges} & edges, "an edge both ways"
    # no cycle: every module can be ranked below its callers
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    seen: set[str] = set()
    path: set[str] = set()

    def acyclic(n: str) -> bool:
        if n in path:
            return False
        if n in seen:
            return True
        path.add(n)
        ok = all(acyclic(m) for m in graph.get(n, ()))
        path.discard(n)
        seen.add(n)
        return ok

    assert all(acyclic(n) for n in list(graph)), edges


def test_the_daemons_core_reads_the_market_time_from_one_wall_reading(refdata: RefData) -> None:
    """Built with the daemon's market clock, the core works an intent's market time out of
    its one wall reading (``MarketClock.market_at``): a simulated clock's market time, not
    the wall's, decides the trading hours and an intent's age, as ``market_now`` would."""
    from mytrading.domain.clock import MarketClock

    wall0 = 1_800_000_000 * NS  # a wall instant long after the market's
    market0 = int(at(11, 0).timestamp()) * NS  # a Monday, 11:00 in India
    clock = MarketClock(wall0, market0, 1.0)
    wall = [wall0]
    ports = LivePorts(Broker())
    core = build_core(load_settings(), refdata, Accounts(by_name={}), ports, clock.now, "r",
                      None, wall_ns=lambda: wall[0], clock=clock)  # fmt: skip
    core.on_funds("main", 1e7, wall0)

    def place(decided_ns: int) -> None:
        core.on_intent(intent(decided_ns=decided_ns, product="NRML"))

    wall[0] = wall0 + 30 * NS  # 11:00:30 of market time
    place(market0 + 29 * NS)  # a second old in market time (the wall's would be decades)
    assert len(ports.orders) == 1 and not ports.events
    place(market0 + 20 * NS)  # ten seconds old
    assert len(ports.orders) == 1
    assert ports.events[-1].rule == "stale_intent" and ports.events[-1].value == 10.0
    wall[0] = wall0 + (4 * 3600 + 15 * 60) * NS  # 15:15 of market time: after the entries
    place(market0 + (4 * 3600 + 15 * 60) * NS)
    assert ports.events[-1].rule == "entry_window" and "15:15" in ports.events[-1].reason
