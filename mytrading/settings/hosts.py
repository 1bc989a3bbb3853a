"""Host names and addresses in settings: well formed, and whether one is this machine only."""

from __future__ import annotations

import ipaddress
import re


def bad_host(host: str) -> str | None:
    """Why ``host`` is not a host name or an IP address (None when it is one)."""
    if _is_address(host):
        return None
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if len(host) <= 253 and re.fullmatch(rf"{label}(\.{label})*\.?", host):
        return None
    return f"{host!r} is not a host name or an IP address"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_url(address: str) -> bool:
    """A bus address on this machine only: ipc, inproc, or tcp to a loopback host."""
    if not address.startswith("tcp://"):
        return True
    host = address[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    return is_loopback(host)


def a_host(v: str) -> str:
    """A validator's check: ``v`` is a host name or an address."""
    why = bad_host(v)
    if why:
        raise ValueError(why)
    return v


def hosts(v: list[str]) -> list[str]:
    """A validator's check: each of ``v`` is a host name or an address."""
    for h in v:
        a_host(h)
    return v
