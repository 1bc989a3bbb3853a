"""OpenAlgo's order, account and quote REST calls, on one kept-alive HTTP connection.

The router used the official SDK for these calls. Two measured reasons moved it to this
client (the SDK stays the reference in the contract tests and for everything else):

* **Restart time.** Importing ``openalgo`` costs about 1.1 s on this machine (pandas and
  the numba indicator kernels, docs/openalgo.md §5), a third of the 3 s in which a
  killed router must be back (``bench/recovery.py``). ``httpx`` alone imports in 0.08 s.
* **One connection.** The SDK opens a new TCP connection for every call
  (``httpx.post``); this client keeps one open, which halves the cost of a call on
  loopback (``bench/recovery.py`` reports the router's orders per second).

Requests and replies are the SDK's, field for field (``openalgo/orders.py``,
``openalgo/account.py`` of 1.0.47): the same payloads with numbers as strings, and the
same failure dicts (``status``, ``message``, ``code``, ``error_type``), so
``orders.classify`` reads both alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

# A venue in this process (``mytrading/sim/local.py``): endpoint and JSON request body in,
# HTTP status and JSON reply body out. The same bytes as over HTTP, without the socket
# and without httpx's request objects (about 60 us a call here).
Exchange = Callable[[str, bytes], tuple[int, bytes]]
_enc = msgspec.json.Encoder()


class OpenAlgoREST:
    def __init__(
        self,
        api_key: str,
        host: str,
        timeout: float,
        local: Exchange | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``local``: the venue in this process that takes the requests instead of HTTP to
        ``host``; ``transport``: what carries the requests (the simulation's, which serves
        them by the simulated broker's own request handling; None: the network)."""
        self.api_key = api_key
        self.local = local
        self._host, self._timeout, self._transport = host, timeout, transport
        self._client: httpx.Client | None = None
        # each endpoint's absolute URL, made once: httpx merged the base URL with the
        # endpoint's path (parsing both) on every call
        self._urls: dict[str, httpx.URL] = {}

    @property
    def client(self) -> httpx.Client:
        """The HTTP client, made at its first use: a venue in this process never needs
        one (making it reads the system's certificates: 40 ms)."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=f"{self._host.rstrip('/')}/api/v1/",
                timeout=self._timeout,
                headers={"Content-Type": "application/json"},
                transport=self._transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _post(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = {"apikey": self.api_key, **payload}
        if self.local is not None:
            return _reply(*self.local(endpoint, _enc.encode(body)))
        try:
            url = self._urls.get(endpoint)
            if url is None:
                url = self._urls[endpoint] = self.client.base_url.join(endpoint)
            # the body encoded here (msgspec: the same JSON, made faster than httpx's
            # json.dumps); the client's headers say it is JSON
            response = self.client.post(url, content=_enc.encode(body))
        except httpx.TimeoutException:
            return _fail("Request timed out. The server took too long to respond.", "timeout_error")
        except httpx.ConnectError:
            # No connection was made, so no request was written: certainly not received.
            return _fail(
                "Failed to connect to the server. Please check if the server is running.",
                "connection_error",
            )
        except httpx.HTTPError as exc:
            return _fail(f"HTTP error occurred: {exc}", "http_error")
        reply = _reply(response.status_code, response.content)
        wait = response.headers.get("Retry-After")
        if response.status_code == 429 and wait:
            with contextlib.suppress(ValueError):  # an HTTP date: the body's limit decides
                reply["retry_after"] = max(0.0, float(wait))
        return reply

    # ------------------------------------------------------------------ orders

    def placeorder(
        self,
        *,
        strategy: str,
        symbol: str,
        action: str,
        exchange: str,
        price_type: str,
        product: str,
        quantity: int,
        price: float = 0.0,
        trigger_price: float = 0.0,
    ) -> dict[str, Any]:
        return self._post(
            "placeorder",
            {
                "strategy": strategy,
                "symbol": symbol,
                "action": action,
                "exchange": exchange,
                "pricetype": price_type,
                "product": product,
                "quantity": str(quantity),
                "price": str(price),
                "trigger_price": str(trigger_price),
            },
        )

    def modifyorder(
        self,
        *,
        order_id: str,
        strategy: str,
        symbol: str,
        action: str,
        exchange: str,
        price_type: str,
        product: str,
        quantity: str,
        price: str,
        trigger_price: str = "0",
    ) -> dict[str, Any]:
        return self._post(
            "modifyorder",
            {
                "orderid": order_id,
                "strategy": strategy,
                "symbol": symbol,
                "action": action,
                "exchange": exchange,
                "pricetype": price_type,
                "product": product,
                "quantity": str(quantity),
                "price": str(price),
                "disclosed_quantity": "0",
                "trigger_price": str(trigger_price),
            },
        )

    def cancelorder(self, *, order_id: str, strategy: str = "Python") -> dict[str, Any]:
        return self._post("cancelorder", {"orderid": order_id, "strategy": strategy})

    def orderstatus(self, *, order_id: str, strategy: str = "Python") -> dict[str, Any]:
        return self._post("orderstatus", {"orderid": order_id, "strategy": strategy})

    # -------------------------------------------------------------------- data

    def quotes(self, *, symbol: str, exchange: str) -> dict[str, Any]:
        return self._post("quotes", {"symbol": symbol, "exchange": exchange})

    # ----------------------------------------------------------------- account

    def orderbook(self) -> dict[str, Any]:
        return self._post("orderbook", {})

    def tradebook(self) -> dict[str, Any]:
        return self._post("tradebook", {})

    def positionbook(self) -> dict[str, Any]:
        return self._post("positionbook", {})

    def funds(self) -> dict[str, Any]:
        return self._post("funds", {})

    def ping(self) -> dict[str, Any]:
        """OpenAlgo's ``ping``: ``data.broker`` names the broker behind the key."""
        return self._post("ping", {})

    def margin(self, *, positions: list[dict[str, Any]]) -> dict[str, Any]:
        return self._post("margin", {"positions": positions})


def _reply(code: int, raw: bytes) -> dict[str, Any]:
    """A reply as the SDK returns it: the body on success, else its failure dict."""
    if code != 200:
        return _fail(f"HTTP {code}: {raw.decode(errors='replace')}", "http_error", code)
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return _fail("Invalid JSON response from server", "json_error")
    if not isinstance(data, dict):
        return _fail("Invalid JSON response from server", "json_error")
    if data.get("status") == "error":
        return _fail(str(data.get("message", "Unknown error")), "api_error", 200)
    return data


def _fail(message: str, error_type: str, code: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "error", "message": message, "error_type": error_type}
    if code is not None:
        out["code"] = code
    return out
