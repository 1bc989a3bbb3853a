"""The price band around the last price: the one rule risk judges a price or a trigger
by (``risk/rules.py``: ``price_band``), and the range the engine keeps a protective stop
inside so that risk and the broker take it (``engine/brackets.py``).

``pct`` of the last price either side (``option_pct`` for an option), and never fewer
than ``min_ticks`` ticks: a percentage of a 0.05 option would leave no room for a stop.
A broker's band (the exchange's, around its own last price) is usually wider than risk's
(``config/risk.toml`` is chosen inside it), so a price inside risk's band, with room for
the price to move before the order lands, is inside the broker's too.
"""

from __future__ import annotations

from dataclasses import dataclass

from mytrading.domain.refdata import Instrument


@dataclass(frozen=True, slots=True)
class PriceBand:
    pct: float = 10.0
    option_pct: float = 40.0
    min_ticks: int = 40

    def half(self, inst: Instrument, last: float) -> float:
        """Half the band's width around ``last``, in rupees."""
        pct = self.option_pct if inst.kind in ("CE", "PE") else self.pct
        return max(last * pct / 100, self.min_ticks * inst.tick_size)

    def around(self, inst: Instrument, last: float) -> tuple[float, float]:
        """(lowest, highest) price accepted around ``last``, to the paisa."""
        half = self.half(inst, last)
        return round(max(last - half, 0.0), 2), round(last + half, 2)
