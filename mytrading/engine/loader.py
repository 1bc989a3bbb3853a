"""Finds ``BaseStrategy`` subclasses in the strategies directory."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from mytrading.engine.strategy import BaseStrategy


class StrategyLoadError(Exception):
    """A strategy file that does not import, or two strategies with one name."""


def sibling(path: str | Path, stem: str) -> ModuleType:
    """The strategy module ``stem`` beside ``path`` (a strategy file), as ``discover``
    loads it: a strategy that builds on another's class imports it this way, since
    ``strategies/`` is a directory of files, not a package."""
    name = f"mt_strategies.{stem}"
    module = sys.modules.get(name)
    if module is not None:
        return module
    file = Path(path).with_name(f"{stem}.py")
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"{file}: not a strategy module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def discover(directory: Path) -> dict[str, type[BaseStrategy]]:
    """Import every ``*.py`` in the directory; map each strategy's ``name`` to its class.

    A file that fails to import is reported with its path; two classes claiming one
    name are an error, since the name keys configuration and orders.
    """
    found: dict[str, type[BaseStrategy]] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        mod_name = f"mt_strategies.{path.stem}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise StrategyLoadError(f"{path}: {type(exc).__name__}: {exc}") from exc
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseStrategy) and obj is not BaseStrategy and obj.name:
                if obj.__module__ != mod_name:
                    continue  # imported from elsewhere, not defined here
                if obj.name in found and found[obj.name] is not obj:
                    raise StrategyLoadError(f"two strategies are named {obj.name!r}")
                found[obj.name] = obj
    return found


def select(
    available: dict[str, type[BaseStrategy]], enabled: list[str]
) -> list[type[BaseStrategy]]:
    missing = [n for n in enabled if n not in available]
    if missing:
        raise StrategyLoadError(
            f"MT_STRATEGIES names {missing}, not found; available: {sorted(available)}"
        )
    return [available[n] for n in enabled]
