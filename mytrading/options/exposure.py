"""Greeks of positions: what a book holds in each underlying, in the units traders read.

Per underlying: **delta** in units of the underlying (a long lot of NIFTY futures is +65;
a short ATM call lot about -32), **gamma** in delta per point of the underlying, **theta**
in rupees a calendar day, **vega** in rupees per volatility point. An option's are worked
out from its own last price (its implied volatility, Black-Scholes on the underlying's last
price with no carry, as the simulator prices and ``options/select.py`` reads); a future or
a stock counts its quantity as delta. A position whose prices are not known yet (no quote
of it or of its underlying) is left out and counted in ``unpriced``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from mytrading.domain.refdata import RefData, RefDataError
from mytrading.options.select import years_to

Ltp = Callable[[str, str], float]


@dataclass
class Greeks:
    delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    unpriced: int = 0  # positions left out: no price for them or their underlying yet

    def add(self, o: Greeks) -> None:
        self.delta += o.delta
        self.gamma += o.gamma
        self.theta += o.theta
        self.vega += o.vega
        self.unpriced += o.unpriced

    def as_dict(self) -> dict[str, float]:
        return {
            "delta": round(self.delta, 2),
            "gamma": round(self.gamma, 4),
            "theta": round(self.theta, 2),
            "vega": round(self.vega, 2),
            "unpriced": self.unpriced,
        }


def position_greeks(
    refdata: RefData, exchange: str, symbol: str, qty: int, ltp: Ltp, now: datetime
) -> tuple[str, Greeks] | None:
    """(underlying, the position's Greeks), or None for what has no underlying."""
    try:
        inst = refdata.instrument(exchange, symbol)
    except RefDataError:
        return None
    if inst.kind == "INDEX":
        return None
    if inst.kind in ("FUT", "EQ"):
        return inst.underlying, Greeks(delta=float(qty))
    u = refdata.underlying(inst.underlying)
    where = u.spot_exchange if u.kind == "INDEX" else ("NSE" if exchange == "NFO" else "BSE")
    spot, price = ltp(where, u.name), ltp(exchange, symbol)
    if spot <= 0 or price <= 0 or inst.expiry is None:
        return inst.underlying, Greeks(unpriced=1)
    from mytrading.options.greeks import greeks, iv  # numba: risk loads it only for a cap

    t = years_to(inst.expiry, now)
    vol = iv(price, spot, inst.strike, t, 0.0, inst.kind)
    if not vol > 0:  # no time value to read (at expiry, or priced at intrinsic)
        itm = spot > inst.strike if inst.kind == "CE" else spot < inst.strike
        d = (1.0 if inst.kind == "CE" else -1.0) if itm else 0.0
        return inst.underlying, Greeks(delta=d * qty)
    d, g, th, v, _ = greeks(spot, inst.strike, t, 0.0, vol, inst.kind)
    return inst.underlying, Greeks(d * qty, g * qty, th * qty, v * qty)


def book_greeks(
    refdata: RefData,
    positions: Iterable[tuple[str, str, int]],
    ltp: Ltp,
    now: datetime,
) -> dict[str, Greeks]:
    """Greeks per underlying of ``(exchange, symbol, signed qty)`` positions."""
    out: dict[str, Greeks] = {}
    for exchange, symbol, qty in positions:
        if not qty:
            continue
        got = position_greeks(refdata, exchange, symbol, qty, ltp, now)
        if got is not None:
            out.setdefault(got[0], Greeks()).add(got[1])
    return out
