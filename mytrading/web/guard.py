"""What every HTTP server of the stack does before and after its handlers (aiohttp).

* **Host**: a request whose ``Host`` header is not one of the server's names is refused
  (421). A web page elsewhere can make a browser on this machine resolve its own name to
  127.0.0.1 (DNS rebinding) and then read the dashboard as same-origin; the Host header
  still carries the page's name, so it never gets an answer.
* **Token** (the dashboard and /metrics): when one is configured, every request needs
  ``Authorization: Bearer <token>`` or basic auth with the token as password (a browser
  asks for it once and sends it with the page's ``/events`` too). Compared in constant time.
* **Headers** on every response, streams and errors included: a Content-Security-Policy,
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

# An API's answers are data: nothing in them may load or run anything
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_csp(html: str) -> str:
    """A policy for one self-contained page: its own inline script and style blocks (by
    their SHA-256), requests to its own origin, nothing else; never inside a frame."""

    def hashes(tag: str) -> str:
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
        return " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
            for b in blocks
        )

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def host_names(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names a server answers to: loopback's, its bind address, and ``extra``."""
    names = set(LOOPBACK_NAMES) | {bind_host} | set(extra)
    return frozenset(n.lower().strip("[]") for n in names if n and n not in ("0.0.0.0", "::"))


def _host_of(header: str) -> str:
    """``Host`` without its port (``[::1]:80`` -> ``::1``), lower case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def authorized(header: str, token: str) -> bool:
    """``Authorization`` carries ``token`` (Bearer, or basic auth's password)."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.partition(":")[2].encode(), token.encode())
    return False


def protect(
    app: web.Application,
    names: frozenset[str],
    token: str = "",
    csp: Callable[[web.Request], str] | str = API_CSP,
    refused: Callable[[str], None] | None = None,
    own_auth: Callable[[web.Request], bool] | None = None,
) -> web.Application:
    """Put the Host check, the token (when given) and the headers on ``app``. A request
    ``own_auth`` claims is authenticated by its handler instead (the control API: its own
    tokens, or the dashboard's); the Host check and the headers hold for it too."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _host_of(request.headers.get("Host", "")) not in names:
            if refused:
                refused("host")
            return web.json_response(
                {
                    "status": "error",
                    "message": "unknown Host: this server answers to its own names",
                },
                status=421,
            )
        if (
            token
            and not (own_auth and own_auth(request))
            and not authorized(request.headers.get("Authorization", ""), token)
        ):
            if refused:
                refused("token")
            return web.json_response(
                {"status": "error", "message": "authentication required"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="mytrading", charset="UTF-8"'},
            )
        return await handler(request)

    async def headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Content-Security-Policy"] = csp(request) if callable(csp) else csp
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"

    app.middlewares.append(guard)
    app.on_response_prepare.append(headers)
    return app
