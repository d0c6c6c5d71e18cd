"""The project spec, ``atoll.yaml``: pydantic models and a loader whose errors say where.

Every error names the field path (``columns.income.min``) and, when the
value came from YAML, its line. Unknown keys are errors, never ignored: a
typo in a spec must not silently change what gets trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from atoll._hashing import sha256_json
from atoll._sizes import parse_size
from atoll.errors import SpecError
from atoll.schema import Column, Schema
from atoll.spec_compress import CompressSpec
from atoll.spec_serve import MonitorSpec, ServeSpec
from atoll.types import MODEL_NAME_PATTERN, Role, Task

SPEC_FILE = "atoll.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _without_password(url: str) -> str:
    """Refuse credentials in the spec: it is committed, copied into every package."""
    if urlsplit(url).password:
        raise ValueError("the URL holds a password: name an environment variable instead")
    return url


class SqlSource(_Strict):
    """Rows from a SQL query on any SQLAlchemy URL, given here or in an environment variable."""

    url: str | None = None
    url_env: str | None = Field(None, description="Environment variable holding the URL.")
    query: str

    @model_validator(mode="after")
    def _one_url(self) -> SqlSource:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env'")
        if self.url is not None:
            _without_password(self.url)
        return self


class StoreSpec(_Strict):
    """Where the registry lives, when not in the project's ``.atoll/`` folder, and its quota.

    ``ATOLL_DB_URL`` overrides ``url`` and ``ATOLL_STORE_MAX_BYTES`` overrides
    ``max_bytes``. Credentials never belong in the spec: a URL with a password
    is refused, so it cannot end up in version control.
    """

    url: str | None = None
    max_bytes: int | None = Field(
        None,
        description="Quota of the artifact store: bytes, or a size such as '500MB' or '2GiB'.",
    )

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> int | None:
        return None if value is None else parse_size(value)

    @model_validator(mode="after")
    def _no_password(self) -> StoreSpec:
        if self.url is not None and urlsplit(self.url).password:
            raise ValueError("the URL holds a password: set ATOLL_DB_URL instead")
        return self


class DataSpec(_Strict):
    """Where the training rows come from and what to do with invalid ones."""

    path: str | None = Field(
        None, description="A CSV or Parquet file or glob, relative to the spec."
    )
    sql: SqlSource | None = None
    time_column: str | None = None
    on_invalid: Literal["abort", "drop"] = "abort"

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of 'path' or 'sql'")
        return self


class StepSpec(BaseModel):
    """One wrangling step: its name, the columns it reads and its own parameters."""

    model_config = ConfigDict(extra="allow", frozen=True)

    step: str
    columns: list[str] | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The step's own parameters (every key but ``step`` and ``columns``)."""
        return dict(self.model_extra or {})


class ModelSpec(_Strict):
    """The estimator, by import path, and its constructor parameters."""

    estimator: str
    params: dict[str, Any] = Field(default_factory=dict)


class SplitSpec(_Strict):
    """How rows are held out for evaluation."""

    method: Literal["random", "stratified", "time"] = "stratified"
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0


class EvaluateSpec(_Strict):
    """Metrics to report and the sensitive columns to check for fairness."""

    metrics: list[str] = Field(default_factory=list)
    fairness: list[str] | None = Field(None, description="Default: every sensitive column.")
    positive_class: str | int | bool | None = Field(
        None, description="Binary tasks: the label that counts as positive (default: the larger)."
    )


class Gate(_Strict):
    """A bound a new version must meet before it may be promoted."""

    metric: str
    min: float | None = None
    max: float | None = None
    column: str | None = Field(None, description="The sensitive column, for fairness metrics.")

    @model_validator(mode="after")
    def _has_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs 'min' or 'max'")
        return self


class Spec(_Strict):
    """A model project: everything needed to train, register and serve one model."""

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    description: str | None = None
    task: Task
    target: str
    data: DataSpec
    columns: dict[str, Column] = Field(min_length=1)
    features: list[StepSpec] = Field(default_factory=list)
    model: ModelSpec
    split: SplitSpec = Field(default_factory=SplitSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    gates: list[Gate] = Field(default_factory=list)
    store: StoreSpec | None = None
    compress: CompressSpec = Field(default_factory=CompressSpec)
    serve: ServeSpec = Field(default_factory=ServeSpec)
    monitor: MonitorSpec = Field(default_factory=MonitorSpec)
    allow_imports: list[str] = Field(
        default_factory=list,
        description="Module prefixes beyond the built-in allow-list that estimators and "
        "steps may be imported from (an import path in a spec is code to run).",
    )

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> Spec:
        _check_target(self)
        _check_named_columns(self)
        return self

    @property
    def schema(self) -> Schema:  # type: ignore[override]  # shadows pydantic's deprecated schema()
        """The column schema, with the target's role set to ``target``."""
        columns = {
            name: col.model_copy(update={"role": Role.TARGET}) if name == self.target else col
            for name, col in self.columns.items()
        }
        return Schema(columns, self.target)

    @property
    def sensitive_columns(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.sensitive]

    @property
    def fairness_columns(self) -> list[str]:
        configured = self.evaluate.fairness
        return self.sensitive_columns if configured is None else configured

    @property
    def digest(self) -> str:
        """sha256 of the spec's canonical JSON: the same spec always hashes the same."""
        return sha256_json(self.model_dump(mode="json"))


class _FieldProblem(ValueError):
    """A cross-field check's failure, with the path of the field it is about."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _check_target(spec: Spec) -> None:
    if spec.target not in spec.columns:
        raise _FieldProblem(("target",), f"target {spec.target!r} is not one of the columns")
    target = spec.columns[spec.target]
    where = ("columns", spec.target, "type")
    if spec.task is Task.REGRESSION and not target.type.is_numeric:
        raise _FieldProblem(where, f"a regression target must be numeric, not {target.type}")
    if target.role not in (Role.FEATURE, Role.TARGET):
        raise _FieldProblem(
            ("columns", spec.target, "role"), f"the target cannot have role {target.role}"
        )


def _check_named_columns(spec: Spec) -> None:
    named: dict[tuple[str | int, ...], list[str]] = {
        ("data", "time_column"): [spec.data.time_column] if spec.data.time_column else [],
        ("evaluate", "fairness"): spec.evaluate.fairness or [],
    }
    for index, gate in enumerate(spec.gates):
        named[("gates", index, "column")] = [gate.column] if gate.column else []
    for index, step in enumerate(spec.features):
        named[("features", index, "columns")] = step.columns or []
    for loc, names in named.items():
        unknown = [n for n in names if n not in spec.columns]
        if unknown:
            raise _FieldProblem(loc, f"unknown columns: {', '.join(unknown)}")
    if spec.evaluate.positive_class is not None and spec.task is not Task.BINARY:
        raise _FieldProblem(("evaluate", "positive_class"), "applies to binary tasks only")
    if spec.split.method == "time" and not spec.data.time_column:
        raise _FieldProblem(("split", "method"), "a time split needs data.time_column")


class ProjectOptions(BaseModel):
    """The spec sections that every command of a project needs, read leniently.

    Registry commands (``models list``, ``rollback``) and the server must keep
    working while someone edits the training sections, so only these are validated here.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    store: StoreSpec | None = None
    allow_imports: list[str] = Field(default_factory=list)
    compress: CompressSpec = Field(default_factory=CompressSpec)
    serve: ServeSpec = Field(default_factory=ServeSpec)
    monitor: MonitorSpec = Field(default_factory=MonitorSpec)


def load_project_options(path: Path) -> ProjectOptions:
    """The ``store``, ``allow_imports``, ``compress``, ``serve`` and ``monitor`` sections.

    Each is its defaults when absent.
    """
    if not path.is_file():
        return ProjectOptions()
    raw, lines = _load_yaml(path.read_text(encoding="utf-8"), str(path))
    try:
        return ProjectOptions.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError as exc:
        problems = [_problem(error, lines) for error in exc.errors()]
        raise SpecError(f"{path}: invalid spec", path=str(path), problems=problems) from None


def load_spec(path: Path | str) -> Spec:
    """Read and validate ``atoll.yaml`` (or a directory holding one)."""
    file = Path(path)
    if file.is_dir():
        file = file / SPEC_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec {file}: {exc.strerror or exc}", path=str(file)) from exc
    return parse_spec(text, source=str(file))


def parse_spec(text: str, source: str = SPEC_FILE) -> Spec:
    """Validate spec text; errors carry field paths and YAML line numbers."""
    raw, lines = _load_yaml(text, source)
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the spec must be a mapping of sections", path=source)
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(error, lines) for error in exc.errors()]
        raise SpecError(f"{source}: invalid spec", path=source, problems=problems) from None


def _problem(error: Any, lines: dict[tuple[str, ...], int]) -> tuple[str, int | None, str]:
    cause = error.get("ctx", {}).get("error")
    full = cause.loc if isinstance(cause, _FieldProblem) else tuple(error["loc"])
    loc = tuple(str(part) for part in full)
    while loc and loc not in lines:
        loc = loc[:-1]
    field = _dotted(full) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return field, lines.get(loc), message


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _load_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise SpecError(
            f"{source}: malformed YAML",
            path=source,
            problems=[("(yaml)", line, str(getattr(exc, "problem", None) or exc))],
        ) from None
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return raw, lines


def _record_lines(
    node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            if child in lines:
                line = key.start_mark.line + 1
                field = _dotted(child)
                raise SpecError("duplicate key", problems=[(field, line, "key given twice")])
            _record_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, str(index)), lines)
