"""``--input sql:QUERY``: rows streamed from the database named by ``data.sql`` in atoll.yaml."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from atoll import api
from atoll.errors import DataError
from atoll.settings import Settings
from tests.batch.conftest import REF, Inputs
from tests.batch.test_parity import assert_same
from tests.conftest import TrainedProject

QUERY = "SELECT * FROM applications ORDER BY rowid"


def sql_project(trained: TrainedProject, root: Path, sql: dict[str, str] | None) -> Settings:
    """A project whose spec reads from SQL, sharing the trained project's registry."""
    spec = yaml.safe_load(trained.spec_path.read_text())
    spec["data"] = {"sql": sql} if sql else {"path": "data/none.csv"}
    spec["data"]["time_column"] = "application_date"
    root.mkdir(parents=True, exist_ok=True)
    (root / "atoll.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return dataclasses.replace(trained.settings, project_dir=root)


def test_a_query_is_scored_in_chunks_like_the_same_rows_from_a_file(
    trained_project: TrainedProject, inputs: Inputs, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    engine = sa.create_engine(url)
    inputs.frame.head(300).to_sql("applications", engine, index=False)
    engine.dispose()
    settings = sql_project(trained_project, tmp_path / "project", {"url": url, "query": QUERY})

    out = tmp_path / "out.parquet"
    summary = api.predict_batch(REF, f"sql:{QUERY}", out, chunk_rows=64, settings=settings)
    assert (summary.rows_scored, summary.chunks) == (300, 5)
    assert summary.input == f"sql:{url} {QUERY}"
    scored = pd.read_parquet(out).astype({"application_id": str})
    assert_same(scored, inputs.expected.head(300))


def test_a_query_needs_data_sql_in_the_spec(
    trained_project: TrainedProject, tmp_path: Path
) -> None:
    settings = sql_project(trained_project, tmp_path / "project", None)
    with pytest.raises(DataError, match=r"data\.sql in .*atoll\.yaml"):
        api.predict_batch(REF, f"sql:{QUERY}", tmp_path / "out.csv", settings=settings)
