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
from datetime import date, datetime, timedelta
from typing import Literal

from mytrading import wire
from mytrading.domain import Product
from mytrading.ids import OrderId
from mytrading.refdata import IST, Calendar, Instrument, RefData, RefDataError, future_symbol


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
    kind: Literal["cash", "physical"]
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


def final_price_places(refdata: RefData, inst: Instrument) -> list[tuple[str, str]]:
    """Where the final settlement price of ``inst``'s expiry is read, first found wins:
    the index's close; for a stock's contract the stock's, else its future of that expiry
    (which converges to it)."""
    u = refdata.underlying(inst.underlying)
    if u.kind != "STOCK":
        return [(u.spot_exchange, u.name)]
    assert inst.expiry is not None
    return [
        ("NSE" if inst.exchange == "NFO" else "BSE", u.name),
        (u.fo_exchange, future_symbol(u.name, inst.expiry)),
    ]


def settled_through(calendar: Calendar, now: datetime) -> tuple[date, datetime]:
    """The last expiry day whose session has closed by ``now`` (today once past today's
    close, else yesterday), and the next moment that can change (today's close, else the
    coming midnight), so a caller on a hot path asks again only then."""
    today = now.astimezone(IST).date()
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), IST)
    hours = calendar.hours("NFO", today)
    if hours is None:
        return today - timedelta(days=1), midnight
    close = datetime.combine(today, hours[1], IST)
    if now >= close:
        return today, midnight
    return today - timedelta(days=1), close


def expired(refdata: RefData, exchange: str, symbol: str, through: date) -> Instrument | None:
    """The contract ``symbol`` if it expired on or before ``through`` (None otherwise, or
    for anything that does not expire or is not known)."""
    try:
        inst = refdata.instrument(exchange, symbol)
    except RefDataError:
        return None
    if inst.kind not in ("FUT", "CE", "PE") or inst.expiry is None or inst.expiry > through:
        return None
    return inst


def settlement_fill(
    strategy: str,
    where: tuple[str, str],
    product: Product,
    signed: int,
    price: float,
    how: wire.Settlement,
    at_ns: int,
    fill_id: str,
    fill_no: int = 0,
    account: str = "main",
) -> wire.Fill:
    """A settlement as the fill every book takes it as: ``signed`` units of ``where`` (a
    contract closed, or the shares delivered) at ``price``, marked ``how`` (``cash``,
    ``physical``, ``delivery``), with the order id ``<strategy>.settle-<symbol>``."""
    return wire.Fill(
        fill_no=fill_no,
        fill_id=fill_id,
        order_id=str(OrderId(strategy, f"settle-{where[1]}")),
        broker_order_id="settlement",
        strategy=strategy,
        exchange=where[0],
        symbol=where[1],
        product=product,
        action="BUY" if signed > 0 else "SELL",
        quantity=abs(signed),
        price=price,
        exch_ns=at_ns,
        account=account,
        settlement=how,
    )
