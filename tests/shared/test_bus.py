"""The bus over real ZeroMQ sockets (ipc in a temp dir)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import (
    EndpointMap,
    Publisher,
    Puller,
    Pusher,
    SequenceTracker,
    Subscriber,
    bind,
)


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


def ep(tmp_path: Path, name: str) -> str:
    return f"ipc://{tmp_path}/{name}.sock"


def tick(sym: str = "X", ltp: float = 1.0) -> wire.Tick:
    return wire.Tick(
        exchange="NFO", symbol=sym, ltp=ltp, bid=ltp, ask=ltp, bid_qty=1, ask_qty=1, volume=0
    )


def sync(pub: Publisher, sub: Subscriber, topic: str) -> None:
    """Publish on a topic until the subscriber sees it: proof the subscription is live.

    This is how the daemons avoid the slow-joiner problem (heartbeats play this role).
    """
    for _ in range(500):
        pub.publish(topic, tick())
        if sub.sock.poll(10):
            sub.recv()
            while sub.sock.poll(20):
                sub.recv()
            return
    raise AssertionError("subscription never became live")


def test_endpoint_map_ipc_tcp_and_overrides(tmp_path: Path) -> None:
    ipc = EndpointMap.build("ipc", str(tmp_path))
    assert ipc.pub("feed") == f"ipc://{tmp_path}/pub.feed.sock"
    tcp = EndpointMap.build(
        "tcp", "", host="10.1.2.3", base_port=9000, overrides={"pub.feed": "tcp://10.9.9.9:1"}
    )
    assert tcp.pub("feed") == "tcp://10.9.9.9:1"
    assert tcp["pipe.orders"].startswith("tcp://10.1.2.3:90")
    assert len(set(tcp.endpoints.values())) == len(tcp.endpoints)
    with pytest.raises(ValueError, match="unknown bus endpoint"):
        EndpointMap.build("ipc", str(tmp_path), overrides={"pub.nope": "x"})


def test_pub_sub_topic_filtering_and_header(ctx: zmq.Context, tmp_path: Path) -> None:
    pub = Publisher(ctx, ep(tmp_path, "p"), "feed")
    sub = Subscriber(ctx, [ep(tmp_path, "p")], ["sync", wire.exact("md.tick.NFO.NIFTY")])
    sync(pub, sub, "sync")
    pub.publish("md.tick.NFO.NIFTYNXT50", tick("NIFTYNXT50"))  # prefix, but not exact
    pub.publish("md.tick.NFO.BANKNIFTY", tick("BANKNIFTY"))
    pub.publish("md.tick.NFO.NIFTY", tick("NIFTY", 2.5))
    assert sub.sock.poll(1000)
    topic, msg = sub.recv()
    assert topic == "md.tick.NFO.NIFTY"
    assert isinstance(msg, wire.Tick) and msg.ltp == 2.5
    assert msg.src == "feed" and msg.seq == 1 and msg.ts > 0
    assert not sub.sock.poll(100)  # nothing else got through the filter


def test_thousands_of_subscriptions_made_at_once_are_all_kept(
    ctx: zmq.Context, tmp_path: Path
) -> None:
    """A desk's engine subscribes to a tick and a bar topic for each of 2,000 instruments
    in one go, its publishers already connected: every one reaches them (ZeroMQ's default
    send high-water mark dropped all but the first 1,000)."""
    pub = Publisher(ctx, ep(tmp_path, "p"), "feed")
    sub = Subscriber(ctx, [ep(tmp_path, "p")], ["sys."])
    sync(pub, sub, "sys.status.feed")  # connected before the burst, as a running engine is
    symbols = [f"S{i:04d}" for i in range(2000)]
    for s in symbols:
        sub.subscribe(wire.exact(wire.tick_topic("NFO", s)))
        sub.subscribe(wire.exact(wire.bar_topic("1m", "NFO", s)))
    last = symbols[-1]
    for _ in range(500):  # until the last subscription is live at the publisher
        pub.publish(wire.tick_topic("NFO", last), tick(last))
        if sub.sock.poll(10):
            break
    while sub.sock.poll(50):
        sub.recv()
    for i, s in enumerate(symbols):
        pub.publish(wire.tick_topic("NFO", s), tick(s))
        if i % 200 == 0:
            time.sleep(0.01)  # within the publisher's own high-water mark
    got: set[str] = set()
    while sub.sock.poll(500):
        _, m = sub.recv()
        assert isinstance(m, wire.Tick)
        got.add(m.symbol)
    assert got == set(symbols)


def test_sequence_gap_is_detected_and_counted(ctx: zmq.Context, tmp_path: Path) -> None:
    pub = Publisher(ctx, ep(tmp_path, "p"), "feed")
    sub = Subscriber(ctx, [ep(tmp_path, "p")], ["sync", "md."])
    sync(pub, sub, "sync")
    pub.publish("md.a", tick())
    pub._seq["md.a"] += 3  # three messages lost on the way
    pub.publish("md.a", tick())
    pub.publish("md.b", tick())  # another topic has its own numbering: no gap
    got = []
    while sub.sock.poll(300):
        got.append(sub.recv()[1].seq)
    assert got == [1, 5, 1]
    assert sub.seq.gaps == 3


def test_sequence_tracker_restart_is_not_a_gap() -> None:
    t = SequenceTracker()
    assert [t.check("a", "x", s) for s in (1, 2, 3, 1, 2, 4)] == [0, 0, 0, 0, 0, 1]
    assert t.restarts == 1 and t.gaps == 1


def test_garbage_frame_is_refused_and_the_stream_continues(
    ctx: zmq.Context, tmp_path: Path
) -> None:
    raw = ctx.socket(zmq.PUB)
    bind(raw, ep(tmp_path, "raw"))
    sub = Subscriber(ctx, [ep(tmp_path, "raw")], [""])
    for _ in range(500):
        raw.send(wire.encode("sync", tick()))
        if sub.sock.poll(10):
            break
    while sub.sock.poll(20):
        sub.recv()
    raw.send(b"md.tick.X \x00\x01garbage")
    raw.send(wire.encode("md.tick.X", tick(ltp=7.0)))
    assert sub.sock.poll(1000)
    with pytest.raises(wire.WireError) as err:
        sub.recv()
    assert err.value.topic == "md.tick.X"
    assert sub.sock.poll(1000)
    _, msg = sub.recv()
    assert isinstance(msg, wire.Tick) and msg.ltp == 7.0
    raw.close(0)


def test_push_pull_delivers_in_order(ctx: zmq.Context, tmp_path: Path) -> None:
    pull = Puller(ctx, ep(tmp_path, "pipe"))
    push = Pusher(ctx, ep(tmp_path, "pipe"), "engine", "intent")
    sent = 0
    for i in range(50):
        cmd = wire.Command(command="kill_switch", value="on", reason=str(i))
        while not push.send(cmd):  # IMMEDIATE: refused until the connection is up
            pull.sock.poll(5)
        sent += 1
    got = []
    while len(got) < sent and pull.sock.poll(1000):
        got.append(pull.recv()[1])
    assert [int(m.reason) for m in got] == list(range(50))  # type: ignore[attr-defined]
    assert [m.seq for m in got] == list(range(1, 51))
    assert pull.seq.gaps == 0
    push.close()


def test_push_without_a_peer_refuses_instead_of_queueing(ctx: zmq.Context, tmp_path: Path) -> None:
    push = Pusher(ctx, ep(tmp_path, "nobody"), "engine", "intent")
    assert push.send(wire.Command(command="kill_switch", value="on")) is False
    assert push.sent == 0
    push.sock.close(0)


def test_asker_answers_in_order_one_per_tag_and_gives_up_on_a_silent_peer(
    ctx: zmq.Context, tmp_path: Path
) -> None:
    """Risk's questions to the router: never waited for; each answer to its question;
    a peer that stops answering costs a timeout, not a wedged socket."""
    from mytrading.messaging.bus import Asker

    endpoint = ep(tmp_path, "rpc")
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind(endpoint)
    got: list[tuple[object, object]] = []
    asker = Asker(ctx, endpoint, lambda tag, reply: got.append((tag, reply)), timeout_s=0.3)

    def serve(n: int) -> None:
        for _ in range(n):
            assert rep.poll(2000)
            q = wire.decode_body(rep.recv())
            assert isinstance(q, wire.BrokerQuery)
            rep.send(wire.encode_body(wire.BrokerReply(ok=True, error=q.account)))

    def ask_soon(tag: str) -> None:
        """Ask once the socket has connected (until then it refuses, never queues)."""
        q = wire.BrokerQuery(kind="funds", account=tag)
        deadline = time.monotonic() + 5
        while not asker.ask(tag, q):
            assert time.monotonic() < deadline and not asker.in_flight(tag)
            time.sleep(0.02)

    def drain() -> None:
        while asker.pending and asker.sock.poll(2000):
            asker.readable()

    ask_soon("a")
    assert asker.ask("b", wire.BrokerQuery(kind="funds", account="b"))
    assert not asker.ask("a", wire.BrokerQuery(kind="funds", account="a"))  # in flight
    serve(2)
    drain()
    assert [(t, r.error) for t, r in got] == [("a", "a"), ("b", "b")]  # type: ignore[attr-defined]
    got.clear()
    assert asker.ask("c", wire.BrokerQuery(kind="funds", account="c"))
    rep.recv()  # read, never answered: the peer dies with the question
    rep.close(0)
    assert asker.expire() is None  # not yet
    time.sleep(0.35)
    old = asker.expire()
    assert old is not None and old is not asker.sock and got == [("c", None)]
    old.close(0)
    assert asker.timeouts == 1 and not asker.pending
    q = wire.BrokerQuery(kind="funds", account="d")
    assert not asker.ask("d", q)  # nobody to ask: refused at once, not queued
    rep = ctx.socket(zmq.REP)  # the peer comes back (a restarted router)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind(endpoint)
    got.clear()
    ask_soon("d")  # the fresh socket connects to the new peer
    serve(1)
    drain()
    assert [(t, r.error) for t, r in got] == [("d", "d")]  # type: ignore[attr-defined]
    asker.close()
    rep.close(0)
