"""A process outside the stack that tries what issue 25 saw work on an open tcp bus.

``python -m tests.forge --key none|outsider|<stack key name>`` (with the stack's MT_*
environment): it pushes a risk-approved order straight to the router, a command turning
the kill switch off, asks the router for funds and positions, listens to every publisher
for ``--listen`` seconds, and sends one ``--big-mb`` frame to the router's order pipe and
to risk's intent pipe. It prints one JSON line: what it read (messages, replies).

``none``: plain sockets. ``outsider``: CURVE with a key pair of its own and the servers'
public keys (public keys are public). A stack key name: CURVE with that key taken from
MT_BUS_KEYS_DIR (a stolen key: the engine's cannot reach the order pipe).
"""

from __future__ import annotations

import argparse
import json
import time

import zmq
import zmq.auth

from mytrading.messaging import wire
from mytrading.messaging.bus import DAEMONS
from mytrading.messaging.curve import OWNER, load_ring
from mytrading.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", default="outsider")
    ap.add_argument("--listen", type=float, default=2.0)
    ap.add_argument("--big-mb", type=int, default=300)
    ap.add_argument("--symbol", default="NIFTY-I")
    a = ap.parse_args()
    s = load_settings()
    eps = s.endpoints()
    ring = load_ring(s.bus.keys_dir, "cli")  # for the servers' public keys only
    if a.key == "outsider":
        mine_pub, mine_sec = zmq.curve_keypair()
    elif a.key != "none":
        own = load_ring(s.bus.keys_dir, a.key)
        mine_pub, mine_sec = own.public, own.secret
    ctx = zmq.Context()

    def sock(kind: int, name: str) -> zmq.Socket:
        so = ctx.socket(kind)
        so.setsockopt(zmq.LINGER, 0)
        if a.key != "none":
            so.curve_publickey = mine_pub
            so.curve_secretkey = mine_sec
            so.curve_serverkey = ring.publics[OWNER[name]]
        so.connect(eps[name])
        return so

    order = wire.Order(
        order_id="forged-1",
        intent_id="forged.1",
        strategy="sma_crossover",
        exchange="NFO",
        symbol=a.symbol,
        action="BUY",
        quantity=1950,
        pricetype="MARKET",
        product="NRML",
        price=0.0,
        trigger_price=0.0,
        approved_by="risk",
    )
    push_orders = sock(zmq.PUSH, "pipe.orders")
    push_cmd = sock(zmq.PUSH, "pipe.commands")
    push_intents = sock(zmq.PUSH, "pipe.intents")
    order.src = "risk"
    offer(push_orders, wire.encode("order", order))
    cmd = wire.Command(command="kill_switch", value="off", issued_by="cli:0", src="cli")
    offer(push_cmd, wire.encode("command", cmd))
    replies = 0
    for kind in ("funds", "positions"):
        req = sock(zmq.REQ, "rpc.router")
        req.send(wire.encode_body(wire.BrokerQuery(kind=kind)))  # type: ignore[arg-type]
        if req.poll(1500, zmq.POLLIN):
            req.recv()
            replies += 1
        req.close(0)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    for d in DAEMONS:
        if a.key != "none":
            sub.curve_publickey = mine_pub
            sub.curve_secretkey = mine_sec
            sub.curve_serverkey = ring.publics[d]
        sub.connect(eps.pub(d))
    big = b"\x00" * (a.big_mb << 20)
    offer(push_orders, big)
    offer(push_intents, big)
    del big
    read = 0
    end = time.monotonic() + a.listen
    while (left := end - time.monotonic()) > 0:
        if sub.poll(int(left * 1000) + 1, zmq.POLLIN):
            sub.recv()
            read += 1
    print(json.dumps({"key": a.key, "published_read": read, "replies": replies}), flush=True)
    ctx.destroy(linger=0)


def offer(so: zmq.Socket[bytes], data: bytes) -> bool:
    """Send without waiting. A peer that refused our handshake leaves no pipe to queue in
    (``Again``): the frame went nowhere, which is what the test wants to see."""
    try:
        so.send(data, zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return False
    return True


if __name__ == "__main__":
    main()
