"""A real trained demo model, real prediction-log rows and feedback, the API and the CLI report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from atoll import api
from atoll.cli.main import cli
from atoll.data.sources import read_frame
from atoll.errors import DataError
from atoll.settings import Settings
from atoll.store.monitoring import list_results
from atoll.store.predlog import record_feedback
from tests.conftest import write_demo_project
from tests.monitor.conftest import log_predictions

LOGGED = 1_200
LABELLED = 500
UNKNOWN_FEEDBACK = 3


@dataclass(frozen=True)
class Served:
    root: Path
    settings: Settings
    ref: str
    truth: np.ndarray
    scores: np.ndarray


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A trained, promoted demo model and a prediction log of its answers, some labelled."""
    root = tmp_path_factory.mktemp("monitored")
    write_demo_project(root)
    settings = Settings.from_env(project_dir=root, environ={})
    outcome = api.train(root / "atoll.yaml", settings=settings)
    ref = f"{outcome.version.name}@{outcome.version.version}"
    api.promote(ref, settings=settings)
    frame = read_frame("data/applications.csv", root).tail(LOGGED).reset_index(drop=True)
    inputs = frame.drop(columns=["defaulted", "email"])
    now = datetime.now(UTC) - timedelta(minutes=5)
    records, prediction = log_predictions(settings, outcome.version, inputs, now)
    truth = frame["defaulted"].to_numpy()
    with api.open_registry(settings) as registry:
        labels = [
            (r.prediction_id, int(t)) for r, t in zip(records[:LABELLED], truth, strict=False)
        ]
        unknown = [(f"unknown-{i}", 1) for i in range(UNKNOWN_FEEDBACK)]
        record_feedback(registry.engine, labels + unknown, None)
    assert prediction.probabilities is not None
    return Served(root, settings, ref, truth[:LABELLED], prediction.probabilities[:LABELLED, 1])


def test_a_labelled_window_gives_the_metric_computed_directly(served: Served) -> None:
    report = api.monitor_report("credit-risk", window=timedelta(hours=1), settings=served.settings)

    performance = report.checks["performance"]
    assert report.rows == LOGGED
    # clean traffic (the training rows themselves): no check may warn or alert
    assert report.status == "ok"
    assert report.checks["quality"]["status"] == "ok"
    assert report.checks["fairness"]["status"] == "ok"
    assert performance["status"] == "ok" and performance["judged_metric"] == "roc_auc"
    assert performance["labelled_rows"] == LABELLED
    assert performance["metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(served.truth, served.scores), abs=1e-12
    )
    assert "roc_auc" in performance["baseline"]
    assert report.feedback_unmatched == UNKNOWN_FEEDBACK  # feedback for unknown ids: never a metric
    assert report.checks["operational"]["latency_ms"]["p50"] > 0
    assert "sex" in report.checks["fairness"]["columns"]
    assert report.checks["drift"]["columns"]["income"]["rows"] > 0


def test_an_empty_window_reports_no_data(served: Served) -> None:
    since = datetime(2020, 1, 1, tzinfo=UTC)
    report = api.monitor_report(
        served.ref, since=since, until=since + timedelta(days=1), settings=served.settings
    )
    assert report.rows == 0
    assert report.status == "no_data"


def test_a_data_file_is_checked_against_the_reference(served: Served) -> None:
    data = served.root / "data" / "applications.csv"
    report = api.monitor_report(served.ref, data=data, save=False, settings=served.settings)
    assert report.rows == 3_000
    assert report.checks["drift"]["columns"]["age"]["status"] in ("ok", "warn")
    assert report.checks["quality"]["rejected_rows"] == 0
    assert report.checks["performance"]["status"] == "no_data"


def test_a_data_file_is_validated_as_serving_validates(served: Served, tmp_path: Path) -> None:
    """Blanks in an integer-like category make the reader see floats: "36.0" must still be "36"."""
    frame = pd.read_csv(served.root / "data" / "applications.csv", dtype=str, keep_default_na=False)
    frame.loc[:99, "term_months"] = ""  # the column now reads as float64: 36.0, 60.0, NaN
    frame.loc[100:102, "age"] = "5"  # below the schema's min of 18: refused, as serving would
    data = tmp_path / "new_rows.csv"
    frame.to_csv(data, index=False)

    report = api.monitor_report(served.ref, data=data, settings=served.settings)

    quality = report.checks["quality"]
    term = quality["columns"]["term_months"]
    assert report.rows == 3_000 and quality["rejected_rows"] == 3
    assert term["unseen_values"] == 0 and term["nulls"] == 100
    assert report.checks["drift"]["columns"]["term_months"]["status"] == "ok"
    assert quality["status"] == "ok" and report.checks["drift"]["status"] == "ok"
    with api.open_registry(served.settings) as registry:
        stored = list_results(registry.engine, "credit-risk", check="quality", limit=1)[0]
    assert (stored.window_start, stored.window_end) == (None, None)  # a file has no window
    assert stored.result["source"] == str(data)


def test_a_data_file_takes_no_window(served: Served) -> None:
    data = served.root / "data" / "applications.csv"
    with pytest.raises(DataError, match="no time window"):
        api.monitor_report(
            served.ref, data=data, window=timedelta(hours=1), settings=served.settings
        )
    result = CliRunner().invoke(
        cli,
        [
            "-C",
            str(served.root),
            "monitor",
            "report",
            served.ref,
            "--data",
            str(data),
            "--since",
            "2026-01-01T00:00Z",
        ],
    )
    assert result.exit_code == 2 and "no time window" in result.output


def test_the_cli_prints_a_table_and_json_and_results_are_stored(served: Served) -> None:
    runner = CliRunner()
    base = ["-C", str(served.root), "monitor", "report", "credit-risk", "--window", "1h"]

    as_json = runner.invoke(cli, [*base, "--json"])
    assert as_json.exit_code == 0, as_json.output
    parsed = json.loads(as_json.output)
    assert parsed["rows"] == LOGGED
    assert parsed["checks"]["performance"]["labelled_rows"] == LABELLED

    shown = runner.invoke(cli, base)
    assert shown.exit_code == 0, shown.output
    assert "drift by column" in shown.output and "performance" in shown.output

    with api.open_registry(served.settings) as registry:
        stored = list_results(registry.engine, "credit-risk", check="performance")
    assert stored and stored[0].result["labelled_rows"] == LABELLED
    assert stored[0].result["source"] == "log" and stored[0].window_start is not None


def test_the_cli_refuses_a_bad_window(served: Served) -> None:
    result = CliRunner().invoke(
        cli, ["-C", str(served.root), "monitor", "report", "credit-risk", "--window", "soon"]
    )
    assert result.exit_code == 2
