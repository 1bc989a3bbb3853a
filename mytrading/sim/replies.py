"""Replies of the simulated OpenAlgo, in its shapes: ``(http_status, body)`` with
``status`` success or error, and broker timestamps to the second in IST."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from mytrading.domain.refdata import IST

Reply = tuple[int, dict[str, Any]]


def ok(**body: Any) -> Reply:
    return 200, {"status": "success", **body}


def err(code: int, message: Any) -> Reply:
    return code, {"status": "error", "message": message}


def ts(ns: int) -> str:
    return _ts_of_second(ns // 1_000_000_000)


@functools.lru_cache(maxsize=1024)
def _ts_of_second(s: int) -> str:
    """Broker timestamps have whole seconds: one ``strftime`` per second, not per row."""
    return datetime.fromtimestamp(s, IST).strftime("%Y-%m-%d %H:%M:%S")
