"""Request validation that answers the way OpenAlgo's marshmallow schemas do.

OpenAlgo rejects unknown fields (marshmallow's default RAISE), accepts numbers sent as
strings (the SDK always sends strings), and reports problems as ``{field: [message]}``
(docs/openalgo.md §0). The messages below are marshmallow's own wording, so a
client that parses them sees what it would see from the real server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EXCHANGES = (
    "NSE",
    "NFO",
    "CDS",
    "BSE",
    "BFO",
    "BCD",
    "MCX",
    "NCDEX",
    "NCO",
    "NSE_INDEX",
    "BSE_INDEX",
    "MCX_INDEX",
    "GLOBAL_INDEX",
    "CRYPTO",
)
ACTIONS = ("BUY", "SELL")
PRICETYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS = ("MIS", "CNC", "NRML")
MISSING = "Missing data for required field."


class InvalidValueError(ValueError):
    """One field's value fails its schema; the message is marshmallow's wording."""


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise InvalidValueError("Not a valid string.")
    return v


def _integer(v: Any) -> int:
    if isinstance(v, bool):
        raise InvalidValueError("Not a valid integer.")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise InvalidValueError("Not a valid integer.") from None
    if not f.is_integer():
        raise InvalidValueError("Not a valid integer.")
    return int(f)


def _number(v: Any) -> float:
    if isinstance(v, bool):
        raise InvalidValueError("Not a valid number.")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InvalidValueError("Not a valid number.") from None


def _boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("true", "1"):
        return True
    if str(v).lower() in ("false", "0"):
        return False
    raise InvalidValueError("Not a valid boolean.")


def one_of(*choices: str, upper: bool = True) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        s = _string(v)
        s = s.upper() if upper else s
        if s not in choices:
            raise InvalidValueError(f"Must be one of: {', '.join(choices)}.")
        return s

    return check


def positive(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        x = conv(v)
        if x <= 0:
            raise InvalidValueError(
                "Must be greater than or equal to 1."
                if conv is _integer
                else "Must be greater than 0."
            )
        return x

    return check


def non_negative(conv: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        x = conv(v)
        if x < 0:
            raise InvalidValueError("Must be greater than or equal to 0.")
        return x

    return check


@dataclass(frozen=True)
class F:
    """One field: its converter, whether it is required, its default."""

    conv: Callable[[Any], Any]
    required: bool = True
    default: Any = None


def validate(schema: dict[str, F], body: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(clean values, errors): errors maps each bad field to marshmallow-style messages."""
    if not isinstance(body, dict):
        return {}, {"_schema": ["InvalidValueError input type."]}
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for name in body:
        if name not in schema:
            errors[name] = ["Unknown field."]
    for name, f in schema.items():
        if name not in body or body[name] is None:
            if f.required:
                errors[name] = [MISSING]
            else:
                out[name] = f.default
            continue
        try:
            out[name] = f.conv(body[name])
        except InvalidValueError as exc:
            errors[name] = [str(exc)]
    return out, errors


def _list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise InvalidValueError("Not a valid list.")
    return v


def _date(v: Any) -> str:
    import datetime as _dt

    s = _string(v)
    try:
        _dt.date.fromisoformat(s)
    except ValueError:
        raise InvalidValueError("Not a valid date.") from None
    return s


def bounded(conv: Callable[[Any], Any], lo: float, hi: float) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        x = conv(v)
        if not lo <= x <= hi:
            raise InvalidValueError(
                f"Must be greater than or equal to {lo} and less than or equal to {hi}."
            )
        return x

    return check


STR, INT, NUM, BOOL, LIST, DATE = _string, _integer, _number, _boolean, _list, _date
HISTORY_INTERVALS = (
    "1s",
    "5s",
    "10s",
    "15s",
    "30s",
    "45s",
    "1m",
    "2m",
    "3m",
    "5m",
    "10m",
    "15m",
    "20m",
    "30m",
    "1h",
    "2h",
    "3h",
    "4h",
    "D",
    "W",
    "M",
    "Q",
    "Y",
)

_ORDER_COMMON = {
    "apikey": F(STR),
    "strategy": F(STR),
    "exchange": F(one_of(*EXCHANGES)),
    "symbol": F(STR),
    "action": F(one_of(*ACTIONS)),
    "quantity": F(positive(INT)),
    "pricetype": F(one_of(*PRICETYPES), False, "MARKET"),
    "product": F(one_of(*PRODUCTS), False, "MIS"),
    "price": F(non_negative(NUM), False, 0.0),
    "trigger_price": F(non_negative(NUM), False, 0.0),
    "disclosed_quantity": F(non_negative(INT), False, 0),
}

SCHEMAS: dict[str, dict[str, F]] = {
    "ping": {"apikey": F(STR)},
    "placeorder": _ORDER_COMMON,
    "placesmartorder": {
        **_ORDER_COMMON,
        "quantity": F(non_negative(INT)),
        "position_size": F(NUM),
    },
    "splitorder": {**_ORDER_COMMON, "splitsize": F(positive(INT))},
    "modifyorder": {
        "apikey": F(STR),
        "strategy": F(STR),
        "orderid": F(STR),
        "exchange": F(one_of(*EXCHANGES)),
        "symbol": F(STR),
        "action": F(one_of(*ACTIONS)),
        "product": F(one_of(*PRODUCTS)),
        "pricetype": F(one_of(*PRICETYPES)),
        "price": F(non_negative(NUM)),
        "quantity": F(positive(INT)),
        "disclosed_quantity": F(non_negative(INT)),
        "trigger_price": F(non_negative(NUM)),
    },
    "cancelorder": {"apikey": F(STR), "strategy": F(STR), "orderid": F(STR)},
    "cancelallorder": {"apikey": F(STR), "strategy": F(STR)},
    "closeposition": {"apikey": F(STR), "strategy": F(STR)},
    "orderstatus": {"apikey": F(STR), "strategy": F(STR), "orderid": F(STR)},
    "openposition": {
        "apikey": F(STR),
        "strategy": F(STR),
        "symbol": F(STR),
        "exchange": F(one_of(*EXCHANGES)),
        "product": F(one_of(*PRODUCTS)),
    },
    "orderbook": {"apikey": F(STR)},
    "tradebook": {"apikey": F(STR)},
    "positionbook": {"apikey": F(STR)},
    "holdings": {"apikey": F(STR)},
    "funds": {"apikey": F(STR)},
    "intervals": {"apikey": F(STR)},
    "quotes": {"apikey": F(STR), "symbol": F(STR), "exchange": F(one_of(*EXCHANGES))},
    "depth": {"apikey": F(STR), "symbol": F(STR), "exchange": F(one_of(*EXCHANGES))},
    "symbol": {"apikey": F(STR), "symbol": F(STR), "exchange": F(one_of(*EXCHANGES))},
    "search": {"apikey": F(STR), "query": F(STR), "exchange": F(one_of(*EXCHANGES), False)},
    "expiry": {
        "apikey": F(STR),
        "symbol": F(STR),
        "exchange": F(one_of(*EXCHANGES)),
        "instrumenttype": F(one_of("futures", "options", upper=False)),
    },
}

SCHEMAS.update(
    {
        "history": {
            "apikey": F(STR),
            "symbol": F(STR),
            "exchange": F(one_of(*EXCHANGES)),
            "interval": F(one_of(*HISTORY_INTERVALS, upper=False)),
            "start_date": F(DATE),
            "end_date": F(DATE),
            "source": F(one_of("api", "db", upper=False), False, "api"),
        },
        "optionsymbol": {
            "apikey": F(STR),
            "strategy": F(STR, False),
            "underlying": F(STR),
            "exchange": F(one_of(*EXCHANGES)),
            "expiry_date": F(STR, False),
            "strike_int": F(NUM, False),
            "offset": F(STR),
            "option_type": F(one_of("CE", "PE")),
        },
        "optionchain": {
            "apikey": F(STR),
            "underlying": F(STR),
            "exchange": F(one_of(*EXCHANGES)),
            "expiry_date": F(STR),
            "strike_count": F(bounded(INT, 1, 100), False),
            "with_greeks": F(BOOL, False, False),
        },
        "basketorder": {"apikey": F(STR), "strategy": F(STR), "orders": F(LIST)},
        "margin": {"apikey": F(STR), "positions": F(LIST)},
    }
)

# Endpoints whose errors use the order family's Python-repr message (section 0).
ORDER_FAMILY = frozenset(
    {
        "placeorder",
        "placesmartorder",
        "modifyorder",
        "cancelorder",
        "cancelallorder",
        "closeposition",
        "splitorder",
        "orderstatus",
        "openposition",
        "margin",
    }
)
