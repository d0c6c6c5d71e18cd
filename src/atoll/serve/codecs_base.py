"""What every request decoder produces, and the row builders they share.

Decoders check shape and structure only: how many rows, which columns, and
that each cell is a single value. Types, ranges and categories are the schema
validator's job (it names the bad rows), so values stay the plain Python
scalars the parser produced, with ``None`` for null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from .errors import BadRequest, PayloadTooLarge

Columns = dict[str, list[Any]]
"""Column name -> values, every list the same length."""

_NESTED = frozenset({list, dict, tuple})
_DICT = {dict}
MAX_NAMES_SHOWN = 8


@dataclass(slots=True)
class Decoded:
    """A request body as columns, plus what the protocol asks to echo back.

    Not frozen: a frozen dataclass costs a microsecond more to build, per request.
    """

    columns: Columns
    n_rows: int
    request_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def check_count(n_rows: int, max_rows: int, where: str) -> None:
    """Online requests are bounded; an empty one has nothing to predict."""
    if n_rows > max_rows:
        raise PayloadTooLarge(
            f"{n_rows} rows > {max_rows} per request; use `atoll predict` for batch",
            rows=n_rows,
            max_rows=max_rows,
        )
    if n_rows <= 0:
        raise BadRequest(f"{where} is empty: send at least one row")


def shown(name: str) -> str:
    """A client-chosen name, quoted and cut short, for messages."""
    return repr(name if len(name) <= 64 else name[:61] + "...")


def names_shown(names: Sequence[str]) -> str:
    head = ", ".join(names[:MAX_NAMES_SHOWN])
    return head + (", ..." if len(names) > MAX_NAMES_SHOWN else "")


def nested_cell(column: str, row: int, value: Any) -> BadRequest:
    """The error for a list or object where a single value belongs."""
    kind = "an object" if isinstance(value, dict) else "a list"
    return BadRequest(
        f"column {shown(column)}, row {row}: {kind} is not a single value "
        "(send a number, string, boolean or null)",
        column=column,
        row=row,
    )


def check_cells(column: str, values: list[Any]) -> None:
    """Refuse nested values; the set test runs at C speed, the row is found only on error."""
    if len(values) == 1:
        if type(values[0]) in _NESTED:
            raise nested_cell(column, 0, values[0])
        return
    if _NESTED.isdisjoint(map(type, values)):
        return
    for row, value in enumerate(values):
        if type(value) in _NESTED:
            raise nested_cell(column, row, value)


def from_records(rows: list[Any], where: str) -> Columns:
    """Records to columns: the union of their keys; a key a record lacks is null there."""
    if len(rows) == 1 and type(rows[0]) is dict:  # the common online request, made cheap
        row = rows[0]
        if _NESTED.isdisjoint(map(type, row.values())):
            return {key: [value] for key, value in row.items()}
    columns = _same_keys(rows)
    if columns is not None:
        return columns
    columns = {}
    for i, row in enumerate(rows):
        if type(row) is not dict:
            raise BadRequest(f"{where}[{i}] is not an object")
        for key, value in row.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * i
            column.append(value)
        if len(row) != len(columns):  # this record lacks a column seen before
            for column in columns.values():
                if len(column) == i:
                    column.append(None)
    for name, values in columns.items():
        check_cells(name, values)
    return columns


def _same_keys(rows: list[Any]) -> Columns | None:
    """Records that all hold the same keys, transposed at C speed; None for any other."""
    if not rows or set(map(type, rows)) != _DICT or len(set(map(len, rows))) != 1:
        return None
    keys = list(rows[0])
    if len(keys) < 2:
        return None
    try:
        table = list(map(itemgetter(*keys), rows))
    except KeyError:  # same sizes, other keys
        return None
    columns = {
        key: list(values) for key, values in zip(keys, zip(*table, strict=True), strict=True)
    }
    for name, values in columns.items():
        check_cells(name, values)
    return columns


def from_rows(rows: list[Any], names: Sequence[str], where: str) -> Columns:
    """Lists of values to columns, position ``j`` of every row being ``names[j]``."""
    width = len(names)
    if len(rows) == 1 and type(rows[0]) is list and len(rows[0]) == width:  # the usual request
        row = rows[0]
        if _NESTED.isdisjoint(map(type, row)) and len(set(names)) == width:
            return {name: [value] for name, value in zip(names, row, strict=True)}
    for i, row in enumerate(rows):
        if type(row) is not list:
            raise BadRequest(f"{where}[{i}] is not a list")
        if len(row) != width:
            raise BadRequest(
                f"{where}[{i}] has {len(row)} values; expected {width} "
                f"in this order: {names_shown(list(names))}"
            )
    if len(set(names)) != width:
        raise BadRequest(f"{where}: column names repeat: {names_shown(list(names))}")
    transposed = zip(*rows, strict=True) if rows else ([] for _ in names)
    columns = {name: list(values) for name, values in zip(names, transposed, strict=True)}
    for name, values in columns.items():
        check_cells(name, values)
    return columns


def from_column_lists(data: dict[str, Any], where: str, max_rows: int) -> tuple[Columns, int]:
    """A mapping of column name to equal-length lists, checked and kept as sent."""
    n_rows = -1
    first = ""
    for name, values in data.items():
        if type(values) is not list:
            raise BadRequest(f"{where}.{name} must be a list of values, one per row")
        if n_rows < 0:
            n_rows, first = len(values), name
            check_count(n_rows, max_rows, where)
        elif len(values) != n_rows:
            raise BadRequest(
                f"{where}: column {shown(name)} has {len(values)} values "
                f"but {shown(first)} has {n_rows}"
            )
        check_cells(name, values)
    if n_rows < 0:
        raise BadRequest(f"{where} is empty: send at least one column")
    return data, n_rows
