from __future__ import annotations

import msgspec
import pytest

from mytrading.messaging import wire


def samples() -> list[wire.Msg]:
    return [
        wire.Tick(
            exchange="NFO",
            symbol="NIFTY25NOV26FUT",
            ltp=24500.05,
            bid=24500.0,
            ask=24500.1,
            bid_qty=65,
            ask_qty=130,
            volume=1000,
            oi=5,
            exch_ns=1,
        ),
        wire.Bar(
            exchange="NFO",
            symbol="X",
            tf="1m",
            start_ns=2,
            open=1.0,
            high=2.0,
            low=0.5,
            close=1.5,
            volume=10,
        ),
        wire.PlaceIntent(
            intent_id="a-1",
            strategy="s",
            exchange="NFO",
            symbol="X",
            action="BUY",
            quantity=65,
            pricetype="SL",
            price=10.0,
            trigger_price=10.5,
        ),
        wire.AmendIntent(
            intent_id="a-2",
            strategy="s",
            exchange="NFO",
            symbol="X",
            action="BUY",
            quantity=130,
            pricetype="LIMIT",
            price=10.05,
            ref_intent_id="a-1",
        ),
        wire.CancelIntent(
            intent_id="a-3",
            strategy="s",
            exchange="NFO",
            symbol="X",
            action="BUY",
            quantity=130,
            ref_intent_id="a-1",
        ),
        wire.RollIntent(
            intent_id="a-4",
            strategy="s",
            exchange="NFO",
            symbol="X",
            action="SELL",
            quantity=65,
            product="NRML",
            roll_to="Y",
        ),
        wire.Order(
            order_id="s.a-1",
            intent_id="a-1",
            strategy="s",
            exchange="NFO",
            symbol="X",
            action="SELL",
            quantity=65,
            pricetype="LIMIT",
            product="NRML",
            price=9.95,
            trigger_price=0.0,
            approved_by="risk",
        ),
        wire.OrderUpdate(
            order_id="s.a-1",
            intent_id="a-1",
            strategy="s",
            exchange="NFO",
            symbol="X",
            action="BUY",
            quantity=65,
            status="trigger pending",
        ),
        wire.Fill(
            fill_no=1,
            fill_id="T1",
            order_id="o",
            broker_order_id="b",
            strategy="s",
            exchange="NFO",
            symbol="X",
            product="MIS",
            action="BUY",
            quantity=65,
            price=1.0,
            exch_ns=3,
        ),
        wire.PositionSnapshot(
            strategy="s",
            exchange="NFO",
            symbol="X",
            product="MIS",
            quantity=-65,
            avg_price=1.0,
            realized_pnl=-2.5,
            unrealized_pnl=3.0,
            ltp=1.1,
        ),
        wire.Funds(available=1e6, utilised=2.5e5, realized=-120.5, unrealized=30.0, account="b"),
        wire.MarginQuote(
            exchange="NFO", symbol="X", action="SELL", product="NRML", per_lot=150_000.0
        ),
        wire.RiskEvent(strategy="s", kind="rejected", rule="lot_multiple", reason="r"),
        wire.ReconEvent(
            exchange="NFO", symbol="X", product="MIS", ours=0, broker=65, action="external"
        ),
        wire.Status(
            name="feed",
            pid=1,
            state="running",
            started_ns=1,
            uptime_s=1.0,
            msgs_in=1,
            msgs_out=2,
            errors=0,
            gaps=0,
            lat_p50_us=1.0,
            lat_p99_us=2.0,
            peers_down=["risk"],
            detail={"ticks": 5, "nested": {"a": 1}},
        ),
        wire.Depth(
            exchange="NFO",
            symbol="NIFTY25NOV26FUT",
            bids=[24500.0, 24499.95],
            bid_qtys=[65, 130],
            asks=[24500.1],
            ask_qtys=[65],
            exch_ns=5,
        ),
        wire.Interest(wants=["NFO:NIFTY25NOV26FUT:depth", "NSE_INDEX:NIFTY:quote"]),
        wire.Command(command="kill_switch", value="on", reason="test"),
        wire.BrokerQuery(kind="fills", since_fill_no=3),
        wire.BrokerReply(ok=True, positions=[wire.BrokerPosition("NFO", "X", "MIS", 65, 1.0)]),
    ]


def test_every_message_type_has_a_sample() -> None:
    assert {type(m) for m in samples()} == set(wire.MESSAGE_TYPES)


@pytest.mark.parametrize("msg", samples(), ids=lambda m: type(m).__name__)
def test_round_trip(msg: wire.Msg) -> None:
    msg.src, msg.seq, msg.ts = "feed", 7, 123
    topic, back = wire.decode(wire.encode("md.tick.NFO.X", msg))
    assert topic == "md.tick.NFO.X"
    assert back == msg
    assert type(back) is type(msg)


@pytest.mark.parametrize(
    "frame, why",
    [
        (b"", "no topic separator"),
        (b"notopic", "no topic separator"),
        (b" leading-space", "no topic separator"),
        (b"md.tick.X \xff\xfe\x00", "bad payload"),
        (b"md.tick.X " + msgspec.msgpack.encode(["nosuchtag", "", 0, 0]), "bad payload"),
        (b"\xffbad \x90", "not ASCII"),
    ],
)
def test_malformed_frames_raise_wire_error(frame: bytes, why: str) -> None:
    with pytest.raises(wire.WireError, match=why):
        wire.decode(frame)


def test_schema_violation_is_rejected_not_coerced() -> None:
    good = wire.encode("t", wire.Command(command="kill_switch", value="on"))
    raw = msgspec.msgpack.decode(good[2:])
    raw[-3] = 12345  # src (a header field, encoded last) must be a string
    with pytest.raises(wire.WireError) as err:
        wire.decode(b"t " + msgspec.msgpack.encode(raw))
    assert err.value.topic == "t"
    raw = msgspec.msgpack.decode(good[2:])
    raw.append("extra field")
    with pytest.raises(wire.WireError):
        wire.decode(b"t " + msgspec.msgpack.encode(raw))


def test_invalid_literal_rejected() -> None:
    intent = wire.PlaceIntent(
        intent_id="a", strategy="s", exchange="NFO", symbol="X", action="BUY", quantity=1
    )
    raw = msgspec.msgpack.decode(wire.encode_body(intent))
    raw[raw.index("BUY")] = "HOLD"
    with pytest.raises(wire.WireError):
        wire.decode_body(msgspec.msgpack.encode(raw))


def test_exact_topic_prefix() -> None:
    assert wire.exact(wire.tick_topic("NSE_INDEX", "NIFTY")) == "md.tick.NSE_INDEX.NIFTY "
    assert not wire.encode("md.tick.NSE_INDEX.NIFTYNXT50", samples()[0]).startswith(
        wire.exact(wire.tick_topic("NSE_INDEX", "NIFTY")).encode()
    )


def test_each_intent_carries_only_its_own_fields() -> None:
    """A cancel has no price, a roll no price and no sizing, an amend no link: a field
    another kind of intent has is refused on the wire, not carried and ignored."""
    cancel = wire.CancelIntent(
        intent_id="c",
        strategy="s",
        exchange="NFO",
        symbol="X",
        action="BUY",
        quantity=65,
        ref_intent_id="a",
    )
    topic, back = wire.decode(wire.encode("intent", cancel))
    assert (topic, back) == ("intent", cancel)
    head = dict(intent_id="x", strategy="s", exchange="NFO", symbol="X", action="BUY")
    for kind, own, extra in (
        (wire.CancelIntent, {"ref_intent_id": "a"}, {"price": 1.0}),
        (wire.RollIntent, {"roll_to": "Y"}, {"sizing": "A"}),
        (wire.AmendIntent, {"ref_intent_id": "a"}, {"link": None}),
    ):
        kind(**head, quantity=65, **own)  # type: ignore[operator]  # its own fields: fine
        with pytest.raises(TypeError):
            kind(**head, quantity=65, **own, **extra)  # type: ignore[operator]
    # an amend without the order it changes does not decode
    raw = msgspec.msgpack.encode(["amend", "", 0, 0, "i", "s", "NFO", "X", "BUY", 65])
    with pytest.raises(wire.WireError):
        wire.decode(b"intent " + raw)
