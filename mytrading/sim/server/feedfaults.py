"""The simulator's feed as late and as messy as a broker's (``MT_SIM_FEED_*``).

A real OpenAlgo feed is never on time. The broker stamps a tick with the exchange's or
its own time, the proxy and the network add delay that varies tick by tick, a busy
server holds ticks back and then sends them in a burst, an illiquid contract's
``timestamp`` is its last trade's while its quotes move, and the broker's clock is not
ours. Each of those is a setting here, so that the demo and the process tests meet them
and not a feed stamped by our own clock and delivered at once. Every figure is in market
seconds (the simulator's clock runs ``MT_SIM_SPEED`` times the wall's: at 30, a 2 s delay
is held 67 ms of wall time), and every draw comes from ``MT_SIM_FEED_SEED``.

================================  =========================================================
``MT_SIM_FEED_DELAY_S``           every tick's delivery delay (default 0.25: a broker's
                                  proxy and a network, so the default always exercises it)
``MT_SIM_FEED_JITTER_S``          plus a uniform draw up to this (default 0.25), drawn
                                  per step of the market: ticks that leave together
                                  arrive together
``MT_SIM_FEED_REORDER``           share of ticks held past the instrument's next one (out
                                  of order, as a proxy's fan-out threads deliver them)
``MT_SIM_FEED_STALL_EVERY_S``     a stall this often (0: none), from the server's start
``MT_SIM_FEED_STALL_S``           each stall holds every tick this long, then sends what it
                                  held in one burst, in order
``MT_SIM_FEED_ILLIQUID``          share of contracts (options and futures, picked by a hash
                                  of the name) that trade now and then (one tick in five):
                                  between trades their price, volume and ``timestamp`` stay
                                  the last trade's while bid and ask move
``MT_SIM_FEED_CLOCK_OFFSET_S``    the broker's clock less ours: every tick's stamp and the
                                  ``pong``'s ``server_timestamp`` are that far off
                                  (negative: behind)
================================  =========================================================
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from msgspec.structs import replace

from mytrading.messaging import wire

if TYPE_CHECKING:
    from mytrading.settings import SimSettings

ILLIQUID_TRADE_SHARE = 0.2  # an illiquid contract trades on one tick in five


@dataclass
class FeedPlan:
    delay_s: float = 0.0
    jitter_s: float = 0.0
    reorder: float = 0.0
    stall_every_s: float = 0.0
    stall_s: float = 0.0
    illiquid: float = 0.0
    clock_offset_s: float = 0.0
    seed: int = 0
    speed: float = 1.0  # market seconds per wall second
    tick_gap_s: float = 0.25  # market seconds between one instrument's ticks
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    # an illiquid contract's last trade: (stamp ns, ltp, volume)
    _traded: dict[tuple[str, str], tuple[int, float, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @classmethod
    def from_settings(cls, sim: SimSettings) -> FeedPlan:
        return cls(
            delay_s=sim.feed_delay_s,
            jitter_s=sim.feed_jitter_s,
            reorder=sim.feed_reorder,
            stall_every_s=sim.feed_stall_every_s,
            stall_s=sim.feed_stall_s,
            illiquid=sim.feed_illiquid,
            clock_offset_s=sim.feed_clock_offset_s,
            seed=sim.feed_seed,
            speed=sim.speed,
            tick_gap_s=sim.speed / sim.tick_hz,
        )

    @property
    def immediate(self) -> bool:
        """Nothing held back: ticks go out as the market makes them."""
        return not (self.delay_s or self.jitter_s or self.reorder or self.stall_every_s)

    @property
    def restamps(self) -> bool:
        """Some tick's stamp or trade is changed (a clock offset, illiquid contracts)."""
        return bool(self.clock_offset_s or self.illiquid)

    def is_illiquid(self, symbol: str) -> bool:
        if not self.illiquid or not symbol.endswith(("CE", "PE", "FUT")):
            return False
        return zlib.crc32(symbol.encode()) % 10_000 < self.illiquid * 10_000

    def stamp(self, t: wire.Tick) -> wire.Tick:
        """The tick as the broker stamps it: its clock's offset, and an illiquid
        contract's last trade kept between its trades."""
        if self.illiquid and self.is_illiquid(t.symbol):
            key = (t.exchange, t.symbol)
            last = self._traded.get(key)
            if last is None or self.rng.random() < ILLIQUID_TRADE_SHARE:
                last = self._traded[key] = (t.exch_ns, t.ltp, t.volume)
            t = replace(t, exch_ns=last[0], ltp=last[1], volume=last[2])
        if self.clock_offset_s:
            t = replace(t, exch_ns=t.exch_ns + int(self.clock_offset_s * 1e9))
        return t

    def batch_delay_wall_s(self, since_start_s: float) -> float:
        """How long (wall seconds) one step's ticks are held, ``since_start_s`` wall
        seconds after the server started: the delay, the jitter (drawn per step: ticks
        that leave the broker together arrive together), a stall."""
        d = self.delay_s
        if self.jitter_s:
            d += self.rng.random() * self.jitter_s
        wall = d / self.speed
        if self.stall_every_s and self.stall_s:
            market = since_start_s * self.speed
            into = market % self.stall_every_s
            if market >= self.stall_every_s and into < self.stall_s:  # in a stall
                wall = max(wall, (self.stall_s - into) / self.speed)
        return wall

    def reordered(self, n: int) -> list[int]:
        """Which of a step's ``n`` ticks are held past their instrument's next tick."""
        if not self.reorder:
            return []
        return [i for i in range(n) if self.rng.random() < self.reorder]

    def reorder_wall_s(self) -> float:
        """The extra hold of a reordered tick: one to two of its instrument's tick gaps."""
        return self.tick_gap_s * (1.0 + self.rng.random()) / self.speed

    def pong_ms(self, wall_ms: float) -> int:
        return int(wall_ms + self.clock_offset_s * 1000)
