"""Planning: the same chunks on every run, whatever the readers' batch sizes."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from atoll import api
from atoll.batch.plan import plan_files
from atoll.batch.read import compact, rechunk
from tests.batch.conftest import REF, Inputs, Score
from tests.conftest import TrainedProject


def test_rechunk_cuts_exact_chunks_from_any_batches() -> None:
    values = iter(range(20))
    batches = [pa.record_batch({"x": [next(values) for _ in range(size)]}) for size in (3, 7, 1, 9)]
    chunks = list(rechunk(batches, 6))
    assert [c.num_rows for c in chunks] == [6, 6, 6, 2]
    assert [x for c in chunks for x in c.column("x").to_pylist()] == list(range(20))


def test_a_compacted_slice_ships_only_its_own_rows() -> None:
    table = pa.table({"x": list(range(1_000_000))})
    assert len(pickle.dumps(compact(table.slice(10, 100)))) < 10_000


def test_parquet_row_groups_merge_up_to_the_chunk_size_and_large_ones_split(
    trained_project: TrainedProject, inputs: Inputs, score: Score, tmp_path: Path
) -> None:
    sizes = [50, 50, 50, 300, 20]
    path = tmp_path / "groups.parquet"
    table = pa.Table.from_pandas(inputs.frame.head(sum(sizes)), preserve_index=False)
    with pq.ParquetWriter(path, table.schema) as writer:
        start = 0
        for size in sizes:
            writer.write_table(table.slice(start, size))
            start += size
    assert [g.num_rows for g in map(pq.read_metadata(path).row_group, range(5))] == sizes

    schema = api.load(REF, settings=trained_project.settings).schema
    plan = plan_files(str(path), schema, 100, None)
    tasks = list(plan.tasks())
    assert [(t.row_groups, t.skip, t.chunk, t.start_row, t.n_rows) for t in tasks] == [
        ((0, 1), 0, 0, 0, 100),
        ((2,), 0, 1, 100, 50),
        ((3,), 0, 2, 150, 100),
        ((3,), 100, 3, 250, 100),
        ((3,), 200, 4, 350, 100),
        ((4,), 0, 5, 450, 20),
    ]
    assert {t.source for t in tasks} == {str(path.resolve())}
    assert (plan.rows_total, plan.chunks_total) == (470, 6)
    assert plan.columns.passthrough == ("application_id",)
    assert plan.columns.read == plan.columns.validate == tuple(inputs.frame.columns)

    summary, out = score(path, chunk_rows=100)
    assert (summary.chunks, summary.largest_chunk_rows) == (6, 100)
    assert out["row"].tolist() == list(range(470))
