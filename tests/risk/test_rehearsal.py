"""Risk's rehearsal (``RiskCore.rehearse``) changes nothing: two cores built alike, fed
one seeded stream of ticks, intents (new orders, amends, cancels, reversals), broker
answers and post-trade steps over a trading day, one of them rehearsing after every
message, send the same orders, publish the same events and end with the same book."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.risk.book import Funds
from mytrading.risk.core import REHEARSAL_ID, RiskCore
from mytrading.risk.daemon import build_core
from mytrading.settings import load_settings
from tests.risk.test_risk_core import FUT, NS, Broker, LivePorts
from tests.risk.test_risk_rules import at, intent


def view(core: RiskCore, wall_ns: int) -> dict[str, Any]:
    """Everything the core's book holds, as plain values, as a decision at ``wall_ns``
    sees it: the approvals of the last minute and the margin reserved since the broker's
    last report (older ones, the rules' housekeeping drops when it next looks: a
    rehearsal looks sooner)."""
    b = core.book

    def reserved(f: Funds) -> list[tuple[int, float]]:
        return [r for r in f.reserved if r[0] >= f.funds_ns - NS]

    return {
        "positions": dict(b.positions),
        "working": {oid: b.working[oid] for oid in b.working},
        "entries": set(b.entries),
        "cancelling": dict(b.cancelling),
        "seen": set(b.seen_intents),
        "booked": dict(b.booked),
        "awaiting": set(b.awaiting),
        "approvals": {k: [w for w in v if wall_ns - w < 60 * NS] for k, v in b.approvals.items()},
        "funds": {
            a: (f.available, reserved(f), sum((m for _, m in reserved(f)), 0.0))
            for a, f in b.funds.items()
        },
        # when a state was set is the host's clock's (the two cores are stepped apart)
        "states": {k: v for k, v in b.states.as_dict().items() if k != "why"},
        "why": {k: w["reason"] for k, w in b.states.as_dict()["why"].items()},
        "counts": core.counts,
        "pnl": {s: core.post.pnl(s) for s in core.post.books},
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rehearsing_after_every_message_changes_nothing(refdata: RefData, seed: int) -> None:
    rng = random.Random(seed)
    s = load_settings()
    t = [at(9, 20)]
    now = lambda: t[0]  # noqa: E731
    now_ns = lambda: int(t[0].timestamp() * NS)  # noqa: E731
    mono = lambda: now_ns() / NS  # noqa: E731
    broker = Broker()
    plain_ports, keen_ports = LivePorts(broker), LivePorts(broker)
    plain, keen = (
        build_core(s, refdata, Accounts(by_name={}), p, now, "r", None, now_ns, mono)
        for p in (plain_ports, keen_ports)
    )
    assert keen.rehearse() is None  # no order judged yet: nothing to rehearse
    rehearsed = 0

    def both(fn: str, *args: Any) -> None:
        nonlocal rehearsed
        getattr(plain, fn)(*args)
        getattr(keen, fn)(*args)
        got = keen.rehearse()
        if got is not None:
            rehearsed += 1
            assert got.intent_id == REHEARSAL_ID and got not in keen_ports.orders
        assert keen_ports.orders == plain_ports.orders
        assert keen_ports.events == plain_ports.events
        assert view(keen, now_ns()) == view(plain, now_ns())

    working: list[wire.Order] = []
    sent = 0
    price = 24_000.0
    while t[0] < at(15, 20):
        t[0] += timedelta(seconds=rng.randint(1, 90))
        r = rng.random()
        if r < 0.35:
            price = round(price + rng.choice((-1, 1)) * rng.randint(0, 40) * 0.5, 1)
            broker.ltp[FUT] = price
            both("on_tick", wire.Tick(exchange="NFO", symbol=FUT, ltp=price, bid=price,
                                      ask=price, bid_qty=1, ask_qty=1, volume=1,
                                      exch_ns=now_ns()))  # fmt: skip
        elif r < 0.65 and FUT in broker.ltp:
            for p in (plain, keen):
                p.on_funds("main", 5_000_000.0, now_ns())
            limit = rng.random() < 0.4
            kw: dict[str, Any] = dict(
                strategy=rng.choice(("a", "b")), product=rng.choice(("MIS", "NRML")),
                decided_ns=now_ns(),
            )  # fmt: skip
            if limit:
                kw.update(pricetype="LIMIT", price=price - 50)
            both("on_intent", intent(65 * rng.randint(1, 3), rng.choice(("BUY", "SELL")), **kw))
        elif r < 0.75 and working:
            o = rng.choice(working)  # cancelled when the cancel reaches the broker
            both("on_intent", intent(o.quantity, o.action, op="cancel", strategy=o.strategy,
                                     ref_intent_id=o.intent_id, symbol=o.symbol))  # fmt: skip
        else:
            both("step")
        # the broker: market orders and cancels done at once, limits left working
        while len(plain_ports.orders) > sent:
            o = plain_ports.orders[sent]
            sent += 1
            if o.pricetype == "LIMIT" and o.op == "place":
                working.append(o)
                continue
            if o.op == "cancel":  # the order it names cancelled, if it is still working
                gone = [w for w in working if w.order_id == o.ref_order_id]
                for w in gone:
                    working.remove(w)
                    both("on_update", wire.OrderUpdate(
                        order_id=w.order_id, intent_id=w.intent_id, strategy=w.strategy,
                        exchange=w.exchange, symbol=w.symbol, action=w.action,
                        quantity=w.quantity, status="cancelled"))  # fmt: skip
            for m in broker.execute(o, t[0]):
                both("on_fill" if isinstance(m, wire.Fill) else "on_update", m)
    assert sent >= 20 and rehearsed >= 20  # the stream did trade, and rehearsals ran
    assert {e.kind for e in plain_ports.events} & {"rejected", "trigger", "state"}  # refusals too


def test_a_rehearsal_is_of_the_last_new_order_and_sends_nothing(refdata: RefData) -> None:
    s = load_settings()
    t = datetime.fromisoformat("2026-11-23T10:00:00+05:30")
    ports = LivePorts(Broker())
    core = build_core(s, refdata, Accounts(by_name={}), ports, lambda: t, "r", None,
                      lambda: int(t.timestamp() * NS), lambda: t.timestamp())  # fmt: skip
    core.on_funds("main", 5_000_000.0, int(t.timestamp() * NS))
    core.on_tick(wire.Tick(exchange="NFO", symbol=FUT, ltp=24_000.0, bid=24_000.0,
                           ask=24_000.0, bid_qty=1, ask_qty=1, volume=1))  # fmt: skip
    core.on_intent(intent(65, "BUY", strategy="a"))
    assert len(ports.orders) == 1
    got = core.rehearse()
    assert got is not None and got.intent_id == REHEARSAL_ID
    assert (got.strategy, got.symbol, got.action, got.quantity) == ("a", FUT, "BUY", 65)
    assert len(ports.orders) == 1 and REHEARSAL_ID not in core.book.seen_intents
    core.book.states.set("*", "halted", "the kill switch", "test")  # refused now: nothing
    assert core.rehearse() is None and not ports.events
