"""Reading append-only history tables (monitor results, alert events): newest rows first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from atoll.store.db import run_transaction
from atoll.types import check_model_name


def newest(
    engine: Engine,
    table: sa.Table,
    model: str,
    *,
    limit: int,
    equal: Mapping[str, Any],
    where: Sequence[sa.ColumnElement[bool]] = (),
) -> list[RowMapping]:
    """A model's newest ``limit`` rows of ``table``, newest first.

    ``equal`` maps column names to the value they must hold; a ``None`` value
    means no condition on that column. ``where`` adds further conditions.
    """
    query = (
        sa.select(table)
        .where(table.c.model == check_model_name(model), *where)
        .order_by(table.c.id.desc())
        .limit(max(0, limit))
    )
    for column, value in equal.items():
        if value is not None:
            query = query.where(table.c[column] == value)

    def work(conn: Connection) -> list[RowMapping]:
        return [row._mapping for row in conn.execute(query)]

    return run_transaction(engine, work, read_only=True)
