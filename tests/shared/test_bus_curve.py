"""The tcp bus with CURVE: who may connect where, frames too large, keys on disk."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

import pytest
import zmq

from mytrading.messaging.bus import PIPE_MAX_MSG
from mytrading.messaging.curve import (
    ALLOWED,
    KEY_NAMES,
    BusKeyError,
    CurveBus,
    check_keys,
    init_keys,
    load_ring,
)
from tests.simhelpers import free_port

pytestmark = pytest.mark.integration  # real processes or servers


def _bus(keys: Path, me: str, names: dict[str, str]) -> CurveBus:
    return CurveBus(load_ring(keys, me), names, lambda *_a, **_k: None)


def test_keys_are_private_and_checked(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    files = init_keys(keys)
    assert len(files) == 2 * len(KEY_NAMES)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    with pytest.raises(BusKeyError, match="already holds keys"):
        init_keys(keys)
    assert check_keys(keys, ("router", "cli")) == []
    os.chmod(keys / "router.key_secret", 0o644)
    assert any("must be 0600" in p for p in check_keys(keys, ("router",)))
    os.chmod(keys / "router.key_secret", 0o600)
    (keys / "engine.key_secret").unlink()
    assert any("cannot run 'engine'" in p for p in check_keys(keys, ("engine",)))
    (keys / "feed.key").write_text("junk")
    assert any("feed.key" in p for p in check_keys(keys, ("router",)))


def test_zap_admits_only_the_stack_keys_each_where_it_belongs(tmp_path: Path) -> None:
    """The router's order pipe over CURVE: risk's key delivers; an outsider's pair, no
    CURVE at all, and the engine's key (a stack key, but not risk's) deliver nothing; a
    frame over the pipe's size limit from risk is dropped and the next one arrives."""
    keys = tmp_path / "keys"
    init_keys(keys)
    ep = f"tcp://127.0.0.1:{free_port()}"
    names = {ep: "pipe.orders"}
    assert ALLOWED["pipe.orders"] == frozenset({"risk"})
    ctx = zmq.Context()
    router = _bus(keys, "router", names)
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.MAXMSGSIZE, PIPE_MAX_MSG)
    pull.setsockopt(zmq.LINGER, 0)
    router.server(pull, ep)
    pull.bind(ep)

    def pusher(who: str) -> zmq.Socket:
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 0)
        if who == "outsider":
            s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
            s.curve_serverkey = router.ring.public
        elif who != "plain":
            _bus(keys, who, names).client(s, ep)
        s.connect(ep)
        return s

    def got(within: float) -> list[bytes]:
        out = []
        end = time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            if pull.poll(int(left * 1000) + 1):
                out.append(pull.recv())
        return out

    try:
        for who in ("outsider", "plain", "engine", "cli"):
            s = pusher(who)
            # A refused handshake ends the client's session and its pipe: if that
            # happens before this line, the socket has no peer and the send cannot be
            # queued (EAGAIN). Either way nothing may arrive, which is what is checked.
            with contextlib.suppress(zmq.Again):
                s.send(f"from {who}".encode(), zmq.NOBLOCK)
            assert got(0.6) == [], who
            s.close(0)
        assert router.admit.refused >= 3  # outsider, engine, cli (plain fails the handshake)
        risk = pusher("risk")
        risk.send(b"from risk")
        assert got(2.0) == [b"from risk"]
        risk.send(b"\x00" * (PIPE_MAX_MSG + 1))  # dropped, with the connection
        assert got(0.6) == []
        risk.send(b"after")  # the pusher reconnects by itself
        assert got(3.0) == [b"after"]
    finally:
        router.stop(ctx)
        ctx.destroy(linger=0)


def test_a_wide_bus_without_curve_is_refused(tmp_env: dict[str, str]) -> None:
    from mytrading.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="without CURVE"):
        load_settings(bus_transport="tcp", bus_host="10.1.2.3", bus_curve=False)
    with pytest.raises(ConfigError, match="without CURVE"):
        load_settings(
            bus_transport="tcp",
            bus_curve=False,
            bus_endpoints={"pub.engine": "tcp://192.168.1.9:7101"},
        )
    s = load_settings(bus_transport="tcp", bus_curve=False)  # loopback: allowed, said
    assert not s.bus.curve_on()
    assert load_settings(bus_transport="tcp", bus_host="10.1.2.3").bus.curve_on()
    with pytest.raises(ConfigError, match="MT_BUS_HOST: 'bad host' is not a host name"):
        load_settings(bus_host="bad host")
