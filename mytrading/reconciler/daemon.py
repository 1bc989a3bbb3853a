"""The reconciler: compares the positions our fills imply with the broker's position book.

It subscribes to fills first, then takes the fills it missed as a snapshot from the
router (late joiner: snapshot plus sequenced updates, de-duplicated by ``fill_no``).
Every ``MT_RECON_INTERVAL_S`` it asks for the broker's position book together with the
router's latest ``fill_no``, fetches any fill it has not seen up to that number (so a fill
still in flight on the bus cannot look like a mismatch), and compares net quantities per
(exchange, symbol, product). A difference is logged and published as a ``ReconEvent``
naming both sides. The broker is the truth, but no strategy made the difference: it is
labelled *external* (a position opened by hand or by another tool), kept apart from
every strategy's books, and counted in later comparisons, so it is reported once.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from mytrading import bus, wire
from mytrading.daemon import Daemon, Peer
from mytrading.positions import Ledger
from mytrading.refdata import IST


class ReconcilerDaemon(Daemon):
    name = "reconciler"
    required_peers = ("router",)
    sub_prefixes = ("exec.fill.",)

    def setup(self) -> None:
        self.ledger = Ledger()  # (exchange, symbol, product) -> what our fills say
        self.external: dict[tuple[str, str, str], int] = {}  # the broker's rest, no strategy's
        self.seen_fill_no = 0
        self.checks = 0
        self.mismatches = 0
        self.last_check = ""
        self.last_result = "not yet run"
        self.synced = False
        self.every(self.settings.recon_interval(), self.reconcile)

    def on_peer_change(self, peer: Peer) -> None:
        if peer.name == "router" and peer.up and not self.synced:
            self.synced = self._catch_up(10**18)

    def on_message(self, topic: str, msg: wire.Msg) -> None:
        if isinstance(msg, wire.Fill):
            self._apply(msg)

    def _apply(self, f: wire.Fill) -> None:
        if f.fill_no <= self.seen_fill_no:
            return  # already applied (snapshot and stream overlap)
        # A hole: fetch the missing fills before applying this one, in order.
        if f.fill_no != self.seen_fill_no + 1 and not self._catch_up(f.fill_no - 1):
            self.count_error("missing fills could not be fetched", want=f.fill_no)
        if f.fill_no <= self.seen_fill_no:
            return
        signed = f.quantity if f.action == "BUY" else -f.quantity
        self.ledger.apply((f.exchange, f.symbol, f.product), signed, f.price)
        self.seen_fill_no = f.fill_no

    def _catch_up(self, upto: int) -> bool:
        reply = bus.request(
            self.ctx,
            self.endpoints["rpc.router"],
            wire.BrokerQuery(kind="fills", since_fill_no=self.seen_fill_no),
        )
        if not isinstance(reply, wire.BrokerReply) or not reply.ok:
            return False
        if reply.last_fill_no < self.seen_fill_no:
            # The router restarted and numbers from 1 again; its book is the truth now.
            self.log.warning(
                "router fill numbers restarted", ours=self.seen_fill_no, router=reply.last_fill_no
            )
            self.seen_fill_no = 0
            self.ledger = Ledger()
            return self._catch_up(upto)
        for f in reply.fills:
            if self.seen_fill_no < f.fill_no <= upto and f.fill_no == self.seen_fill_no + 1:
                self.ledger.apply(
                    (f.exchange, f.symbol, f.product),
                    f.quantity if f.action == "BUY" else -f.quantity,
                    f.price,
                )
                self.seen_fill_no = f.fill_no
        return True

    def reconcile(self) -> None:
        if not self.peer_up("router"):
            self.last_result = "skipped: router down"
            return
        t0 = time.monotonic()
        reply = bus.request(
            self.ctx, self.endpoints["rpc.router"], wire.BrokerQuery(kind="positions")
        )
        if not isinstance(reply, wire.BrokerReply) or not reply.ok:
            self.count_error("position book query failed", reply=getattr(reply, "error", "timeout"))
            self.last_result = "failed: no position book"
            return
        if self.seen_fill_no < reply.last_fill_no and not self._catch_up(reply.last_fill_no):
            self.count_error("could not fetch fills before reconciling")
            return
        broker = {(p.exchange, p.symbol, p.product): p for p in reply.positions}
        ours = self.ledger.net()
        found = 0
        for key in sorted(set(broker) | set(ours) | set(self.external)):
            b = broker[key].quantity if key in broker else 0
            o = ours.get(key, 0)
            if b == o + self.external.get(key, 0):
                continue
            found += 1
            ex, sym, prod = key  # type: ignore[misc]
            self.log.error(
                "position mismatch", exchange=ex, symbol=sym, product=prod, ours=o, broker=b
            )
            self.pub.publish(
                "recon.mismatch",
                wire.ReconEvent(
                    exchange=ex, symbol=sym, product=prod, ours=o, broker=b, action="external"
                ),
            )
            # The broker is the truth, but no strategy made the difference: it is held as
            # an external position (by hand, another tool) and never adopted by a strategy.
            self.external[key] = b - o
            if not self.external[key]:
                del self.external[key]
        self.checks += 1
        self.mismatches += found
        self.last_check = datetime.now(IST).strftime("%H:%M:%S")
        self.last_result = f"{found} mismatches over {len(set(broker) | set(ours))} positions"
        self.record_latency_ns(int((time.monotonic() - t0) * 1e9))
        self.log.info(
            "reconciled", mismatches=found, positions=len(broker), fills=self.seen_fill_no
        )

    def detail(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "mismatches": self.mismatches,
            "fills_seen": self.seen_fill_no,
            "last_check": self.last_check,
            "last_result": self.last_result,
            "external": {f"{k[0]}:{k[1]}:{k[2]}": q for k, q in self.external.items()},
        }
