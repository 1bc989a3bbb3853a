"""A mistake is refused where the author makes it: every value the wire would refuse is
refused at the helper's call, by name, with its choices, the same in a backtest as live
(the live half is ``test_author_values_process.py``). An intent that leaves the engine
always decodes; one that still does not is refused to its sender by name, and one nobody
answers is settled as rejected, not left "new"."""

from __future__ import annotations

import inspect
import time
from datetime import date, timedelta

import msgspec
import pytest

from mytrading import domain
from mytrading.backtest.data import GeneratedBars
from mytrading.backtest.loop import Backtest, Spec
from mytrading.domain.refdata import RefData
from mytrading.engine.context import StrategyContext
from mytrading.engine.strategy import BaseStrategy
from mytrading.messaging import wire
from mytrading.messaging.outbox import Outbox
from mytrading.risk.config import risk_files
from mytrading.settings import PROJECT_ROOT
from tests.engine.test_strategy_runner import FUT, LOT, make

# What a misspelt product says, live and in a backtest alike (the hook that made it, then
# the error as the engine's status and the backtest's health both keep it).
TYPO_ERROR = "bar: ValueError: product 'NRMl' is not one of MIS, NRML, CNC"

TYPO_STRATEGY = '''
from mytrading.messaging import wire
from mytrading.engine.strategy import BaseStrategy


class Typo(BaseStrategy):
    """Buys the near NIFTY future on every bar, with its product misspelt."""

    name = "typo"

    def on_start(self) -> None:
        self.subscribe_bars(*self.near_future("NIFTY"), "1m")

    def on_bar(self, bar: wire.Bar) -> None:
        self.buy(bar.exchange, bar.symbol, self.lot_size(bar.exchange, bar.symbol),
                 product="NRMl")
'''


def typo_class() -> type[BaseStrategy]:
    space: dict[str, object] = {}
    exec(compile(TYPO_STRATEGY, "typo.py", "exec"), space)
    cls = space["Typo"]
    assert isinstance(cls, type) and issubclass(cls, BaseStrategy)
    return cls


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"product": "NRMl"}, "product 'NRMl' is not one of MIS, NRML, CNC"),
        ({"pricetype": "LIMT"}, "pricetype 'LIMT' is not one of MARKET, LIMIT, SL, SL-M"),
        ({"price": float("nan")}, "price must be a finite number, got nan"),
        ({"trigger_price": "24000"}, "trigger_price must be a finite number, got '24000'"),
    ],
)
def test_a_misspelt_value_fails_at_the_call_naming_it_and_the_choices(
    refdata: RefData, kw: dict[str, object], message: str
) -> None:
    rig, s = make(refdata)
    with pytest.raises(ValueError) as err:
        s.buy("NFO", FUT, LOT, **kw)
    assert str(err.value) == message
    assert rig.sent == [] and s.open_orders == {}  # nothing left the engine


def test_exchange_action_and_quantity_are_checked_too(refdata: RefData) -> None:
    rig, s = make(refdata)
    with pytest.raises(ValueError, match=r"exchange 'NFx' is not one of NSE, NFO, BSE, BFO"):
        s.buy("NFx", FUT, LOT)
    with pytest.raises(ValueError, match=r"exchange 'NSE_INDEX' is not one of"):
        s.sell("NSE_INDEX", "NIFTY", 1)  # an index is quoted, never traded
    with pytest.raises(ValueError, match=r"quantity must be a whole number, got 65.0"):
        s.buy("NFO", FUT, 65.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"bracket: action 'buy' is not one of BUY, SELL"):
        s.bracket("NFO", FUT, "buy", LOT, stop_distance=20)
    with pytest.raises(ValueError, match=r"bracket: product 'nrml' is not one of"):
        s.bracket("NFO", FUT, "BUY", LOT, stop_distance=20, product="nrml")
    entry = s.buy("NFO", FUT, LOT, pricetype="LIMIT", price=24_000)
    with pytest.raises(ValueError, match=r"pricetype 'STOP' is not one of"):
        s.modify(entry, pricetype="STOP")
    assert len(rig.sent) == 1  # only the good order went out
    # what did go out decodes strictly, as risk reads it
    frame = wire.encode("intent", rig.sent[0])
    assert wire.decode(frame)[1] == rig.sent[0]


def test_the_facade_and_the_context_take_the_same_arguments() -> None:
    """``BaseStrategy``'s order helpers that hand straight to the context cannot drift from
    it: each takes exactly the context method's parameters, with the same defaults."""
    for name in ("bracket", "modify", "cancel", "cancel_all", "roll"):
        facade = inspect.signature(getattr(BaseStrategy, name)).parameters
        core = inspect.signature(getattr(StrategyContext, name)).parameters
        assert [(p.name, p.default) for p in facade.values()] == [
            (p.name, p.default) for p in core.values()
        ], name
    # buy/sell/... pass **kw to the context's order: each keyword it takes is a real one
    order = inspect.signature(StrategyContext.order).parameters
    assert {"pricetype", "product", "price", "trigger_price", "sizing"} <= set(order)


def test_a_misspelt_product_fails_in_a_backtest_with_the_live_message(refdata: RefData) -> None:
    start = date(2026, 11, 2)
    source = GeneratedBars(refdata, 42, origin=start - timedelta(days=30))
    config = PROJECT_ROOT / "config"
    bt = Backtest(Spec([(typo_class(), {})], start, start, capital=5_000_000.0), refdata,
                  risk_files(config, {}), source)  # fmt: skip
    bt.run()
    h = bt.runner.health["typo"]
    assert h.last_error == TYPO_ERROR
    assert h.quarantined  # it failed on every bar, so it was stopped
    assert bt.results.orders == {}  # and nothing was ever sent


def test_an_unreadable_intent_still_names_itself_for_its_refusal() -> None:
    good = wire.PlaceIntent(
        intent_id="i7", strategy="typo", exchange="NFO", symbol=FUT, action="BUY",
        quantity=LOT, product="NRML",
    )  # fmt: skip
    raw = msgspec.msgpack.decode(wire.encode_body(good))
    raw[raw.index("NRML")] = "NRMl"
    frame = b"intent " + msgspec.msgpack.encode(raw)
    with pytest.raises(wire.WireError):
        wire.decode(frame)
    assert wire.intent_identity(frame) == ("typo", "i7")
    assert wire.intent_identity(b"intent \xc1garbage") is None
    tick = wire.Tick(exchange="NFO", symbol=FUT, ltp=1, bid=1, ask=1, bid_qty=1, ask_qty=1,
                     volume=1)  # fmt: skip
    assert wire.intent_identity(wire.encode("md.tick", tick)) is None  # not an intent


class _Pipe:
    def __init__(self) -> None:
        self.sent: list[wire.Msg] = []

    def send(self, msg: wire.Msg) -> bool:
        self.sent.append(msg)
        return True


def test_an_intent_nobody_answers_is_handed_back_once() -> None:
    expired: list[tuple[wire.Msg, str]] = []
    pipe = _Pipe()
    box: Outbox[wire.PlaceIntent] = Outbox(
        pipe,  # type: ignore[arg-type]
        lambda: True,
        5.0,
        lambda m, why: expired.append((m, why)),
        lambda: "down",
        key=lambda i: i.intent_id,
    )
    a, b = (
        wire.PlaceIntent(
            intent_id=i, strategy="s", exchange="NFO", symbol=FUT, action="BUY", quantity=LOT
        )
        for i in ("a", "b")
    )
    box.put(a)
    time.sleep(0.05)
    box.put(b)
    box.ack("b")  # b was answered
    assert box.overdue(10) == []
    assert box.overdue(0.01) == [a]
    assert box.overdue(0) == []  # handed back once
    assert box.redeliver() == 0 and pipe.sent == [a, b]  # and never sent again


def test_an_order_settled_as_unanswered_is_working_again_when_approved_late(
    refdata: RefData,
) -> None:
    rig, s = make(refdata)
    oid = s.buy("NFO", FUT, LOT)
    intent = rig.sent[-1]
    assert isinstance(intent, wire.PlaceIntent)
    rig.runner.on_order_update(
        wire.OrderUpdate(
            order_id="",
            intent_id=oid,
            strategy=s.name,
            exchange="NFO",
            symbol=FUT,
            action="BUY",
            quantity=LOT,
            status="rejected",
            reason="no answer from risk within 15s",
        )
    )
    assert s.open_orders == {} and s.working("NFO", FUT) == 0
    rig.runner.take_up(intent)
    rig.ack(intent, "open")
    assert s.working("NFO", FUT) == LOT
    rig.fill(intent, LOT, 24_000.0)
    assert s.position("NFO", FUT) == LOT and s.open_orders == {}


def test_domain_checks_return_typed_values() -> None:
    assert domain.product("CNC") == "CNC" and domain.action("SELL") == "SELL"
    assert domain.opposite("BUY") == "SELL" and domain.price(5) == 5.0
    with pytest.raises(ValueError, match="quantity must be a whole number, got True"):
        domain.quantity(True)
