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
value, both sides. The backtest (``backtest/loop.py``), the simulated broker
(``sim/exchange.py``) and the router's books (``router/expiry.py``) settle this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from mytrading.domain import Product
from mytrading.domain.ids import OrderId
from mytrading.domain.refdata import IST, Calendar, Instrument, RefData, RefDataError, future_symbol
from mytrading.messaging import wire


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


@dataclass(frozen=True)
class Leg:
    """One booking of a settlement: ``signed`` units of ``where`` at ``price``, marked
    ``how``; ``suffix`` tells the delivery leg's id from the contract's."""

    where: tuple[str, str]
    product: Product
    signed: int
    price: float
    how: wire.Settlement
    suffix: str = ""


def settle_legs(
    refdata: RefData, inst: Instrument, qty: int, product: Product, final: float | None
) -> list[Leg] | None:
    """What settling a position of ``qty`` (signed) in the expired ``inst`` books: the
    contract closed at its settlement price, and for a physically settled one in the
    money the shares delivered (CNC, at the final price). The one settlement the router,
    the backtest and the simulated broker all book.

    ``None`` when the final price is not known (``final`` None): **nothing is settled**;
    the caller says so (``no_final_price``), alerts, and asks again later with a price.
    Settling at a guess (the last trade, or zero) would book a P&L the exchange will not."""
    if final is None:
        return None
    st = settle(refdata, inst, qty, final)
    legs = [Leg((inst.exchange, inst.symbol), product, -qty, st.price, st.kind)]
    if st.delivery is not None:
        d = st.delivery
        legs.append(Leg((d.exchange, d.symbol), "CNC", d.shares, d.price, "delivery", ":delivery"))
    return legs


def no_final_price(inst: Instrument) -> str:
    """What is said (and alerted) of an expired contract held without a final price."""
    return (
        f"{inst.symbol} expired {inst.expiry} and is still held, but its final settlement "
        "price is unknown (no price of its underlying on the expiry day): nothing settled "
        "until one is; compare with the broker"
    )


def settlement_time(calendar: Calendar, expiry: date) -> datetime:
    """When a contract of this expiry settles: the close of the F&O session that day, as
    the sessions file says (a short session's close too)."""
    hours = calendar.hours("NFO", expiry)
    close = hours[1] if hours is not None else calendar.session("NFO").close
    return datetime.combine(expiry, close, IST)


def settlement_id(
    symbol: str, product: str, expiry: date, book: str = "", account: str = "main"
) -> str:
    """The one id of a settlement booking (a fill's id, a trade row's id):
    ``settle:<account>:<book>:<symbol>:<product>:<expiry>``, the same however often it is
    worked out, so a settlement replayed after a restart is recognised as booked."""
    return f"settle:{account}:{book}:{symbol}:{product}:{expiry.isoformat()}"


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
