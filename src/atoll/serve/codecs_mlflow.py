"""MLflow's ``/invocations`` body: the four JSON forms and CSV, as MLflow reads them.

As in MLflow, a JSON body holds exactly one of ``dataframe_split``,
``dataframe_records``, ``instances`` or ``inputs`` (other keys are ignored;
``params`` is kept), a charset other than UTF-8 or any other media type is a
415, and rows given as lists map positions to the model's inputs in order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from .codecs_arrow import decode_csv
from .codecs_base import (
    Columns,
    Decoded,
    check_cells,
    check_count,
    from_column_lists,
    from_records,
    from_rows,
)
from .errors import BadRequest, UnsupportedMediaType
from .jsonio import JSON_TYPE, check_other_keys, check_params, decode_json, media_type

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV_TYPES = ("text/csv", "application/csv")
_ONE_OF = "the body must be a JSON object with exactly one of " + ", ".join(FORMATS)


def decode_mlflow(
    body: bytes,
    content_type: str | None,
    *,
    input_names: Sequence[str],
    max_rows: int,
    max_depth: int,
    numeric: Collection[str] = (),
) -> Decoded:
    """A scoring request as columns.

    Args:
        body: the raw body.
        content_type: ``application/json``, ``text/csv`` or ``application/csv``
            (``charset=utf-8`` allowed).
        input_names: the model's input columns in schema order, for rows sent as lists.
        max_rows: rows per request (413 past it).
        max_depth: nesting levels of a JSON body (400 past it).
        numeric: numeric columns, whose CSV cells are parsed one by one (a bad
            cell then names its own row, as in batch scoring).
    """
    kind, params = media_type(content_type)
    if kind == JSON_TYPE:
        check_params(kind, params)
        return decode_json(
            body, max_depth, lambda data: _decode_json(data, input_names, max_rows, max_depth)
        )
    if kind in CSV_TYPES:
        check_params(kind, params)
        return decode_csv(body, max_rows=max_rows, numeric=numeric)
    raise UnsupportedMediaType(
        f"Content-Type {kind[:60] or '(none)'!r} is not supported; "
        "send application/json, text/csv or application/csv"
    )


def _decode_json(data: Any, input_names: Sequence[str], max_rows: int, max_depth: int) -> Decoded:
    if type(data) is not dict:
        raise BadRequest(_ONE_OF)
    found = [key for key in FORMATS if key in data]
    if len(found) != 1:
        raise BadRequest(_ONE_OF + (f"; it has {', '.join(found)}" if found else ""))
    params = data.get("params")
    if params is not None and type(params) is not dict:
        raise BadRequest("params must be an object")
    key = found[0]
    if len(data) > 1:  # params, and keys MLflow ignores: free-form
        check_other_keys(data, (key,), 2, max_depth)
    value = data[key]
    if key == "dataframe_split":
        columns, n_rows = _split(value, input_names, max_rows, max_depth)
    elif key == "dataframe_records":
        if type(value) is not list:
            raise BadRequest("dataframe_records must be a list of objects")
        n_rows = len(value)
        check_count(n_rows, max_rows, key)
        columns = from_records(value, key)
    else:
        columns, n_rows = _tensor_like(key, value, input_names, max_rows)
    return Decoded(columns, n_rows, parameters=params or {})


def _split(
    value: Any, input_names: Sequence[str], max_rows: int, max_depth: int
) -> tuple[Columns, int]:
    """``DataFrame.to_dict(orient="split")``; without ``columns``, rows follow the inputs."""
    if type(value) is not dict or type(value.get("data")) is not list:
        raise BadRequest('dataframe_split must be {"columns": [...], "data": [[...], ...]}')
    check_other_keys(value, ("columns", "data"), 3, max_depth)  # "index" (ignored), or anything
    names = value.get("columns") if "columns" in value else list(input_names)
    if type(names) is not list or any(type(name) is not str for name in names):
        raise BadRequest("dataframe_split.columns must be a list of column names")
    rows = value["data"]
    check_count(len(rows), max_rows, "dataframe_split.data")
    return from_rows(rows, names, "dataframe_split.data"), len(rows)


def _tensor_like(
    key: str, value: Any, input_names: Sequence[str], max_rows: int
) -> tuple[Columns, int]:
    """``instances``/``inputs``: records, rows of values in input order, or columns."""
    if type(value) is dict:
        if value and all(type(v) is not list for v in value.values()):
            value = {name: [v] for name, v in value.items()}  # one row given as scalars
        return from_column_lists(value, key, max_rows)
    if type(value) is not list:
        raise BadRequest(f"{key} must be a list of rows or an object of columns")
    check_count(len(value), max_rows, key)
    first = type(value[0])
    if first is dict:
        return from_records(value, key), len(value)
    if first is list:
        return from_rows(value, input_names, key), len(value)
    if len(input_names) != 1:
        raise BadRequest(
            f"{key} must be a list of rows (objects, or lists in input order), "
            "or an object of columns"
        )
    check_cells(input_names[0], value)
    return {input_names[0]: value}, len(value)
