"""Catching up after a restart: the positions every strategy holds, from the router.

A daemon that restarts (engine, risk) has lost the positions it built from fills. Before
it serves anything it asks the router for its per-strategy books and the router-wide
number of the last fill in them; fills it then receives with a number at or below that one
are already in the snapshot and are skipped, so none counts twice and none is missed.
The snapshot also holds every order not yet final (``working``), so a restarted engine
knows what its strategies have working (``target_position`` counts it) and risk counts
it against the caps. The router rebuilds its own books from its journal.
"""

from __future__ import annotations

from dataclasses import dataclass

import zmq

from mytrading import bus, wire


@dataclass(frozen=True)
class Snapshot:
    positions: list[wire.PositionSnapshot]
    last_fill_no: int
    working: list[wire.WorkingOrder]
    # (account, exchange, symbol, product) the broker did not confirm at the router's
    # start: left out of ``positions`` and of the fills a reader replays; nothing acts on
    # them (the reconciler reports them)
    unconfirmed: frozenset[tuple[str, ...]] = frozenset()

    def confirmed(self, f: wire.Fill) -> bool:
        """A fill of a position the broker confirmed (one to replay)."""
        return (f.account, f.exchange, f.symbol, f.product) not in self.unconfirmed


@dataclass(frozen=True)
class Day:
    """Every order of the day (final or not, with the engine's links) and every fill up to
    a snapshot: what a restarted engine needs to finish the duties of the one that died."""

    orders: list[wire.WorkingOrder]
    fills: list[wire.Fill]


def fetch_fills(
    ctx: zmq.Context, endpoint: str, upto: int, timeout_ms: int = 2000
) -> list[wire.Fill] | None:
    """The day's fills numbered up to ``upto`` (a snapshot's), or None."""
    reply = bus.request(ctx, endpoint, wire.BrokerQuery(kind="fills"), timeout_ms)
    if not isinstance(reply, wire.BrokerReply) or not reply.ok:
        return None
    return [f for f in reply.fills if f.fill_no <= upto]


def fetch_day(ctx: zmq.Context, endpoint: str, upto: int, timeout_ms: int = 2000) -> Day | None:
    """The day's orders and the fills numbered up to ``upto``, or None."""
    orders = bus.request(ctx, endpoint, wire.BrokerQuery(kind="orders"), timeout_ms)
    if not isinstance(orders, wire.BrokerReply) or not orders.ok:
        return None
    fills = fetch_fills(ctx, endpoint, upto, timeout_ms)
    return None if fills is None else Day(orders.working, fills)


def fetch_snapshot(
    ctx: zmq.Context, endpoint: str, timeout_ms: int = 2000, everything: bool = False
) -> Snapshot | None:
    """The router's per-strategy positions, or None if it does not answer in time. Those
    the broker did not confirm at the router's start are left out (named in
    ``unconfirmed``) unless ``everything`` (the reconciler compares them)."""
    reply = bus.request(ctx, endpoint, wire.BrokerQuery(kind="strategy_positions"), timeout_ms)
    if not isinstance(reply, wire.BrokerReply) or not reply.ok:
        return None
    unconfirmed = frozenset(tuple(k.split("|")) for k in reply.unconfirmed)
    positions = [
        p
        for p in reply.snapshots
        if p.quantity
        and (everything or (p.account, p.exchange, p.symbol, p.product) not in unconfirmed)
    ]
    return Snapshot(positions, reply.last_fill_no, reply.working, unconfirmed)
