"""The bounded queue in front of a pipe, over real sockets."""

from __future__ import annotations

import time
from pathlib import Path

import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Puller, Pusher
from mytrading.messaging.outbox import Outbox


def cmd(i: int) -> wire.Command:
    return wire.Command(command="kill_switch", value="on", reason=str(i))


def test_waits_while_peer_is_down_then_delivers_in_order(tmp_path: Path) -> None:
    ctx = zmq.Context()
    ep = f"ipc://{tmp_path}/pipe.sock"
    expired: list[tuple[str, str]] = []
    up = {"peer": False}
    box: Outbox[wire.Command] = Outbox(
        Pusher(ctx, ep, "engine", "intent"),
        lambda: up["peer"],
        5.0,
        lambda m, why: expired.append((m.reason, why)),
        lambda: "risk daemon unavailable",
        3,
    )
    assert box.put(cmd(1)) and box.put(cmd(2)) and box.put(cmd(3))
    assert not box.put(cmd(4))  # full: refused at once, nothing queued
    assert len(box) == 3
    pull = Puller(ctx, ep)
    up["peer"] = True
    deadline = time.monotonic() + 5
    while len(box) and time.monotonic() < deadline:
        box.flush()
        time.sleep(0.01)
    got = []
    while len(got) < 3 and pull.sock.poll(1000):
        got.append(pull.recv()[1].reason)  # type: ignore[attr-defined]
    assert got == ["1", "2", "3"] and expired == []
    ctx.destroy(linger=0)


def test_expires_with_the_reason_after_the_wait(tmp_path: Path) -> None:
    ctx = zmq.Context()
    expired: list[tuple[str, str]] = []
    box: Outbox[wire.Command] = Outbox(
        Pusher(ctx, f"ipc://{tmp_path}/none.sock", "risk", "order"),
        lambda: False,
        0.05,
        lambda m, why: expired.append((m.reason, why)),
        lambda: "router unavailable",
    )
    box.put(cmd(1))
    box.flush()
    assert expired == [] and len(box) == 1
    time.sleep(0.06)
    box.flush()
    assert expired == [("1", "router unavailable for 0.05s")] and len(box) == 0
    ctx.destroy(linger=0)
