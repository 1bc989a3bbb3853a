"""Errors that every layer may raise, in a module that imports nothing of ours."""

from __future__ import annotations


class ConfigError(Exception):
    """A bad configuration value; the message is meant for the operator."""
