"""Alert bodies from TradingView, Amibroker and ChartInk, and what each means for a
webhook strategy: an order, or a target position (OpenAlgo's smart order).

Formats (one JSON object per request; the signals daemon limits its size):

* **TradingView / plain** (the seed's body): ``{"symbol", "action", "position_size"}``,
  optionally ``quantity`` (``{{strategy.order.contracts}}``) and ``passphrase``.
  ``action`` is BUY or SELL in any case (``{{strategy.order.action}}`` gives lowercase).
* **Amibroker**: OpenAlgo's ``placeorder`` body (``symbol, action, quantity, exchange,
  product, pricetype``...) or ``placesmartorder`` body (the same plus ``position_size``).
  Its ``apikey`` is accepted and ignored (never stored or logged): a webhook id is the key
  here. The strategy's symbol mapping decides exchange and product.
* **ChartInk**: ``{"stocks": "A,B", "trigger_prices": "1,2", "scan_name": "... BUY ..."}``;
  the action is the first of BUY, SELL, SHORT, COVER found as a word in ``scan_name``; one
  alert per stock.

Quantities count **lots** (an equity's lot is one share). Fields we do not know are
ignored, as OpenAlgo's webhook ignores them (TradingView templates carry ``time``,
``comment``, ``price``...); their names come back in ``Parsed.ignored`` for the audit.

Meaning, per mode (docs/openalgo.md §6, the real module's rules):

* LONG: BUY opens (an order of ``quantity``, else ``|position_size|``, else the mapping's
  lots); SELL goes flat (target position 0). ChartInk: BUY and SELL.
* SHORT mirrors it: SELL opens short, BUY goes flat. ChartInk: SHORT and COVER.
* BOTH: the target position is ``position_size`` (required); BUY needs it >= 0 and SELL
  <= 0. ChartInk in BOTH: BUY and SHORT open, SELL and COVER go flat.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from mytrading import domain
from mytrading.domain import Product
from mytrading.webhook.model import Mode, SymbolMap

Action = Literal["BUY", "SELL", "SHORT", "COVER"]
PLAIN_FIELDS = frozenset(
    {
        "symbol", "action", "quantity", "position_size", "passphrase", "strategy",
        "exchange", "product", "pricetype", "price", "trigger_price", "disclosed_quantity",
        "apikey", "contracts",
    }
)  # fmt: skip
CHARTINK_FIELDS = frozenset(
    {"stocks", "trigger_prices", "scan_name", "scan_url", "alert_name", "triggered_at",
     "webhook_url", "passphrase"}
)  # fmt: skip
CHARTINK_WORDS: tuple[Action, ...] = (
    "BUY",
    "SELL",
    "SHORT",
    "COVER",
)  # checked in this order, as the module


class AlertError(ValueError):
    """A body that is not an alert we can act on: the reason goes back with a 400."""


@dataclass(frozen=True)
class Alert:
    external: str  # the symbol as sent (upper case)
    action: Action
    quantity: int | None  # lots, if the alert gave an order size
    position_size: int | None  # signed lots, if it gave a target
    source: Literal["tradingview", "amibroker", "chartink"]


@dataclass(frozen=True)
class Instruction:
    """What one alert asks of one mapped contract."""

    exchange: str
    symbol: str
    product: Product
    kind: Literal["order", "target"]
    action: Literal["BUY", "SELL"]  # the order's side; for a target, the alert's side
    lots: int  # an order's size, or the target's signed size
    opens: bool  # an entry (refused outside the entry window); False: towards flat


@dataclass(frozen=True)
class Parsed:
    """What a request body says: its alerts, its passphrase, and the names of the fields
    that meant nothing to us (ignored, recorded in the audit)."""

    alerts: list[Alert]
    passphrase: str | None
    ignored: tuple[str, ...] = ()


def parse(body: bytes) -> Parsed:
    """The alerts a request carries, its passphrase and the fields it ignored, or
    AlertError with the reason."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise AlertError("the body nests too deeply to be an alert") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise AlertError(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AlertError("the body must be a JSON object")
    passphrase = data.get("passphrase")
    if passphrase is not None and not isinstance(passphrase, str):
        raise AlertError("passphrase must be a string")
    if "stocks" in data or "scan_name" in data:
        return Parsed(_chartink(data), passphrase, _ignored(data, CHARTINK_FIELDS))
    symbol = _text(data, "symbol").upper()
    try:
        action = domain.action(_text(data, "action").upper())
    except ValueError:
        raise AlertError(f"action must be BUY or SELL, got {data.get('action')!r}") from None
    quantity = _int(data, "quantity") if "quantity" in data else _int(data, "contracts")
    if quantity is not None and quantity < 0:
        raise AlertError(f"quantity must not be negative, got {quantity}")
    source: Literal["amibroker", "tradingview"] = (
        "amibroker" if {"exchange", "pricetype", "apikey"} & set(data) else "tradingview"
    )
    alert = Alert(symbol, action, quantity, _int(data, "position_size"), source)
    return Parsed([alert], passphrase, _ignored(data, PLAIN_FIELDS))


def _ignored(data: dict[str, Any], known: frozenset[str]) -> tuple[str, ...]:
    """The body's field names outside ``known``, sorted, each cut to 40 characters (they
    go into the audit; a body is limited in size, but a name need not be short)."""
    return tuple(sorted(k[:40] for k in data if k not in known))


def _chartink(data: dict[str, Any]) -> list[Alert]:
    scan = _text(data, "scan_name").upper()
    words = set(re.findall(r"[A-Z]+", scan))
    action = next((w for w in CHARTINK_WORDS if w in words), None)
    if action is None:
        raise AlertError(f"scan_name {data['scan_name']!r} names none of {CHARTINK_WORDS}")
    stocks = [s.strip().upper() for s in _text(data, "stocks").split(",") if s.strip()]
    if not stocks:
        raise AlertError("stocks is empty")
    return [Alert(s, action, None, None, "chartink") for s in stocks]


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's parser takes them): refused."""
    raise ValueError(f"{name} is not a number an alert may carry")


def _text(data: dict[str, Any], key: str) -> str:
    v = data.get(key)
    if not isinstance(v, str) or not v.strip():
        raise AlertError(f"{key} is missing or not a string")
    return v.strip()


def _int(data: dict[str, Any], key: str) -> int | None:
    """A whole number, also as a string ("2", "-1.0": TradingView sends floats as text)."""
    v = data.get(key)
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise AlertError(f"{key} must be a number, got {v!r}") from None
    if not math.isfinite(f) or f != int(f) or abs(f) > 1_000_000:
        raise AlertError(f"{key} must be a whole number of lots, got {v!r}")
    return int(f)


def plan(alert: Alert, mode: Mode, m: SymbolMap) -> Instruction:
    """What the alert means for the mapped contract under the strategy's mode."""
    act = alert.action
    if alert.source == "chartink":
        allowed = {"LONG": ("BUY", "SELL"), "SHORT": ("SHORT", "COVER")}.get(mode, CHARTINK_WORDS)
        if act not in allowed:
            raise AlertError(f"{act} is not allowed for a {mode} strategy (allowed: {allowed})")
        if act in ("BUY", "SHORT"):
            side: domain.Action = "BUY" if act == "BUY" else "SELL"
            return Instruction(m.exchange, m.symbol, m.product, "order", side, m.lots, True)
        side = "SELL" if act == "SELL" else "BUY"
        return Instruction(m.exchange, m.symbol, m.product, "target", side, 0, False)
    if act not in ("BUY", "SELL"):
        raise AlertError(f"action must be BUY or SELL, got {act}")
    size = alert.position_size
    if mode == "BOTH":
        if size is None:
            raise AlertError("position_size is required for a BOTH strategy")
        if (act == "BUY" and size < 0) or (act == "SELL" and size > 0):
            raise AlertError(f"{act} with position_size {size}: the signs disagree")
        return Instruction(m.exchange, m.symbol, m.product, "target", act, size, size != 0)
    opening = "BUY" if mode == "LONG" else "SELL"
    if act != opening:  # the closing side: flat
        return Instruction(m.exchange, m.symbol, m.product, "target", act, 0, False)
    lots = alert.quantity or (abs(size) if size else 0) or m.lots
    return Instruction(m.exchange, m.symbol, m.product, "order", act, lots, True)
