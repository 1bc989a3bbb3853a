"""OpenAlgo's replies, read alike whatever the broker behind it: numbers that arrive as
strings or numbers, statuses in any case and spelling, timestamps in three formats, and
failures in two families (docs/openalgo.md §0), each classified as transient
or permanent and as possibly taken effect or certainly not sent."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from mytrading.domain.refdata import IST

TRANSIENT_HTTP = frozenset({429, 500, 502, 503, 504})
AMBIGUOUS_TYPES = frozenset({"timeout_error", "unknown_error", "http_error", "json_error"})
NOT_SENT_TYPES = frozenset({"connection_error"})  # the SDK's name for httpx.ConnectError


@dataclass(frozen=True)
class Failure:
    transient: bool
    ambiguous: bool  # the request may have taken effect
    code: int
    message: str
    retry_after_s: float = 0.0

    @property
    def not_sent(self) -> bool:
        """Certainly never reached the broker: safe to send again."""
        return self.transient and not self.ambiguous


def classify(reply: dict[str, Any]) -> Failure | None:
    """None for success; otherwise what kind of failure the SDK reply describes."""
    if reply.get("status") == "success":
        return None
    etype = str(reply.get("error_type", ""))
    code = int(reply.get("code") or 0)
    msg = str(reply.get("message", "unknown error"))
    if etype in NOT_SENT_TYPES:
        return Failure(True, False, code, msg)
    if code in TRANSIENT_HTTP:
        # A 429 is refused before anything happens; a 5xx may hide a placed order.
        wait = 0.0
        if code == 429:
            wait = num(reply.get("retry_after")) or retry_after(msg)  # a header, or the body
        return Failure(True, code != 429, code, msg, wait)
    if etype in AMBIGUOUS_TYPES and not code:
        return Failure(True, True, code, msg)
    return Failure(False, False, code, msg)


_LIMIT = re.compile(r"(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?", re.I)
_UNIT_S = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def retry_after(message: str) -> float:
    """Seconds to wait after a 429, from its body (the SDK passes it on as
    ``HTTP 429: <body>``): its ``retry_after`` if it has one (OpenAlgo's own handler),
    else the window of the limit it names (``/api/v1`` answers flask-limiter's
    ``{"message": "10 per 1 second"}``: wait out that second), else 0 (the caller's
    backoff decides)."""
    _, _, body = message.partition(": ")
    try:
        data = msgspec.json.decode(body.encode())
    except msgspec.DecodeError:
        data = {"message": body}
    if not isinstance(data, dict):
        return 0.0
    given = num(data.get("retry_after"))  # 0.0 when absent or not a number
    if given > 0:
        return given
    m = _LIMIT.search(str(data.get("message", "")))
    if m is None:
        return 0.0
    return float(m.group(2) or 1) * _UNIT_S[m.group(3).lower()]


def num(v: Any) -> float:
    """A broker number that may be a string, empty or missing."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def parse_ts(s: Any) -> float | None:
    """A broker's timestamp (IST) in epoch seconds; None if it is none of its formats.
    An order book repeats the day's times at every read: each text is parsed once."""
    return _parse_ts(str(s))


@functools.lru_cache(maxsize=8192)
def _parse_ts(s: str) -> float | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%d-%b-%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=IST).timestamp()
        except ValueError:
            continue
    return None
