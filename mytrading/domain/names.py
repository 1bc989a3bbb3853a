"""The one rule every strategy and webhook name follows.

A name keys the bus topics of its strategy (``exec.fill.<name>``, ``risk.event.<name>``),
its risk limits, its journal entries and its order ids (``<name>.<intent>``). A frame on
the bus is ``topic + b" " + body``, so a space in a name splits the topic and the message
is lost to every reader; a dot or an ``@`` would be read as an order-id or follower-book
separator. Hence one rule, checked wherever a name is read (settings, strategy files,
``config/*.toml``, the webhook store): lowercase letters, digits and ``_``, 1 to 32
characters. Anything else is a configuration error that names its source, and nothing
starts.
"""

from __future__ import annotations

import re

IDENT = re.compile(r"^[a-z0-9_]{1,32}$")
RULE = "lowercase letters, digits and _, 1-32 characters"


def bad_name(name: object) -> str:
    """Why ``name`` is not a valid strategy or webhook name ("" when it is)."""
    if not isinstance(name, str):
        return f"a name is a string, got {type(name).__name__}"
    if IDENT.match(name):
        return ""
    return f"{name!r} is not a valid name ({RULE})"


def check_names(names: list[str] | set[str] | tuple[str, ...], where: str) -> None:
    """Raise ``ConfigError`` naming ``where`` for the first name that breaks the rule."""
    from mytrading.domain.errors import ConfigError

    for name in names:
        why = bad_name(name)
        if why:
            raise ConfigError(f"{where}: {why}")
