"""JSON Schemas of the request and response bodies, derived from a model's column schema.

A request schema allows exactly the JSON values :meth:`atoll.schema.Schema.validate`
accepts, because schemathesis tests it both ways: what the schema allows must
not be refused, what it forbids must be. So the validator's casts are allowed
(an integer for a text column, ``0``/``1`` for a bool, ``3.0`` for an integer),
and what it refuses is not. Rules JSON Schema cannot state across fields
(equal column lengths, a tensor's shape matching its data) are left to the
descriptions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from atoll.schema import Column, Schema, UnknownPolicy
from atoll.types import ColumnType, Task

from .errors import MLFLOW_ERROR_CODES

Json = dict[str, Any]
UnknownColumns = Literal["error", "ignore"]

SCALAR_TYPES = ["string", "number", "boolean", "null"]
"""Any one JSON value that is not a list or an object (the codecs refuse nested cells)."""

V2_DATATYPES = [
    *("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"),
    *("FP16", "FP32", "FP64", "BYTES"),
]

_YEAR = r"(16(7[89]|[89][0-9])|1[7-9][0-9]{2}|2[01][0-9]{2}|22[0-5][0-9]|226[01])"
_MONTH_DAY = (
    r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"
    r"|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-8]))"
)
_TIME = r"[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
DATETIME_PATTERN = f"^{_YEAR}-{_MONTH_DAY}({_TIME}{_OFFSET})?$"
"""An ISO 8601 date or date-time the validator parses, in the years it can hold (1678-2261).

Written with ``[0-9]``, not ``\\d`` (in Python that matches other scripts'
digits too). 29 February is left out: a regular expression cannot tell leap
years, and the document must never promise a date the server refuses.
"""

_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class ModelDoc:
    """What the document needs to know of one served model.

    ``version`` is the live one; ``versions`` lists any other loaded version
    (a canary or shadow) that ``/v2/models/{name}/versions/{version}`` also answers.
    """

    name: str
    version: int
    schema: Schema
    task: Task
    classes: list[Any] = field(default_factory=list)
    versions: tuple[int, ...] = ()


def ref(kind: str, name: str) -> Json:
    """A reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def model_ref(model: ModelDoc, kind: str) -> Json:
    """A reference to one of a model's own schemas (see :meth:`Bodies.model_schemas`)."""
    return ref("schemas", f"{model.name}.{kind}")


def column_schema(column: Column) -> Json:
    """The JSON values ``Schema.validate`` accepts in this column, as JSON Schema.

    Integers pass for text columns (the validator reads ``36`` as ``"36"``),
    ``0`` and ``1`` for bools, integral numbers for integers; ranges are inclusive.
    """
    kind = column.type
    out: Json
    if kind is ColumnType.BOOL:
        flags = [v for v in (0, 1) if _within(v, column)]
        out = {"type": ["boolean", "integer"], "enum": [bool(v) for v in flags] + flags}
    elif kind.is_numeric:
        out = {"type": "integer" if kind is ColumnType.INT else "number"}
        if column.min is not None and math.isfinite(column.min):
            out["minimum"] = column.min
        if column.max is not None and math.isfinite(column.max):
            out["maximum"] = column.max
    elif kind is ColumnType.DATETIME:
        out = {"type": "string", "pattern": DATETIME_PATTERN}
    elif column.allowed is not None and column.unknown is UnknownPolicy.ERROR:
        as_numbers = [int(v) for v in column.allowed if _INTEGER_TEXT.fullmatch(v)]
        out = {"type": ["string", "integer"], "enum": [*column.allowed, *as_numbers]}
    else:
        out = {"type": ["string", "integer"]}
    if column.nullable:
        out["type"] = [*_types(out), "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if column.description:
        out["description"] = column.description
    return out


def record_schema(schema: Schema, *, unknown_columns: UnknownColumns = "error") -> Json:
    """One input row as a JSON object; extra keys are refused unless unknown columns are ignored.

    Only the non-nullable features are required of every row: which other keys
    a row may leave out depends on the other rows (see :func:`records_schema`).
    The target may be sent: it is validated, never used.
    """
    names = [*schema.inputs, schema.target]
    properties = {name: column_schema(schema.columns[name]) for name in names}
    properties[schema.target]["description"] = "The target: optional, validated, not used."
    extra: Json | bool = {"type": SCALAR_TYPES} if unknown_columns == "ignore" else False
    return {
        "type": "object",
        "properties": properties,
        "required": [n for n in schema.features if not schema.columns[n].nullable],
        "additionalProperties": extra,
    }


def records_schema(schema: Schema, record: Json, max_rows: int) -> Json:
    """Rows as records, with the rules that span rows.

    A key left out of one row is null in that row, and a column left out of
    every row is missing. So a nullable feature must be in at least one row,
    and an optional column that is not nullable must be in every row or in none.
    """
    rules: list[Json] = []
    for name in [*schema.inputs, schema.target]:
        column = schema.columns[name]
        if name in schema.features and column.nullable:
            rules.append({"contains": {"type": "object", "required": [name]}})
        elif name not in schema.features and not column.nullable:
            every = {"items": {"type": "object", "required": [name]}}
            none = {"items": {"type": "object", "properties": {name: False}}}
            rules.append({"anyOf": [every, none]})
    out: Json = {"type": "array", "items": record, "minItems": 1, "maxItems": max_rows}
    if rules:
        out["allOf"] = rules
    return out


def example_row(schema: Schema) -> dict[str, Any]:
    """One valid row, for the docs' examples (schemathesis sends them too)."""
    return {name: _example_value(schema.columns[name]) for name in schema.inputs}


@dataclass(frozen=True)
class Bodies:
    """Builds each model's request and response schemas for the server's limits."""

    max_rows: int
    unknown_columns: UnknownColumns

    def model_schemas(self, model: ModelDoc) -> dict[str, Json]:
        """Every schema of one model, by component name (``<model>.<kind>``)."""
        made = {
            "Record": record_schema(model.schema, unknown_columns=self.unknown_columns),
            "PredictRequest": self.native_request(model),
            "PredictResponse": _native_response(model),
            "V2InferRequest": self.v2_request(model),
            "V2InferResponse": _v2_response(model),
            "MlflowRequest": self.mlflow_request(model),
            "MlflowResponse": _mlflow_response(model),
        }
        return {f"{model.name}.{kind}": schema for kind, schema in made.items()}

    def native_request(self, model: ModelDoc) -> Json:
        records = {
            "title": "records",
            "type": "object",
            "properties": {"instances": self.records(model)},
            "required": ["instances"],
            "additionalProperties": False,
        }
        return {"oneOf": [records, self.columns_form(model)]}

    def records(self, model: ModelDoc) -> Json:
        return records_schema(model.schema, model_ref(model, "Record"), self.max_rows)

    def rows(self, model: ModelDoc) -> Json:
        """Rows as arrays: one value per input column, in schema order."""
        cells = [column_schema(model.schema.columns[n]) for n in model.schema.inputs]
        return {"type": "array", "items": _tuple(cells), "minItems": 1, "maxItems": self.max_rows}

    def columns_form(self, model: ModelDoc) -> Json:
        return {
            "title": "columns",
            "description": (
                "Column names, then rows of values in that order. Listed here with every "
                "input in schema order; any order, without the optional columns, works too."
            ),
            "type": "object",
            "properties": {"columns": {"const": model.schema.inputs}, "data": self.rows(model)},
            "required": ["columns", "data"],
            "additionalProperties": False,
        }

    def v2_request(self, model: ModelDoc) -> Json:
        """Tensors as the V2 decoder reads them; unknown top-level keys are ignored."""
        schema = model.schema
        names = [*schema.inputs, schema.target]
        tensors = [self.v2_tensor(n, column_schema(schema.columns[n])) for n in names]
        if self.unknown_columns == "ignore":
            tensors.append(self.v2_tensor(None, {"type": SCALAR_TYPES}))
        columns: Json = {
            "title": "one tensor per column",
            "type": "array",
            "items": {"anyOf": tensors},
            "minItems": 1,
        }
        if self.unknown_columns == "error":
            columns["maxItems"] = len(tensors)
        named = ({"type": "object", "properties": {"name": {"const": n}}} for n in schema.features)
        columns["allOf"] = [{"contains": t | {"required": ["name"]}} for t in named]
        matrix = self.v2_matrix(model)
        return {
            "type": "object",
            "properties": {
                "id": {"type": ["string", "null"], "description": "Echoed in the answer."},
                "parameters": {"type": ["object", "null"]},
                "inputs": columns if matrix is None else {"anyOf": [columns, matrix]},
                "outputs": {"description": "Ignored: every output is returned."},
            },
            "required": ["inputs"],
        }

    def v2_tensor(self, name: str | None, values: Json) -> Json:
        """One input tensor holding one column: shape ``[n]``, or ``[n, 1]`` with nested data."""
        rows = {"type": "integer", "minimum": 1, "maximum": self.max_rows}
        flat = {"type": "array", "items": values, "minItems": 1, "maxItems": self.max_rows}
        nested = flat | {"items": _tuple([values])}
        head = {
            "name": {"type": "string"} if name is None else {"const": name},
            "datatype": {"enum": V2_DATATYPES},
            "parameters": _V2_JSON_PARAMETERS,
        }
        return {
            "title": name or "ignored column",
            "anyOf": [
                _object(head | {"shape": _tuple([rows]), "data": flat}, *_V2_REQUIRED),
                _object(
                    head
                    | {"shape": _tuple([rows, {"const": 1}]), "data": {"anyOf": [flat, nested]}},
                    *_V2_REQUIRED,
                ),
            ],
        }

    def v2_matrix(self, model: ModelDoc) -> Json | None:
        """One 2-D numeric tensor, columns in schema order; only when every input is numeric."""
        columns = [model.schema.columns[n] for n in model.schema.inputs]
        if not columns or not all(c.type.is_numeric for c in columns):
            return None
        cells = [_numbers_only(column_schema(c)) for c in columns]
        rows = {"type": "integer", "minimum": 1, "maximum": self.max_rows}
        properties = {
            "name": {"type": "string"},
            "datatype": {"enum": V2_DATATYPES},
            "shape": _tuple([rows, {"const": len(cells)}]),
            "data": {
                "type": "array",
                "items": _tuple(cells),
                "minItems": 1,
                "maxItems": self.max_rows,
            },
            "parameters": _V2_JSON_PARAMETERS,
        }
        tensor = _object(properties, *_V2_REQUIRED, description="Shape [rows, columns].")
        if len(cells) == 1:  # a lone [n, 1] tensor named like the column is that column
            tensor["properties"]["name"] = {
                "type": "string",
                "not": {"const": model.schema.inputs[0]},
            }
        return {
            "title": "one 2-D tensor",
            "type": "array",
            "prefixItems": [tensor],
            "items": False,
            "minItems": 1,
        }

    def mlflow_request(self, model: ModelDoc) -> Json:
        """Exactly one of MLflow's four keys; ``params`` is kept, other keys are ignored."""
        either = {"anyOf": [self.records(model), self.rows(model)]}
        split = {
            "type": "object",
            "description": "Without `columns`, rows follow the inputs in schema order.",
            "properties": {"columns": {"const": model.schema.inputs}, "data": self.rows(model)},
            "required": ["data"],
        }
        forms = {
            "dataframe_split": split,
            "dataframe_records": self.records(model),
            "instances": either,
            "inputs": either,
        }
        branches = []
        for key, form in forms.items():
            others: Json = {other: False for other in forms if other != key}
            properties = {key: form, "params": {"type": ["object", "null"]}} | others
            branches.append(
                {"title": key, "type": "object", "properties": properties, "required": [key]}
            )
        return {"oneOf": branches}


def _types(schema: Json) -> list[str]:
    kind = schema["type"]
    return list(kind) if isinstance(kind, list) else [kind]


def _within(value: float, column: Column) -> bool:
    low = column.min if column.min is not None else -math.inf
    high = column.max if column.max is not None else math.inf
    return low <= value <= high


def _tuple(items: list[Json]) -> Json:
    """An array of exactly these items, in this order."""
    n = len(items)
    return {"type": "array", "prefixItems": items, "items": False, "minItems": n, "maxItems": n}


def _numbers_only(schema: Json) -> Json:
    """The numeric part of a column's schema (a matrix cell is never text, a bool or null)."""
    out = dict(schema)
    kept = [t for t in _types(out) if t in ("number", "integer")]
    out["type"] = kept[0] if len(kept) == 1 else kept
    if "enum" in out:
        out["enum"] = [v for v in out["enum"] if not isinstance(v, bool) and v is not None]
    return out


def _example_value(column: Column) -> Any:
    kind = column.type
    if kind is ColumnType.BOOL:
        return next((bool(v) for v in (1, 0) if _within(v, column)), None)
    if kind.is_numeric:
        value = 0.0
        if column.min is not None and math.isfinite(column.min):
            value = max(value, column.min)
        if column.max is not None and math.isfinite(column.max):
            value = min(value, column.max)
        return math.ceil(value) if kind is ColumnType.INT else value
    if kind is ColumnType.DATETIME:
        return "2024-01-02T03:04:05Z"
    if column.allowed:
        return column.allowed[0]
    return "text"


def _label(model: ModelDoc) -> Json:
    if model.task is Task.REGRESSION:
        return {"type": "number"}
    return {"type": ["string", "number", "boolean"]}


def _probabilities(model: ModelDoc) -> Json:
    keys = [str(c) for c in model.classes]
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    out: Json = {
        "type": "object",
        "description": "The probability of each class, keyed by its label as text; they sum to 1.",
        "additionalProperties": probability,
    }
    if keys:
        out.update(properties=dict.fromkeys(keys, probability), required=keys)
        out["additionalProperties"] = False
    return out


def _native_response(model: ModelDoc) -> Json:
    properties: Json = {
        "id": {"type": "string", "description": "The prediction id (send it back with feedback)."},
        "prediction": _label(model),
    }
    required = ["id", "prediction"]
    if model.task.is_classification:
        properties["probabilities"] = _probabilities(model)
        required.append("probabilities")
    row = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "object",
        "properties": {
            "model": {"const": model.name},
            "version": {"type": "integer"},
            "predictions": {"type": "array", "items": row},
        },
        "required": ["model", "version", "predictions"],
    }


def _v2_response(model: ModelDoc) -> Json:
    outputs = ["predict", "predict_proba", "prediction_id"]
    if not model.task.is_classification:
        outputs.remove("predict_proba")
    return {
        "type": "object",
        "description": "Outputs: " + ", ".join(outputs) + ".",
        "properties": {
            "model_name": {"const": model.name},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": ref("schemas", "V2OutputTensor")},
        },
        "required": ["model_name", "outputs"],
    }


def _mlflow_response(model: ModelDoc) -> Json:
    return {
        "type": "object",
        "properties": {
            "predictions": {"type": "array", "items": _label(model)},
            "ids": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["predictions"],
    }


def _object(properties: Json, *required: str, **more: Any) -> Json:
    return {"type": "object", "properties": properties, "required": list(required), **more}


_V2_REQUIRED = ("name", "shape", "datatype", "data")
_V2_JSON_PARAMETERS = {
    "description": "Tensor parameters; `binary_data_size` needs the binary extension.",
    "not": {"type": "object", "required": ["binary_data_size"]},
}
_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_PROBLEMS = {"type": "array", "items": ref("schemas", "Problem")}
_MODEL_SUMMARY = {
    "name": _STRING,
    "ref": _STRING,
    "version": {"type": "integer"},
    "task": {"enum": [t.value for t in Task]},
    "ready": {"type": "boolean"},
}
_TENSOR_META = _object(
    {"name": _STRING, "datatype": {"enum": V2_DATATYPES}, "shape": {"type": "array"}},
    *("name", "datatype", "shape"),
)
_FEEDBACK_ITEM = _object(
    {
        "prediction_id": {"type": "string", "minLength": 1, "maxLength": 36},
        "label": {"type": SCALAR_TYPES},
    },
    *("prediction_id", "label"),
)

SHARED_SCHEMAS: dict[str, Json] = {
    "Problem": _object(
        {
            "rule": _STRING,
            "column": _STRING,
            "count": {"type": "integer", "minimum": 0},
            "rows": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "message": _STRING,
        },
        *("rule", "column", "count", "rows", "message"),
        description="One violated rule: its column, how many rows, the first row positions.",
    ),
    "Error": _object(
        {
            "error": _object(
                {"code": _STRING, "message": _STRING, "request_id": _STRING, "problems": _PROBLEMS},
                *("code", "message"),
            )
        },
        "error",
    ),
    "V2Error": _object(
        {"error": _STRING, "code": _STRING, "request_id": _STRING, "problems": _PROBLEMS},
        "error",
    ),
    "MlflowError": _object(
        {
            "error_code": {"enum": sorted({*MLFLOW_ERROR_CODES.values(), "INTERNAL_ERROR"})},
            "message": _STRING,
            "request_id": _STRING,
            "problems": _PROBLEMS,
        },
        *("error_code", "message"),
    ),
    "Live": _object({"live": {"const": True}}, "live"),
    "Ready": _object({"ready": {"const": True}, "degraded": _STRINGS}, "ready"),
    "NotReady": _object({"ready": {"const": False}, "reasons": _STRINGS}, "ready", "reasons"),
    "ModelList": _object(
        {
            "models": {
                "type": "array",
                "items": _object(_MODEL_SUMMARY, *("name", "version", "task", "ready")),
            }
        },
        "models",
    ),
    "ModelInfo": _object(
        {
            **_MODEL_SUMMARY,
            "classes": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
            "inputs": _STRINGS,
            "input_schema": {"type": "object", "description": "JSON Schema of one input record."},
        },
        *("name", "version", "task", "input_schema"),
    ),
    "FeedbackRequest": _object(
        {"feedback": {"type": "array", "items": _FEEDBACK_ITEM, "minItems": 1}}, "feedback"
    ),
    "FeedbackStored": _object({"stored": {"type": "integer", "minimum": 0}}, "stored"),
    "V2ServerMetadata": _object(
        {"name": _STRING, "version": _STRING, "extensions": _STRINGS},
        *("name", "version", "extensions"),
    ),
    "V2ModelMetadata": _object(
        {
            "name": _STRING,
            "versions": _STRINGS,
            "platform": _STRING,
            "inputs": {"type": "array", "items": _TENSOR_META},
            "outputs": {"type": "array", "items": _TENSOR_META},
        },
        *("name", "platform", "inputs", "outputs"),
    ),
    "V2ModelReady": _object({"name": _STRING, "ready": {"type": "boolean"}}, "ready"),
    "V2OutputTensor": _object(
        {
            "name": _STRING,
            "datatype": {"enum": V2_DATATYPES},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
        *("name", "datatype", "shape", "data"),
    ),
}
"""The schemas every document holds, whatever the models."""

__all__ = [
    "DATETIME_PATTERN",
    "SCALAR_TYPES",
    "SHARED_SCHEMAS",
    "V2_DATATYPES",
    "Bodies",
    "ModelDoc",
    "column_schema",
    "example_row",
    "model_ref",
    "record_schema",
    "records_schema",
    "ref",
]
