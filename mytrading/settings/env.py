"""How a settings section reads its variables, and the environment name of each field.

Every section is a frozen ``BaseSettings`` read from the environment and the checkout's
``.env``; a field's variable is the section's prefix and its name in upper case
(``MT_ROUTER_`` + ``max_attempts``), or, for a field whose variable predates its section,
the alias it declares (``journal_fsync`` of the router: ``MT_JOURNAL_FSYNC``). Fields are
documented by the docstring under them, read from the source by ``field_docs`` when asked
for. (Not by pydantic's ``use_attribute_docstrings``: that parses the source of every
section at import, 0.13 s of CPU in each of the hundreds of processes a test run starts,
for text no daemon reads.)
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def from_env(prefix: str) -> SettingsConfigDict:
    """Variables named ``<prefix><FIELD>`` (or a field's alias), from the environment and
    ``.env``; others ignored; defaults validated too; frozen once read."""
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        frozen=True,
        populate_by_name=True,
    )


def csv(v: object) -> object:
    """A comma-separated environment value as a list (a list is kept)."""
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return v


def env_name(model: type[BaseModel], field: str) -> str:
    """The variable that sets ``field`` of ``model``."""
    info = model.model_fields[field]
    if isinstance(info.validation_alias, str):
        return info.validation_alias.upper()
    return str(model.model_config.get("env_prefix", "")).upper() + field.upper()


def field_of(model: type[BaseModel], loc: str) -> str | None:
    """The field an error's location names: its name, or its alias (as pydantic gives
    it for a value read from the environment)."""
    if loc in model.model_fields:
        return loc
    for name, info in model.model_fields.items():
        if isinstance(info.validation_alias, str) and info.validation_alias.upper() == loc.upper():
            return name
    return None


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstring under each field declared in ``model``'s own class body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    body = tree.body[0].body  # type: ignore[attr-defined]  # the class definition's
    out: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[node.target.id] = inspect.cleandoc(after.value.value)
    return out
