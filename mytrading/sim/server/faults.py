"""The simulator's bad days, on demand: ``MT_SIM_FAULTS``.

A broker rarely fails cleanly. Behind a proxy, on a bad day, OpenAlgo's replies are lost
after the order was placed, answered after the client gave up, refused with a 5xx page
of HTML, or garbled on the way back; and the broker's clock (or the VPS's) may be a
minute off ours. This module lets the simulator server behave so, seeded, so that the
suite and ``bench/soak.py`` drive those paths on real processes.

``MT_SIM_FAULTS`` is one of:

* empty or ``false``: no faults and no test endpoints (the default);
* ``true``: the test endpoints only (``/_sim/faults`` queues faults call by call,
  ``/_sim/counts``, ``/_sim/session``: the suite's hand-made faults);
* a list of ``key=value`` (the test endpoints too), e.g.
  ``seed=7,lose_place=0.3,late_place=0.1,clock_offset_s=-60``:

  ================  =====================================================================
  ``seed``          the random draws' seed (the same seed, the same faults in order)
  ``lose_place``    share of ``placeorder`` calls done, then answered 502 with a proxy's
                    HTML page: the order is at the broker, its reply is lost
  ``late_place``    share of ``placeorder`` calls done and answered only after ``late_s``
  ``late_s``        how late (default 8 s: past the client's 5 s timeout)
  ``refuse_5xx``    share of order calls (place, modify, cancel) refused 503 with HTML
                    before anything happens: the order certainly never arrived
  ``garble_books``  share of book reads (order, trade, position books, order status)
                    answered with garbage: HTML with a 200, truncated JSON, or
                    ``"data": null``
  ``clock_offset_s``  the broker's clock less ours, in seconds: every order and trade
                    timestamp it reports is that far off (negative: behind)
  ================  =====================================================================

Live trading refuses any of it (``Settings.tests_only_settings``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from mytrading.domain.refdata import IST

ORDER_CALLS = frozenset({"placeorder", "modifyorder", "cancelorder"})
BOOK_READS = frozenset({"orderbook", "tradebook", "positionbook", "orderstatus"})
TIMED = frozenset({"orderbook", "tradebook", "orderstatus"})
_TS = "%Y-%m-%d %H:%M:%S"
_OFF = frozenset({"", "0", "false", "no", "off"})
_ON = frozenset({"1", "true", "yes", "on"})

Draw = Literal["", "lose", "late", "refuse", "garble"]

PROXY_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    "</h1></center><hr><center>nginx</center></body></html>"
)
PROXY_503 = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
    "<h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)
LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Login</title></head><body>Sign in</body></html>"


@dataclass
class FaultPlan:
    """What ``MT_SIM_FAULTS`` asks for; ``harness`` alone opens the test endpoints."""

    harness: bool = False
    seed: int = 0
    lose_place: float = 0.0
    late_place: float = 0.0
    late_s: float = 8.0
    refuse_5xx: float = 0.0
    garble_books: float = 0.0
    clock_offset_s: float = 0.0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def any_random(self) -> bool:
        return bool(self.lose_place or self.late_place or self.refuse_5xx or self.garble_books)

    def draw(self, endpoint: str) -> Draw:
        """The fault this call gets ("" for none). Each call draws once, in call order,
        so one seed gives the same sequence of faults."""
        if not self.any_random:
            return ""
        if endpoint in ORDER_CALLS:
            x = self.rng.random()
            if x < self.refuse_5xx:
                return "refuse"
            if endpoint == "placeorder":
                x -= self.refuse_5xx
                if x < self.lose_place:
                    return "lose"
                if x - self.lose_place < self.late_place:
                    return "late"
            return ""
        if endpoint in BOOK_READS and self.rng.random() < self.garble_books:
            return "garble"
        return ""

    def garbage(self) -> tuple[int, str, bytes]:
        """(status, content type, body) of a garbled book read, one of three kinds."""
        kind = self.rng.randrange(3)
        if kind == 0:
            return 200, "text/html", LOGIN_PAGE.encode()
        if kind == 1:
            return 200, "application/json", b'{"status": "success", "data": {"orders": [{"ord'
        return 200, "application/json", b'{"status": "success", "data": null}'

    def shift(self, endpoint: str, body: Any) -> Any:
        """The reply with every order and trade timestamp on the broker's clock."""
        if not self.clock_offset_s or endpoint not in TIMED:
            return body
        return _shifted(body, timedelta(seconds=self.clock_offset_s))


def _shifted(v: Any, by: timedelta) -> Any:
    if isinstance(v, dict):
        return {k: (_moved(x, by) if k == "timestamp" else _shifted(x, by)) for k, x in v.items()}
    if isinstance(v, list):
        return [_shifted(x, by) for x in v]
    return v


def _moved(v: Any, by: timedelta) -> Any:
    got = _moved_text(str(v), by)
    return v if got is None else got


@functools.lru_cache(maxsize=4096)
def _moved_text(text: str, by: timedelta) -> str | None:
    """``text`` (a broker timestamp) moved by ``by``; None if it is not one. Kept: every
    read of a book shows the day's orders again, with the same timestamps."""
    try:
        at = datetime.strptime(text, _TS).replace(tzinfo=IST)
    except ValueError:
        return None
    return (at + by).strftime(_TS)


_NAMES = {f.name for f in fields(FaultPlan)} - {"harness", "rng"}


def parse(spec: str) -> FaultPlan:
    """``MT_SIM_FAULTS`` read; a mistake raises ValueError naming it and the choices."""
    s = spec.strip()
    if s.lower() in _OFF:
        return FaultPlan()
    if s.lower() in _ON:
        return FaultPlan(harness=True)
    got: dict[str, Any] = {}
    for part in s.split(","):
        name, eq, value = part.strip().partition("=")
        name = name.strip()
        if not eq or name not in _NAMES:
            raise ValueError(
                f"MT_SIM_FAULTS: {part.strip()!r} is not key=value with a key among "
                f"{sorted(_NAMES)} (or true/false)"
            )
        try:
            got[name] = int(value) if name == "seed" else float(value)
        except ValueError:
            raise ValueError(f"MT_SIM_FAULTS: {name}={value!r} is not a number") from None
        if name in ("lose_place", "late_place", "refuse_5xx", "garble_books") and not (
            0.0 <= got[name] <= 1.0
        ):
            raise ValueError(f"MT_SIM_FAULTS: {name} is a share, 0..1, got {value}")
        if name == "late_s" and not 0 < got[name] <= 120:
            raise ValueError(f"MT_SIM_FAULTS: late_s must be in (0, 120], got {value}")
        if name == "clock_offset_s" and abs(got[name]) > 86_400:
            raise ValueError(f"MT_SIM_FAULTS: clock_offset_s is at most a day, got {value}")
    if got.get("lose_place", 0) + got.get("late_place", 0) + got.get("refuse_5xx", 0) > 1:
        raise ValueError("MT_SIM_FAULTS: lose_place + late_place + refuse_5xx exceed 1")
    return FaultPlan(harness=True, **got)
