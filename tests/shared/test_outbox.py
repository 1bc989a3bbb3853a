"""The bounded queue in front of a pipe, over real sockets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import zmq

from mytrading.messaging import wire
from mytrading.messaging.bus import Puller, Pusher
from mytrading.messaging.outbox import Outbox


def cmd(i: int) -> wire.Command:
    return wire.Command(command="kill_switch", value="on", reason=str(i))


def waiting_box(
    pusher: Pusher, up: dict[str, bool], expired: list[tuple[str, str]], **kw: Any
) -> Outbox[wire.Command]:
    """An outbox whose peer is up when ``up["peer"]``, waiting 5 s; what expires is kept
    in ``expired`` as (reason, why)."""
    return Outbox(
        pusher,
        lambda: up["peer"],
        5.0,
        lambda m, why: expired.append((m.reason, why)),
        lambda: "peer unavailable",
        **kw,
    )


def drained(box: Outbox[wire.Command], pull: Puller, n: int) -> list[str]:
    """Flush until the box is empty (the peer is up), then the first ``n`` commands the
    peer read (their reasons)."""
    deadline = time.monotonic() + 5
    while len(box) and time.monotonic() < deadline:
        box.flush()
        time.sleep(0.01)
    got = []
    while len(got) < n and pull.sock.poll(1000):
        got.append(pull.recv()[1].reason)  # type: ignore[attr-defined]
    return got


def test_waits_while_peer_is_down_then_delivers_in_order(tmp_path: Path) -> None:
    ctx = zmq.Context()
    ep = f"ipc://{tmp_path}/pipe.sock"
    expired: list[tuple[str, str]] = []
    up = {"peer": False}
    box = waiting_box(Pusher(ctx, ep, "engine", "intent"), up, expired, capacity=3)
    assert box.put(cmd(1)) and box.put(cmd(2)) and box.put(cmd(3))
    assert not box.put(cmd(4))  # full: refused at once, nothing queued
    assert len(box) == 3
    pull = Puller(ctx, ep)
    up["peer"] = True
    assert drained(box, pull, 3) == ["1", "2", "3"] and expired == []
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


def test_a_retry_is_armed_only_while_something_waits() -> None:
    """No fixed timer: a message that could not go arms one retry (the daemon's
    ``after``); the retry re-arms while it still waits and stops once it went."""

    class Pipe:
        sent: list[str] = []

        def send(self, msg: wire.Msg) -> bool:
            self.sent.append(msg.reason)  # type: ignore[attr-defined]
            return True

    up = {"peer": False}
    armed: list[tuple[float, object]] = []
    box: Outbox[wire.Command] = Outbox(
        Pipe(),  # type: ignore[arg-type]
        lambda: up["peer"],
        60.0,
        lambda m, why: None,
        lambda: "down",
        retry_in=lambda s, fn: armed.append((s, fn)),
    )
    box.put(cmd(1))
    box.put(cmd(2))
    assert len(armed) == 1 and armed[0][0] == 0.02  # one retry for both
    fn = armed.pop()[1]
    fn()  # type: ignore[operator]  # still down: armed again
    assert len(armed) == 1 and len(box) == 2
    up["peer"] = True
    armed.pop()[1]()  # type: ignore[operator]
    assert Pipe.sent == ["1", "2"] and not armed and len(box) == 0
    box.put(cmd(3))  # goes at once: nothing armed
    assert Pipe.sent == ["1", "2", "3"] and not armed


def test_a_message_stale_by_the_time_the_peer_is_back_is_handed_back_not_sent(
    tmp_path: Path,
) -> None:
    """What waited for the peer is asked, as it goes, whether it is still wanted (risk:
    an entry whose book halted meanwhile); one that is not goes to ``on_expired`` with
    the reason, the rest go out in order. One already stale when put is what the sender
    meant: it goes."""
    ctx = zmq.Context()
    ep = f"ipc://{tmp_path}/pipe.sock"
    expired: list[tuple[str, str]] = []
    up = {"peer": False}
    halted: set[str] = set()
    box = waiting_box(
        Pusher(ctx, ep, "risk", "order"),
        up,
        expired,
        stale=lambda m: "halted meanwhile" if m.reason in halted else None,
    )
    halted.add("0")
    box.put(cmd(0))  # stale already when put: what the sender meant, it goes
    box.put(cmd(1))
    box.put(cmd(2))
    halted.add("1")
    pull = Puller(ctx, ep)
    up["peer"] = True
    assert drained(box, pull, 2) == ["0", "2"]
    assert not pull.sock.poll(100)
    assert expired == [("1", "halted meanwhile")]
    ctx.destroy(linger=0)


def test_a_message_put_behind_waiting_ones_never_overtakes_them_and_every_sent_one_is_kept() -> (
    None
):
    """A put finding the queue empty and the peer up goes at once; one finding others still
    waiting (the peer back, their retry not yet run) goes after them. Either way a keyed
    message is remembered until answered, so a restarted peer gets it again."""

    class Pipe:
        def __init__(self) -> None:
            self.sent: list[str] = []

        def send(self, msg: wire.Msg) -> bool:
            self.sent.append(msg.reason)  # type: ignore[attr-defined]
            return True

    pipe = Pipe()
    up = {"peer": False}
    box: Outbox[wire.Command] = Outbox(
        pipe,  # type: ignore[arg-type]
        lambda: up["peer"],
        60.0,
        lambda m, why: None,
        lambda: "down",
        key=lambda m: m.reason,
        retry_in=lambda s, fn: None,  # the retry never runs: the next put must flush
    )
    box.put(cmd(1))
    box.put(cmd(2))
    assert pipe.sent == [] and len(box) == 2
    up["peer"] = True
    box.put(cmd(3))
    assert pipe.sent == ["1", "2", "3"] and len(box) == 0
    box.put(cmd(4))  # nothing waits: out at once
    assert pipe.sent == ["1", "2", "3", "4"]
    assert [m.reason for m in box.unacked_messages()] == ["1", "2", "3", "4"]
    box.ack("2")
    assert box.redeliver() == 3 and pipe.sent[4:] == ["1", "3", "4"]
