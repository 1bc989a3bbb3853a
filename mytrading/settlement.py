"""Expiry settlement, as NSE and BSE settle derivatives: what a position held through a
contract's expiry becomes.

* **Index options** are cash-settled at their intrinsic value against the final settlement
  price (the index's close on expiry day); out of the money they expire worthless.
* **Index futures** are cash-settled at the final settlement price.
* **Stock options and futures** are physically settled: an in-the-money option, or a
  future, becomes a delivery position in the stock (a long call or a short put receives
  the shares, a long put or a short call delivers them) at the strike, or at the final
  settlement price for a future. Here the contract closes at its intrinsic value (a
  future at the final price) and the shares are booked at the final price: the same money
  as taking them at the strike.

Charges (``risk/charges.py`` ``settlement_charges``): the buyer of an exercised option
pays STT on its intrinsic value; a physical delivery pays delivery STT on the shares'
value, both sides. The backtest (``backtest/engine.py``), the simulated broker
(``sim/exchange.py``) and the router's books (``router/expiry.py``) settle this way.
"""

from __future__ import annotations

from dataclasses import dataclass

from mytrading.refdata import Instrument, RefData


@dataclass(frozen=True)
class Delivery:
    """The stock position a physically settled contract leaves."""

    exchange: str
    symbol: str
    shares: int  # signed: + received, - delivered
    price: float


@dataclass(frozen=True)
class Settlement:
    price: float  # the contract closes at this: an option's intrinsic, a future's final price
    kind: str  # "cash" or "physical"
    delivery: Delivery | None  # physical settlement of an in-the-money position


def settle(refdata: RefData, inst: Instrument, qty: int, final: float) -> Settlement:
    """A position of ``qty`` (signed) in ``inst`` at its expiry, the underlying's final
    settlement price being ``final``."""
    if inst.kind not in ("FUT", "CE", "PE"):
        raise ValueError(f"{inst.symbol} does not expire")
    u = refdata.underlying(inst.underlying)
    if inst.kind == "FUT":
        price = final
        shares = qty  # a long future takes delivery, a short one delivers
    else:
        itm = final - inst.strike if inst.kind == "CE" else inst.strike - final
        price = round(max(itm, 0.0), 2)
        # exercised (long) or assigned (short): a call moves shares to its holder, a put
        # from its holder
        shares = (qty if inst.kind == "CE" else -qty) if price > 0 else 0
    if u.kind != "STOCK":
        return Settlement(price, "cash", None)
    exchange = "NSE" if inst.exchange == "NFO" else "BSE"
    delivery = Delivery(exchange, u.name, shares, final) if shares else None
    return Settlement(price, "physical", delivery)
