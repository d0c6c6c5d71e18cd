"""SQL sources read in bounded batches, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from atoll.data.sources import iter_sql, read_sql
from atoll.errors import DataError

ROWS = 250


def _fill(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        frame = pd.DataFrame({"id": range(ROWS), "x": [i * 0.5 for i in range(ROWS)]})
        with engine.begin() as connection:
            frame.to_sql("rows", connection, index=False, if_exists="replace")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def filled_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'source.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    _fill(url)
    return url


def test_batches_are_bounded_and_complete(filled_url: str) -> None:
    query = "SELECT id, x FROM rows ORDER BY id"
    batches = list(iter_sql(filled_url, query, batch_rows=100))
    assert [len(b) for b in batches] == [100, 100, 50]
    whole = read_sql(filled_url, query)
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), whole)
    assert whole["id"].tolist() == list(range(ROWS))


def test_an_empty_result_is_an_error_naming_the_source(filled_url: str) -> None:
    with pytest.raises(DataError, match="returned no rows"):
        list(iter_sql(filled_url, "SELECT id FROM rows WHERE id < 0", batch_rows=10))


def test_a_failing_query_is_a_data_error(filled_url: str) -> None:
    with pytest.raises(DataError, match="failed"):
        list(iter_sql(filled_url, "SELECT nope FROM missing_table", batch_rows=10))
