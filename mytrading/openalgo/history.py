"""Past bars from OpenAlgo's ``history`` endpoint, for strategy warm-up.

Plain HTTP (httpx) rather than the SDK: the SDK's import is slow and replaces
``numba.jit`` process-wide (docs/openalgo.md §5), and the engine runs our numba
indicators. Intraday rows are stamped with the bar's start in epoch seconds; daily rows
with 00:00 UTC of the trading date, which becomes that day's session open here so the
bars line up with the ones the engine builds from ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
import msgspec

from mytrading.domain.bars import DAILY, BarBuilder
from mytrading.messaging import wire

HistoryFn = Callable[[str, str, str, date, date], list[wire.Bar]]
_enc = msgspec.json.Encoder()


class HistoryError(Exception):
    """The history endpoint failed (not "no data", which is an empty list)."""


def http_history(
    rest_url: str,
    api_key: str,
    timeout_s: float,
    builder_for: Callable[[str], BarBuilder],
    transport: httpx.BaseTransport | None = None,
) -> HistoryFn:
    """A history function over OpenAlgo's REST API (``transport``: the host's; None:
    the network). One client for every call, made at the first: a client made per call
    read the system's certificates each time (about 40 ms), and a warm-up asks once per
    instrument and timeframe. A call may run on a fetcher's thread (httpx's client is
    safe to share between threads)."""
    url = f"{rest_url.rstrip('/')}/api/v1/history"
    made: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not made:
            made.append(httpx.Client(timeout=timeout_s, transport=transport,
                                     headers={"Content-Type": "application/json"}))  # fmt: skip
        return made[0]

    def fetch(exchange: str, symbol: str, tf: str, start: date, end: date) -> list[wire.Bar]:
        body = {
            "apikey": api_key,
            "symbol": symbol,
            "exchange": exchange,
            "interval": tf,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
        }
        try:
            resp = client().post(url, content=_enc.encode(body))
            reply = msgspec.json.decode(resp.content)
        except (httpx.HTTPError, ValueError) as exc:  # msgspec's DecodeError: a ValueError
            raise HistoryError(f"history {symbol}: {exc}") from None
        if not isinstance(reply, dict):
            raise HistoryError(f"history {symbol}: HTTP {resp.status_code}")
        if reply.get("status") != "success":
            if reply.get("error_type") == "no_data":
                return []
            raise HistoryError(f"history {symbol}: {reply.get('message')}")
        return rows_to_bars(reply.get("data") or [], exchange, symbol, tf, builder_for(tf))

    return fetch


def rows_to_bars(
    rows: list[dict], exchange: str, symbol: str, tf: str, builder: BarBuilder
) -> list[wire.Bar]:
    out = []
    for r in rows:
        ts = int(r["timestamp"])
        if tf == DAILY:
            day = datetime.fromtimestamp(ts, UTC).date()
            noon = datetime(day.year, day.month, day.day, 6, 30, tzinfo=UTC)  # 12:00 IST
            start_ns = builder.span(exchange, int(noon.timestamp()) * 1_000_000_000)[0]
        else:
            start_ns = ts * 1_000_000_000
        out.append(
            wire.Bar(
                exchange=exchange,
                symbol=symbol,
                tf=tf,
                start_ns=start_ns,
                open=float(r["open"]),
                high=float(r["high"]),
                low=float(r["low"]),
                close=float(r["close"]),
                volume=int(r.get("volume") or 0),
                closed_by="history",
            )
        )
    return out
