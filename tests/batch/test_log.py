"""Batch scoring feeds the prediction log: every scored row once, as the server logs it.

Real parts throughout: a trained project on a SQLite file (and on PostgreSQL
when ``ATOLL_TEST_POSTGRES_URL`` is set), worker processes, a Dask
LocalCluster, and an ``atoll predict`` process killed midway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from atoll import api
from atoll.batch.job import BatchSummary
from atoll.errors import DataError
from atoll.settings import Settings
from atoll.store.jobs import JobStore
from atoll.store.predlog import LogRecord
from atoll.store.tables import prediction_log
from tests.batch.conftest import (
    REF,
    ROWS,
    Inputs,
    done_chunks,
    kill_midway,
    with_bad_row,
    write_rows,
)
from tests.cli.test_cli import assert_ok, atoll
from tests.conftest import postgres_database, write_demo_project

PEPPER = "a pepper for the tests"
LOGGED = {"log": {"batch": True}}
PREDICTED = ["prediction", "probability_0", "probability_1"]


@dataclasses.dataclass(frozen=True)
class Project:
    """A trained project whose spec turns batch logging on (``monitor.log`` as given)."""

    root: Path
    settings: Settings

    def with_log(self, tmp_path: Path, **log: Any) -> Project:
        """The same store, seen from a project folder whose spec says ``monitor.log: log``."""
        spec = self.root / "atoll.yaml"
        text = spec.read_text().replace("batch: true", _yaml(log))
        tmp_path.mkdir(exist_ok=True)
        (tmp_path / "atoll.yaml").write_text(text)
        return Project(tmp_path, dataclasses.replace(self.settings, project_dir=tmp_path))


def _yaml(log: dict[str, Any]) -> str:
    return "\n    ".join(f"{key}: {str(value).lower()}" for key, value in log.items())


def _train(root: Path, url: str | None) -> Project:
    spec = write_demo_project(root, monitor=LOGGED)
    settings = Settings.from_env(project_dir=root, environ={"ATOLL_PII_PEPPER": PEPPER}, db_url=url)
    outcome = api.train(spec, settings=settings)
    api.promote(f"{outcome.version.name}@{outcome.version.version}", settings=settings)
    return Project(root, settings)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project of its own: the shared one's log must stay empty for the serving tests."""
    return _train(tmp_path_factory.mktemp("logged"), None)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def any_store(
    request: pytest.FixtureRequest, project: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """The project on SQLite, and a twin on PostgreSQL (skipped without a server)."""
    if request.param == "sqlite":
        yield project
        return
    with postgres_database() as url:
        yield _train(tmp_path_factory.mktemp("logged-pg"), url)


def run(project: Project, source: Path, out: Path, **options: Any) -> BatchSummary:
    return api.predict_batch(REF, source, out, settings=project.settings, **options)


def logged(project: Project, ids: pd.Series | list[str]) -> list[LogRecord]:
    """The log's records whose prediction ids share the run of ``ids`` (a job's rows)."""
    from atoll.store._logsql import to_record

    prefix = str(ids[0])[:16]
    query = sa.select(prediction_log).where(prediction_log.c.prediction_id.startswith(prefix))
    with api.open_registry(project.settings) as registry, registry.engine.connect() as conn:
        return [to_record(dict(row._mapping)) for row in conn.execute(query)]


def assert_once(records: list[LogRecord], out: pd.DataFrame) -> None:
    """Every output row is in the log exactly once, under its id, with its outputs."""
    ids = [r.prediction_id for r in records]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(out["prediction_id"])
    by_id = out.set_index("prediction_id")
    for record in records[:: max(1, len(records) // 50)]:
        row = by_id.loc[record.prediction_id]
        assert record.outputs == {
            "prediction": int(row["prediction"]),
            "probabilities": {"0": row["probability_0"], "1": row["probability_1"]},
        }


def test_every_row_is_logged_once_under_the_id_in_the_output(
    any_store: Project, inputs: Inputs, tmp_path: Path
) -> None:
    before = datetime.now(UTC)
    summary = run(any_store, inputs.csv, tmp_path / "out.parquet", chunk_rows=400, workers=2)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["application_id", "row", "prediction_id", *PREDICTED,
                                 "model_version"]  # fmt: skip
    assert out["prediction_id"].str.len().eq(36).all()
    records = logged(any_store, out["prediction_id"])
    assert_once(records, out)
    assert summary.rows_logged == ROWS
    assert {(r.role, r.request_id, r.version) for r in records} == {
        ("batch", f"batch:{summary.job_id}", 1)
    }
    assert all(r.created_at >= before and r.latency_ms >= 0 and r.key_id is None for r in records)
    first = next(r for r in records if r.prediction_id == out["prediction_id"][0])
    source = inputs.frame.iloc[0]
    assert set(first.inputs) == set(inputs.frame.columns)  # the validated inputs, as served
    assert first.inputs["application_id"] == source["application_id"]
    assert first.inputs["age"] == source["age"]

    with api.open_registry(any_store.settings) as registry:
        job = JobStore(registry.engine).get(str(summary.job_id))
    assert (job.rows_logged, job.options["log"]) == (ROWS, True)
    report = api.monitor_report(REF, since=before, save=False, settings=any_store.settings)
    assert report.rows == ROWS  # monitoring reads the batch rows as it reads served ones
    assert report.checks["drift"]["status"] != "no_data"
    # no request answered them: they are counted, but are no latencies or served rates
    operational = report.checks["operational"]
    assert (operational["status"], operational["rows"]) == ("no_data", 0)
    assert operational["batch_rows"] == ROWS


@pytest.mark.slow
def test_the_dask_engine_logs_every_row_once(
    project: Project, inputs: Inputs, tmp_path: Path
) -> None:
    summary = run(project, inputs.parquet, tmp_path / "out.csv", chunk_rows=700,
                  engine="dask", workers=2)  # fmt: skip
    out = pd.read_csv(tmp_path / "out.csv")
    assert_once(logged(project, out["prediction_id"]), out)
    assert summary.rows_logged == ROWS


def test_quarantined_rows_are_not_logged_and_a_resume_logs_the_rest_once(
    any_store: Project, inputs: Inputs, tmp_path: Path
) -> None:
    source = with_bad_row(inputs.frame.head(400), 250, tmp_path / "in.parquet", row_group_size=50)
    out = tmp_path / "out.parquet"
    with pytest.raises(DataError, match="row 250"):
        run(any_store, source, out, chunk_rows=50, fail_on_invalid=True)
    assert done_chunks(out) == [0, 1, 2, 3, 4]
    # a crash between logging a chunk and writing its part: the part is missing, the rows not
    (out.parent / "out.parquet.partial" / "part-000004.arrow").unlink()

    summary = run(any_store, source, out, chunk_rows=50)
    assert (summary.chunks_resumed, summary.rows_quarantined) == (4, 1)
    assert summary.rows_logged == summary.rows_scored == 399
    result = pd.read_parquet(out)
    records = logged(any_store, result["prediction_id"])
    assert_once(records, result)
    assert 250 not in {int(r.prediction_id[16:]) for r in records}


@pytest.mark.slow
def test_a_job_killed_midway_and_resumed_logs_every_row_once(
    project: Project, inputs: Inputs, tmp_path: Path
) -> None:
    out = tmp_path / "killed.parquet"
    args = ["--model", REF, "--input", str(inputs.csv), "--chunk-rows", "50", "--workers", "2"]
    left = kill_midway(project.root, args, out, 3)
    assert 3 <= len(left) < ROWS // 50

    summary = run(project, inputs.csv, out, chunk_rows=50, workers=2)
    assert summary.chunks_resumed == len(left)
    result = pd.read_parquet(out)
    assert_once(logged(project, result["prediction_id"]), result)
    assert summary.rows_logged == ROWS


def test_pii_columns_are_hashed_with_the_pepper_as_the_server_does(
    project: Project, inputs: Inputs, tmp_path: Path
) -> None:
    run(project, inputs.parquet, tmp_path / "out.parquet", chunk_rows=1000)
    out = pd.read_parquet(tmp_path / "out.parquet")
    emails = dict(zip(inputs.frame["application_id"], inputs.frame["email"], strict=True))
    for record in logged(project, out["prediction_id"])[:20]:
        clear = emails[record.inputs["application_id"]]
        keyed = hmac.new(PEPPER.encode(), clear.encode(), hashlib.sha256).hexdigest()[:32]
        assert record.inputs["email"] == keyed


@pytest.mark.parametrize(
    ("log", "environ"), [({"pii": "drop"}, {"ATOLL_PII_PEPPER": PEPPER}), ({}, {})]
)
def test_pii_columns_are_dropped_by_the_spec_or_without_a_pepper(
    project: Project,
    inputs: Inputs,
    tmp_path: Path,
    log: dict[str, Any],
    environ: dict[str, str],
) -> None:
    shown = project.with_log(tmp_path, batch=True, **log)
    settings = dataclasses.replace(shown.settings, environ=environ)
    api.predict_batch(REF, inputs.parquet, tmp_path / "out.parquet", chunk_rows=1000,
                      settings=settings)  # fmt: skip
    out = pd.read_parquet(tmp_path / "out.parquet")
    records = logged(project, out["prediction_id"])
    assert len(records) == ROWS
    assert all("email" not in r.inputs and "age" in r.inputs for r in records)


def test_a_sample_logs_the_same_rows_on_resume(
    project: Project, inputs: Inputs, tmp_path: Path
) -> None:
    sampled = project.with_log(tmp_path, batch=True, sample=0.25)
    source = with_bad_row(inputs.frame, 2100, tmp_path / "in.parquet", row_group_size=300)
    out = tmp_path / "out.parquet"
    with pytest.raises(DataError, match="row 2100"):  # chunks 0-6 are done, and logged
        run(sampled, source, out, chunk_rows=300, fail_on_invalid=True)
    first = {r.prediction_id for r in logged(project, [_run_prefix(out)])}
    (out.parent / "out.parquet.partial" / "part-000006.arrow").unlink()  # scored again

    summary = run(sampled, source, out, chunk_rows=300)
    assert summary.rows_scored == ROWS - 1
    result = pd.read_parquet(out)
    ids = [r.prediction_id for r in logged(project, result["prediction_id"])]
    assert len(ids) == len(set(ids)) == summary.rows_logged
    assert set(ids) <= set(result["prediction_id"])
    assert {i for i in ids if int(i[16:]) < 2100} == first  # chunk 6 logged the same rows
    assert 0.15 * ROWS < len(ids) < 0.35 * ROWS


def _run_prefix(out: Path) -> str:
    """The prediction-id prefix of the job whose parts are in ``out``'s work folder."""
    import json

    run_id = json.loads((out.parent / f"{out.name}.partial" / "job.json").read_text())["run"]
    return f"b{run_id[:15]}"


def test_the_cli_logs_with_log_and_not_with_no_log(
    project: Project, inputs: Inputs, tmp_path: Path
) -> None:
    source = write_rows(inputs.frame.head(120), tmp_path / "in.csv")
    common = ["-C", project.root, "predict", "--model", REF, "--input", source]
    plain = atoll(*common, "--output", tmp_path / "plain.parquet", "--no-log")
    assert_ok(plain)
    assert "prediction_id" not in pd.read_parquet(tmp_path / "plain.parquet").columns
    assert "logged" not in plain.stdout

    silent = project.with_log(tmp_path / "off", batch=False)
    forced = atoll("-C", silent.root, "predict", "--model", REF, "--input", source,
                   "--output", tmp_path / "forced.parquet", "--log",
                   env={"ATOLL_DB_URL": project.settings.db_url,
                        "ATOLL_ARTIFACT_ROOT": str(project.settings.artifact_root)})  # fmt: skip
    assert_ok(forced)
    assert "logged 120 rows to the prediction log" in forced.stdout
    out = pd.read_parquet(tmp_path / "forced.parquet")
    assert len(logged(project, out["prediction_id"])) == 120


def test_a_passthrough_column_named_prediction_id_is_refused_when_logging(
    project: Project, inputs: Inputs, tmp_path: Path
) -> None:
    frame = inputs.frame.head(20).assign(prediction_id="mine")
    source = write_rows(frame, tmp_path / "in.csv")
    with pytest.raises(DataError, match="passthrough column prediction_id clashes"):
        run(project, source, tmp_path / "out.csv", passthrough=["prediction_id"])
    assert not (tmp_path / "out.csv.partial").exists()
    run(project, source, tmp_path / "out.csv", passthrough=["prediction_id"], log=False)
    assert pd.read_csv(tmp_path / "out.csv")["prediction_id"].eq("mine").all()
