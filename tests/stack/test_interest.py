"""The feed subscribes what the daemons declare: the union of their sets, each instrument
at the highest mode asked, kept across a feed restart, lapsing for a daemon that died;
the WebSocket client subscribes and unsubscribes as the set changes, depth included."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from mytrading.domain.refdata import RefData
from mytrading.messaging import wire
from mytrading.messaging.interest import Declarer, Interests, entry
from mytrading.openalgo.ws import FeedClient
from tests.simhelpers import FUT, KEY, WS_URL, start_server

pytestmark = pytest.mark.integration  # real processes or servers

SPOT = ("NSE_INDEX", "NIFTY")


def test_the_union_at_the_highest_mode_and_bad_entries_refused(
    refdata: RefData, tmp_path: Path
) -> None:
    base = {SPOT: 2}
    ints = Interests(refdata, base, tmp_path / "interest.json", ttl_s=30)
    assert ints.wanted() == base
    assert ints.update("engine", [entry("NFO", FUT, 2)], now=0.0)
    assert not ints.update("engine", [entry("NFO", FUT, 2)], now=1.0)  # no change
    assert ints.update("risk", [entry("NFO", FUT, 3), "NSE_INDEX:NIFTY:ltp"], now=1.0)
    assert ints.wanted() == {SPOT: 2, ("NFO", FUT): 3}  # depth wins; the base's quote stays
    bad = ["NFO:NOPE26FUT:quote", "NFO:" + FUT, "NFO:" + FUT + ":tick", "garbage"]
    assert not ints.update("signals", bad, now=1.0)
    assert ints.refused == 4
    # the engine dies: its set lapses after the TTL, risk's stays while it declares
    assert ints.update("engine", [entry("NFO", FUT), entry("NSE", "SBIN")], now=2.0)
    assert ("NSE", "SBIN") in ints.wanted()
    ints.update("risk", [entry("NFO", FUT, 3)], now=40.0)
    assert ints.expire(now=40.0)
    assert sorted(ints.by_src) == ["risk"] and ("NSE", "SBIN") not in ints.wanted()
    # a restarted feed reads the last sets back: subscribed at once
    again = Interests(refdata, base, tmp_path / "interest.json")
    assert again.load() == 1 and again.wanted() == ints.wanted()
    (tmp_path / "interest.json").write_text("{not json")
    broken = Interests(refdata, base, tmp_path / "interest.json")
    assert broken.load() == 0 and broken.wanted() == base  # said, then waits for declarations


def test_a_declarer_sends_on_change_and_every_few_seconds() -> None:
    sent: list[wire.Interest] = []
    d = Declarer(sent.append, every_s=0.2)
    d.declare(["b", "a"])
    d.declare(["a", "b"])  # the same set: not sent again yet
    assert [m.wants for m in sent] == [["a", "b"]]
    d.declare(["a"])
    assert [m.wants for m in sent] == [["a", "b"], ["a"]]
    time.sleep(0.25)
    d.declare(["a"])  # unchanged, but due: a restarted feed hears it
    assert len(sent) == 3


@pytest.fixture
def server(tmp_env: dict[str, str]):
    proc, host = start_server(tmp_env, MT_SIM_UNDERLYINGS="NIFTY", MT_SIM_STRIKES="0")
    yield host
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_the_client_follows_the_wanted_set_with_depth(server: str) -> None:
    woke = threading.Event()
    client = FeedClient(WS_URL[server], KEY, [], wake=woke.set)
    client.start()
    got: list[wire.Tick | wire.Depth] = []

    def drain(seconds: float) -> list[wire.Tick | wire.Depth]:
        start = len(got)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if woke.wait(0.05):
                woke.clear()
                got.extend(client.take())
        return got[start:]

    try:
        deadline = time.monotonic() + 10
        while not client.authenticated and time.monotonic() < deadline:
            drain(0.1)
        assert client.authenticated and not drain(0.6)  # nothing asked, nothing sent
        client.set_wanted({SPOT: 2, ("NFO", FUT): 3})
        seen = drain(1.5)
        ticks = {(t.exchange, t.symbol) for t in seen if isinstance(t, wire.Tick)}
        depth = [d for d in seen if isinstance(d, wire.Depth)]
        assert ticks == {SPOT, ("NFO", FUT)}
        assert depth and {d.symbol for d in depth} == {FUT}  # depth only where asked
        d = depth[-1]
        assert len(d.bids) == len(d.asks) == 5 and d.bids[0] < d.asks[0]
        assert d.bids == sorted(d.bids, reverse=True) and d.asks == sorted(d.asks)
        client.set_wanted({SPOT: 2})  # the future is no longer wanted: unsubscribed
        drain(0.5)  # what was in flight
        later = drain(1.0)
        assert later and {(t.exchange, t.symbol) for t in later} == {SPOT}
    finally:
        client.stop()
