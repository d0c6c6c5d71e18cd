"""Resolve an import path from a spec against an allow-list of module prefixes.

An import path in a config file is code that will run, so only modules under
an allowed prefix are ever imported (the lesson of MLflow's recipe RCEs).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from atoll.errors import SpecError


def is_allowed(path: str, prefixes: Iterable[str]) -> bool:
    """True if ``path`` is a prefix itself or lies inside one of ``prefixes``."""
    return any(path == p or path.startswith(p.rstrip(".") + ".") for p in prefixes)


def resolve(path: str, prefixes: Iterable[str], field: str) -> Any:
    """Import ``module.Attribute`` if the module is allowed, else raise naming ``field``."""
    allowed = list(prefixes)
    module_name, _, attr = path.rpartition(".")
    if not module_name or not is_allowed(path, allowed):
        trusted = ", ".join(allowed) or "(none)"
        raise SpecError(
            f"{field}: {path!r} is not allowed; allowed module prefixes: {trusted} "
            "(add a prefix to 'allow_imports' in atoll.yaml to trust more)",
            problems=[(field, None, f"import path {path!r} is outside the allow-list")],
        )
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(
            f"{field}: cannot import {path!r}: {exc}",
            problems=[(field, None, f"cannot import {path!r}")],
        ) from exc
