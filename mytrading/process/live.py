"""Real orders need two things: ``MT_MODE=live`` and the operator's confirmation at start.

``main.py start --live`` / ``run --live`` (or, in a terminal, typing ``LIVE`` when asked)
confirms: the CLI asks each account's OpenAlgo who it is (``openalgo/identity.py``), shows
where orders will go, and writes ``live.json`` (mode 0600) in the private runtime
directory: a fresh token, the time, who confirmed, and each account's host and identity.
The token also goes to the stack's environment (``MT_LIVE_TOKEN``). The router starts in
live mode only when the two match and the file names the accounts configured now, with
the same hosts; anything else (a ``.env`` that says live, a daemon started by hand, an
account changed since) refuses to start. ``stop`` removes the file, so every start asks
again, and a reboot (which empties the runtime directory) too.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from mytrading.domain.accounts import Accounts
from mytrading.domain.refdata import IST
from mytrading.process.rundir import ensure_private_dir
from mytrading.settings import ConfigError, Settings

FILE = "live.json"
TOKEN_ENV = "MT_LIVE_TOKEN"


class NotConfirmedError(ConfigError):
    """Live mode without the operator's confirmation for this configuration."""


def path(settings: Settings) -> Path:
    return settings.runtime_dir() / FILE


def identify(settings: Settings, accounts: Accounts) -> dict[str, Any]:
    """Each account's OpenAlgo, asked who it is: {account: {host, ws_url, broker, user_id,
    analyze, problem}}."""
    from mytrading.openalgo.identity import who

    out = {}
    for name, a in accounts.by_name.items():
        ident = who(a.rest_url, a.ws_url, a.api_key, min(settings.openalgo.timeout_s, 3.0))
        out[name] = {
            "host": a.rest_url,
            "ws_url": a.ws_url,
            "broker": ident.broker,
            "user_id": ident.user_id,
            "analyze": ident.analyze,
            "problem": ident.problem,
            "label": ident.label(),
        }
    return out


def check_brokers(
    settings: Settings, accounts: Accounts, confirmation: dict[str, Any]
) -> list[str]:
    """At a live start: each account's OpenAlgo must still be the broker account the
    operator confirmed. One that does not answer now is let be (it may be restarting: its
    name is returned); one that answers as another broker raises ``NotConfirmedError``:
    its orders would go elsewhere."""
    from mytrading.openalgo.rest import OpenAlgoREST

    silent = []
    for name, acct in accounts.by_name.items():
        want = (confirmation.get("accounts") or {}).get(name) or {}
        rest = OpenAlgoREST(acct.api_key, acct.rest_url, settings.openalgo.timeout_s)
        try:
            reply = rest.ping()
        finally:
            rest.close()
        broker = str((reply.get("data") or {}).get("broker", "")) if "data" in reply else ""
        if not broker:
            silent.append(name)
        elif want.get("broker") and broker != want["broker"]:
            raise NotConfirmedError(
                f"account {name}: {acct.rest_url} now answers as broker {broker!r}, "
                f"confirmed as {want['broker']!r}: confirm again with --live"
            )
    return silent


def confirm(settings: Settings, found: dict[str, Any], by: str) -> str:
    """Write the confirmation for this configuration; returns the token for the stack's
    environment."""
    token = secrets.token_hex(16)
    body = {
        "token": token,
        "at": datetime.now(IST).isoformat(timespec="seconds"),
        "by": by,
        "accounts": found,
    }
    p = path(settings)
    ensure_private_dir(p.parent)  # ours, 0700: nobody else may plant a confirmation
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh)
    tmp.replace(p)
    return token


def confirmed(settings: Settings, accounts: Accounts) -> dict[str, Any]:
    """The confirmation in force for this configuration, or ``NotConfirmedError`` saying why."""
    p = path(settings)
    token = os.environ.get(TOKEN_ENV, "")
    try:
        body = json.loads(p.read_text())
    except FileNotFoundError:
        raise NotConfirmedError(
            "MT_MODE=live without the operator's confirmation: start it with "
            "`main.py start --live` (or `run --live`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise NotConfirmedError(f"{p} is unreadable ({exc}): confirm again with --live") from None
    if not token or not secrets.compare_digest(token, str(body.get("token", ""))):
        raise NotConfirmedError(
            f"this process was not started by the confirmed start ({TOKEN_ENV} does not match "
            f"{p}): start the stack with `main.py start --live`"
        )
    got = body.get("accounts") or {}
    want = {n: a.rest_url for n, a in accounts.by_name.items()}
    have = {n: (v or {}).get("host") for n, v in got.items()}
    if want != have:
        raise NotConfirmedError(
            f"the accounts confirmed ({have}) are not the accounts configured now ({want}): "
            "confirm again with --live"
        )
    return body


def reported(body: dict[str, Any]) -> dict[str, str]:
    """{account: "broker:user"} from a confirmation: what each account's state is kept by."""
    out = {}
    for name, a in (body.get("accounts") or {}).items():
        who = f"{a.get('broker') or '?'}:{a.get('user_id') or '?'}"
        out[name] = who + (":analyze" if a.get("analyze") else "")
    return out


def revoke(settings: Settings) -> None:
    """The stack stopped: the next start asks again."""
    try:
        path(settings).unlink()
    except FileNotFoundError:
        return
