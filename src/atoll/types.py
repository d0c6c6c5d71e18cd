"""The small shared vocabulary every layer speaks: tasks, column types, model refs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from atoll.errors import AtollError

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Model names never reach a path join, and this allow-list keeps them boring."""

ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,63}$"
"""An alias starts with a letter, so ``name@3`` is always a version, never an alias."""

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_ALIAS = re.compile(ALIAS_PATTERN)


class Task(StrEnum):
    """What the model predicts."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"

    @property
    def is_classification(self) -> bool:
        return self is not Task.REGRESSION


class ColumnType(StrEnum):
    """The logical type of a column, independent of how a file stores it."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CATEGORY = "category"
    STRING = "string"
    DATETIME = "datetime"

    @property
    def is_numeric(self) -> bool:
        return self in (ColumnType.FLOAT, ColumnType.INT, ColumnType.BOOL)

    @property
    def profile_kind(self) -> str:
        """How the reference profile summarises the column."""
        if self.is_numeric:
            return "numeric"
        return "datetime" if self is ColumnType.DATETIME else "categorical"


class Role(StrEnum):
    """What a column is for. Only ``feature`` columns reach the estimator."""

    FEATURE = "feature"
    TARGET = "target"
    ID = "id"
    TIME = "time"
    IGNORE = "ignore"


class InvalidNameError(AtollError, ValueError):
    """A model name, alias or reference does not match its allow-list."""


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise with the rule."""
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit, at most 128 characters)",
            model=name,
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias, else raise with the rule."""
    if not _ALIAS.fullmatch(alias):
        raise InvalidNameError(
            f"invalid alias {alias!r}: start with a letter; then letters, digits, '.', '_', '-'",
            alias=alias,
        )
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to one model version: ``name@alias``, ``name@3`` or bare ``name``.

    A bare name means the ``production`` alias when loading, the model itself
    when listing.
    """

    name: str
    alias: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``name``, ``name@alias`` or ``name@<version>``."""
        name, at, selector = text.partition("@")
        check_model_name(name)
        if not at:
            return cls(name)
        if selector.isascii() and selector.isdigit() and int(selector) > 0:
            return cls(name, version=int(selector))
        return cls(name, alias=check_alias(selector))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        return f"{self.name}@{self.alias}" if self.alias else self.name
