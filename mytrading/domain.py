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


def _one_of(value: object, choices: tuple[str, ...], what: str) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"{what} {value!r} is not one of {', '.join(choices)}")


def action(value: object, what: str = "action") -> Action:
    return cast(Action, _one_of(value, ACTIONS, what))


def price_type(value: object, what: str = "pricetype") -> PriceType:
    return cast(PriceType, _one_of(value, PRICE_TYPES, what))


def product(value: object, what: str = "product") -> Product:
    return cast(Product, _one_of(value, PRODUCTS, what))


def exchange(value: object, what: str = "exchange") -> Exchange:
    return cast(Exchange, _one_of(value, EXCHANGES, what))


def quantity(value: object, what: str = "quantity") -> int:
    """A whole number of shares or contracts (``True`` and ``2.0`` are not)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"{what} must be a whole number, got {value!r}")


def price(value: object, what: str = "price") -> float:
    """A finite number (an int is taken as rupees)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"{what} must be a finite number, got {value!r}")


def symbol(value: object, what: str = "symbol") -> str:
    if isinstance(value, str) and value and " " not in value:
        return value
    raise ValueError(f"{what} must be a non-empty string without spaces, got {value!r}")


def opposite(a: Action) -> Action:
    return "SELL" if a == "BUY" else "BUY"
