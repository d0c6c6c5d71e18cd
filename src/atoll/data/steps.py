"""Wrangling steps: the :class:`Step` contract, the built-ins by name, and resolving a name.

A step named in ``atoll.yaml`` is either a built-in (a bare name such as
``impute``) or a user class given by import path (a name with a dot). An
import path is code that will run, so it is only imported from module
prefixes the project trusts (``allow_imports``), and it must be a
:class:`Step`, so it can be fitted, stored as JSON and applied like any other.
"""

from __future__ import annotations

from atoll._imports import resolve
from atoll.data.steps_base import Step
from atoll.data.steps_categorical import OneHot, Ordinal
from atoll.data.steps_datetime import DatetimeParts
from atoll.data.steps_numeric import Bucketize, Clip, Impute, Log1p, Scale
from atoll.errors import SpecError

__all__ = [
    "BUILTIN_STEPS",
    "Bucketize",
    "Clip",
    "DatetimeParts",
    "Impute",
    "Log1p",
    "OneHot",
    "Ordinal",
    "Scale",
    "Step",
    "resolve_step",
    "step_reference",
]

BUILTIN_STEPS: dict[str, type[Step]] = {
    step.name: step
    for step in (Impute, Scale, Clip, Log1p, OneHot, Ordinal, Bucketize, DatetimeParts)
}


def resolve_step(name: str, allow_imports: list[str], field: str) -> type[Step]:
    """The step class a spec names: a built-in by name, or an allowed import path.

    Raises:
        SpecError: naming ``field`` when the name is unknown, the import path
            is outside ``allow_imports`` or cannot be imported, or the object is
            not a :class:`Step` subclass.
    """
    if "." not in name:
        if name not in BUILTIN_STEPS:
            known = ", ".join(sorted(BUILTIN_STEPS))
            text = f"unknown step {name!r}; built-in steps: {known} (or a Step import path)"
            raise SpecError(f"{field}: {text}", problems=[(field, None, text)])
        return BUILTIN_STEPS[name]
    found = resolve(name, allow_imports, field)
    if not (isinstance(found, type) and issubclass(found, Step)):
        text = f"{name!r} is not a subclass of atoll.data.steps.Step"
        raise SpecError(f"{field}: {text}", problems=[(field, None, text)])
    return found


def step_reference(step: Step) -> str:
    """How a state file names ``step``'s class: its built-in name, else its import path."""
    kind = type(step)
    if BUILTIN_STEPS.get(getattr(kind, "name", "")) is kind:
        return kind.name
    return f"{kind.__module__}.{kind.__qualname__}"
