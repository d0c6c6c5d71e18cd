"""The one error tree of atoll, with structured context.

Every failure a user can cause is an :class:`AtollError`. Errors carry what
they are about (a field path, a column, a row, a model reference, a file) as
attributes, so each face maps them on its own terms: the CLI to exit codes,
the HTTP server to status codes. No status or exit code lives here.

    AtollError
    ├── SpecError (ValueError)             atoll.yaml is malformed or invalid
    ├── SchemaError (ValueError)           data violates the column schema
    ├── DataError (ValueError)             a data file or query cannot be read or is unusable
    ├── TrainingError                      an estimator failed to fit or predict
    ├── CompressionError                   no smaller model met the accuracy budget
    ├── NotFittedError (ValueError)        a step or predictor used before fit
    ├── PackageError                       a model package is malformed
    │   └── IntegrityError                 a file's sha256 does not match the manifest
    ├── RegistryError
    │   ├── NotFoundError (LookupError)    unknown model, version or alias
    │   ├── PromotionError                 a version may not take that alias
    │   └── StorageFullError               the artifact store is over its quota, or the disk is full
    ├── StoreUnavailableError              the database is locked or unreachable
    └── MissingDependencyError (ImportError) an optional extra is not installed
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atoll.schema import ValidationReport


class AtollError(Exception):
    """Base of every error atoll raises on purpose."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {key: value for key, value in context.items() if value is not None}

    def __str__(self) -> str:
        return self.message


class SpecError(AtollError, ValueError):
    """The project spec is malformed or invalid.

    Attributes:
        problems: one ``(field_path, line, message)`` per problem found.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        problems: list[tuple[str, int | None, str]] | None = None,
    ) -> None:
        self.problems = problems or []
        details = "".join(
            f"\n  {field}{f' (line {line})' if line else ''}: {text}"
            for field, line, text in self.problems
        )
        super().__init__(message + details, path=path)


class SchemaError(AtollError, ValueError):
    """Data violates the column schema; ``report`` lists every violated rule."""

    def __init__(self, report: ValidationReport, source: str | None = None) -> None:
        self.report = report
        where = f" in {source}" if source else ""
        super().__init__(
            f"data does not match the schema{where}:\n{report.summary()}", source=source
        )


class DataError(AtollError, ValueError):
    """A data source cannot be read, or what it holds cannot be used."""


class TrainingError(AtollError):
    """The estimator failed to fit, or the fitted model failed to predict."""


class CompressionError(AtollError):
    """No candidate representation met the accuracy budget, so nothing was registered.

    Attributes:
        report: what each candidate cost (an ``atoll.model.compress.CompressReport``).
    """

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message)
        self.report = report


class NotFittedError(AtollError, ValueError):
    """A step or predictor was used before it was fitted."""


class PackageError(AtollError):
    """A model package is malformed, or holds a format atoll will not load."""


class IntegrityError(PackageError):
    """A file does not match the sha256 recorded for it: refuse to load it."""


class RegistryError(AtollError):
    """A registry operation cannot be carried out."""


class NotFoundError(RegistryError, LookupError):
    """An unknown model, version or alias."""


class PromotionError(RegistryError):
    """A version may not take the requested alias (e.g. it failed its gates)."""


class StorageFullError(RegistryError):
    """A write would take the artifact store over its quota, or the disk is full.

    Nothing was stored and the registry is unchanged.
    """


class StoreUnavailableError(AtollError):
    """The database stayed locked or unreachable after retries."""


class MissingDependencyError(AtollError, ImportError):
    """An optional dependency is missing; the message names the pip extra."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'atoll[{extra}]'",
            package=package,
            extra=extra,
        )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), else its type's name.

    For messages that quote a library's error: the rest of its text is detail.
    """
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
