"""The trading domain's closed sets of values, and the checks that hold an author to them.

Each set is a ``Literal`` (the wire's field types are these same aliases, so a value that
passed its check here is one the receiving daemon's strict decode accepts) with a
checker that returns the value typed or raises ``ValueError`` naming the value, what it
was for and the choices. Author-facing calls (``BaseStrategy.buy`` and every helper after
it, the builder's legs, the webhook's mappings) check at the call, so ``product="NRMl"``
fails where it is written, the same way in live, paper and backtest, instead of as a frame
the risk daemon cannot decode.
"""

from __future__ import annotations

import math
from typing import Literal, cast, get_args

Action = Literal["BUY", "SELL"]
PriceType = Literal["MARKET", "LIMIT", "SL", "SL-M"]
Product = Literal["MIS", "NRML", "CNC"]
# The exchanges an order can go to (the indices, NSE_INDEX and BSE_INDEX, are quoted, not
# traded).
Exchange = Literal["NSE", "NFO", "BSE", "BFO"]
# A builder leg's instrument.
LegKind = Literal["CE", "PE", "FUT"]

ACTIONS: tuple[str, ...] = get_args(Action)
PRICE_TYPES: tuple[str, ...] = get_args(PriceType)
PRODUCTS: tuple[str, ...] = get_args(Product)
EXCHANGES: tuple[str, ...] = get_args(Exchange)
LEG_KINDS: tuple[str, ...] = get_args(LegKind)
_NUMBERS = (int, float)


# each set as a dict of its values typed: a check is one lookup (an order's every field is
# checked at every order helper's call)
_ACTION: dict[object, Action] = {a: cast(Action, a) for a in ACTIONS}
_PRICE_TYPE: dict[object, PriceType] = {p: cast(PriceType, p) for p in PRICE_TYPES}
_PRODUCT: dict[object, Product] = {p: cast(Product, p) for p in PRODUCTS}
_EXCHANGE: dict[object, Exchange] = {e: cast(Exchange, e) for e in EXCHANGES}


def _refused(value: object, choices: tuple[str, ...], what: str) -> ValueError:
    return ValueError(f"{what} {value!r} is not one of {', '.join(choices)}")


def action(value: object, what: str = "action") -> Action:
    try:
        return _ACTION[value]
    except (KeyError, TypeError):  # TypeError: not hashable, so not one of them
        raise _refused(value, ACTIONS, what) from None


def price_type(value: object, what: str = "pricetype") -> PriceType:
    try:
        return _PRICE_TYPE[value]
    except (KeyError, TypeError):
        raise _refused(value, PRICE_TYPES, what) from None


def product(value: object, what: str = "product") -> Product:
    try:
        return _PRODUCT[value]
    except (KeyError, TypeError):
        raise _refused(value, PRODUCTS, what) from None


def exchange(value: object, what: str = "exchange") -> Exchange:
    try:
        return _EXCHANGE[value]
    except (KeyError, TypeError):
        raise _refused(value, EXCHANGES, what) from None


def quantity(value: object, what: str = "quantity") -> int:
    """A whole number of shares or contracts (``True`` and ``2.0`` are not)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"{what} must be a whole number, got {value!r}")


def price(value: object, what: str = "price") -> float:
    """A finite number (an int is taken as rupees)."""
    if isinstance(value, _NUMBERS) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{what} must be a finite number, got {value!r}")


def symbol(value: object, what: str = "symbol") -> str:
    if isinstance(value, str) and value and " " not in value:
        return value
    raise ValueError(f"{what} must be a non-empty string without spaces, got {value!r}")


def opposite(a: Action) -> Action:
    return "SELL" if a == "BUY" else "BUY"
