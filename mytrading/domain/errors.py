"""Errors that every layer may raise, in a module that imports nothing of ours."""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    """A bad configuration value; the message is meant for the operator."""


def problems(exc: Any, whole: str = "") -> str:
    """A pydantic ``ValidationError`` for a person: each field's dotted name and what is
    wrong with it, ``; ``-joined (``whole`` names an error of the whole model)."""
    return "; ".join(
        f"{'.'.join(str(x) for x in e['loc']) or whole}: {e['msg']}" for e in exc.errors()
    )
