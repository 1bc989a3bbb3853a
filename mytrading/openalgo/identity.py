"""Who an OpenAlgo server says the account behind an API key is.

OpenAlgo has no REST call that names the user: ``ping`` answers the broker
(``{"data": {"message": "pong", "broker": "zerodha"}}``), ``analyzer`` whether the server
is in Analyzer (sandbox) mode, and the WebSocket's authentication reply carries
``user_id`` and ``broker`` (docs/openalgo.md §1-4). Together they tell
one broker account from another, which is what the stack's state is kept by
(``venue.py``): a day traded on one account is never restored against another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import websocket


@dataclass(frozen=True)
class Identity:
    broker: str = ""
    user_id: str = ""
    analyze: bool | None = None  # OpenAlgo's Analyzer (sandbox) mode, if it said
    problem: str = ""  # why something could not be read ("" when all was)

    def label(self) -> str:
        who = f"{self.broker or '?'}, user {self.user_id or '?'}"
        if self.analyze:
            who += ", ANALYZER (sandbox) mode"
        return who


def who(rest_url: str, ws_url: str, api_key: str, timeout_s: float = 3.0) -> Identity:
    """Ask the server (REST ``ping`` and ``analyzer``, then a WebSocket authentication)."""
    problems = []
    broker, user, analyze = "", "", None
    try:
        with httpx.Client(base_url=f"{rest_url.rstrip('/')}/api/v1/", timeout=timeout_s) as c:
            r = c.post("ping", json={"apikey": api_key})
            body = (
                r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            )
            if r.status_code == 200 and isinstance(body, dict):
                broker = str((body.get("data") or {}).get("broker", ""))
            else:
                msg = body.get("message") if isinstance(body, dict) else ""
                problems.append(f"ping: HTTP {r.status_code} {msg or ''}".strip())
            r = c.post("analyzer", json={"apikey": api_key})
            if r.status_code == 200:
                data = (r.json() or {}).get("data") or {}
                if "analyze_mode" in data:
                    analyze = bool(data["analyze_mode"])
    except (httpx.HTTPError, ValueError) as exc:
        problems.append(f"REST: {type(exc).__name__}")
    try:
        ws = websocket.create_connection(ws_url, timeout=timeout_s)
        try:
            ws.send(json.dumps({"action": "authenticate", "api_key": api_key}))
            for _ in range(20):
                msg = json.loads(ws.recv())
                if isinstance(msg, dict) and msg.get("type") == "auth":
                    user = str(msg.get("user_id", ""))
                    broker = broker or str(msg.get("broker", ""))
                    break
                if isinstance(msg, dict) and msg.get("status") == "error":
                    problems.append(f"WebSocket: {msg.get('message', 'refused')}")
                    break
        finally:
            ws.close()
    except (OSError, ValueError, websocket.WebSocketException) as exc:
        problems.append(f"WebSocket: {type(exc).__name__}")
    return Identity(broker, user, analyze, "; ".join(problems))
