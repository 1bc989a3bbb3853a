"""The feed's watch on time: each source's lag, and our clock's offset from the broker's.

**Lag** is a tick's arrival (our market clock when the feed takes it) less its stamp
(OpenAlgo's ``timestamp``/``ltt``: the exchange's or the broker's time), taken only from
ticks that carry a new trade (a later stamp than the instrument's last): an illiquid
contract's quotes keep its last trade's stamp while they move, and would read as minutes
of lag. Each source's lags are gathered for a minute of market time (a wall minute live;
two wall seconds at the demo's 30x) and summed up as p50, p99 and the least; the last
full minute is what ``status``, the heartbeat and ``/metrics`` show.

**The clock offset** is the broker's clock less ours, from two places:

* ticks: the least lag of the minute, negated. Delivery takes time, so this reads a
  clock as behind by at least the network's delay (tens of ms on a good line): it is an
  upper bound of "behind", and a clock seconds off shows as seconds.
* OpenAlgo's WebSocket ``ping`` (its ``pong`` carries ``server_timestamp``, epoch ms of
  the server's wall clock): the server's time less the midpoint of our send and receive.
  That is the host's wall clock against the OpenAlgo host's, which is what NTP fixes.
  As NTP does, the estimate is the latest pongs' with the shortest round trip
  (``PONGS_KEPT``): a pong held up on its way back (a congested socket) reads the clock
  off by up to half its round trip, and is outvoted by a quick one.

A clock off by seconds makes every bar late by as much and every "how old is this
quote" check wrong; the monitor's ``clock_offset`` rule says so, naming NTP.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mytrading.domain.quantiles import p50_p99

WINDOW_NS = 60 * 1_000_000_000  # a minute of market time
PONGS_KEPT = 8  # the pongs the clock offset is judged from (the quickest round trip wins)
# per source and minute; past it every other sample is kept. 20,000 bound a minute's
# percentiles (a sort, ``domain/quantiles.py``) to about 4 ms of the feed's loop: at
# 200,000 they took 45 ms once a minute (2026-11-27), and a p99 of 20,000 samples still
# rests on 200 above it
MAX_SAMPLES = 20_000


@dataclass(slots=True)
class Minute:
    """One source's lags over a finished minute (milliseconds)."""

    n: int
    p50_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float


@dataclass
class SourceLag:
    samples: array = field(default_factory=lambda: array("d"))
    stride: int = 1  # keep one sample in ``stride`` (a flood keeps memory bounded)
    seen: int = 0
    last: Minute | None = None


class TimeWatch:
    def __init__(self, window_ns: int = WINDOW_NS) -> None:
        self.window_ns = window_ns
        self.sources: dict[str, SourceLag] = {}
        self._window_start: int | None = None
        self.ping_offset_ms: float | None = None  # broker's wall clock less ours
        self.ping_rtt_ms: float | None = None
        self._pongs: deque[tuple[float, float]] = deque(maxlen=PONGS_KEPT)  # (rtt, offset)
        self.unstamped = 0  # ticks with no timestamp at all (stamped by arrival)

    def sample(self, source: str, lag_ns: int) -> None:
        """One new trade's lag, as the bar builder measured it (``BarBuilder.lag_sample``:
        arrival on our market clock less the tick's stamp, for ticks with a later stamp
        than their instrument's last)."""
        src = self.sources.get(source)
        if src is None:
            src = self.sources[source] = SourceLag()
        src.seen += 1
        if src.seen % src.stride:
            return
        src.samples.append(lag_ns / 1e6)
        if len(src.samples) >= MAX_SAMPLES:
            del src.samples[::2]
            src.stride *= 2

    def pong(self, server_ms: float, sent_ms: float, received_ms: float) -> None:
        """A ``pong``: the server's stamp against the midpoint of our round trip."""
        self._pongs.append((received_ms - sent_ms, server_ms - (sent_ms + received_ms) / 2))
        self.ping_rtt_ms, self.ping_offset_ms = min(self._pongs)

    def roll(self, now_ns: int) -> bool:
        """Close the minute (of market time, ``now_ns``) when it is over; True when it
        closed one."""
        if self._window_start is None:
            self._window_start = now_ns
            return False
        if now_ns - self._window_start < self.window_ns:
            return False
        self._window_start = now_ns
        for src in self.sources.values():
            if src.samples:
                a = src.samples
                p50, p99 = p50_p99(a)
                src.last = Minute(src.seen, p50, p99, min(a), max(a))
            else:
                src.last = None
            src.samples = array("d")
            src.stride, src.seen = 1, 0
        return True

    def offset_from_ticks_ms(self) -> float | None:
        """The broker's clock less ours from the freshest tick of the last minute (see
        the module's note: delivery makes it read behind by the network's delay)."""
        mins = [s.last.min_ms for s in self.sources.values() if s.last is not None]
        return -min(mins) if mins else None

    def worst_p99_ms(self) -> float | None:
        p99s = [s.last.p99_ms for s in self.sources.values() if s.last is not None]
        return max(p99s) if p99s else None

    def detail(self) -> dict[str, Any]:
        """For the heartbeat: lag per source (the last full minute) and the offsets."""
        lag = {
            name: {
                "ticks": s.last.n,
                "p50_ms": round(s.last.p50_ms, 1),
                "p99_ms": round(s.last.p99_ms, 1),
                "min_ms": round(s.last.min_ms, 1),
                "max_ms": round(s.last.max_ms, 1),
            }
            for name, s in self.sources.items()
            if s.last is not None
        }
        ticks = self.offset_from_ticks_ms()
        out: dict[str, Any] = {"lag": lag}
        if ticks is not None:
            out["clock_offset_ticks_s"] = round(ticks / 1000, 3)
        if self.ping_offset_ms is not None and self.ping_rtt_ms is not None:
            out["clock_offset_ping_s"] = round(self.ping_offset_ms / 1000, 3)
            out["ping_rtt_ms"] = round(self.ping_rtt_ms, 1)
        if self.unstamped:
            out["unstamped_ticks"] = self.unstamped
        return out
