"""Monitoring a real ``atoll serve`` process: traffic over HTTP, the log it writes, the report.

A 20-feature model (15 numeric, 5 categorical) is trained, promoted and
served; windows of traffic are sent through the native predict route, labels
through ``POST /v1/feedback``, and ``atoll.api.monitor_report`` judges each
window from the prediction log the server wrote. Nothing here is synthetic past
the generated rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, roc_auc_score

from atoll import api
from atoll.settings import Settings
from tests.serve.running import TEST_SERVE, Project, Server, _environ, start_server

pytestmark = pytest.mark.slow

NUMERIC = [f"x{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
LEVELS = ["a", "b", "c", "d"]
DRIFTED = ["x3", "x9", "c2"]
TRAINING_ROWS = 4_000
WINDOW_ROWS = 2_000
ROWS_PER_REQUEST = 100
LABELLED_ROWS = 1_500


def features(rows: int, seed: int) -> pd.DataFrame:
    """Independent features: standard normal numerics, categories with fixed shares, a group."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {name: rng.normal(0.0, 1.0, rows).round(4) for name in NUMERIC}
    for name in CATEGORICAL:
        data[name] = rng.choice(LEVELS, rows, p=[0.4, 0.3, 0.2, 0.1])
    data["group"] = rng.choice(["g1", "g2"], rows)
    return pd.DataFrame(data)


def write_project(root: Path) -> Path:
    """A project whose target depends on x0, x1 and c0; ``group`` is sensitive and ignored."""
    frame = features(TRAINING_ROWS, seed=1)
    rng = np.random.default_rng(2)
    logit = 1.5 * frame["x0"] + 0.8 * frame["x1"] + (frame["c0"] == "a") - 0.4
    frame["label"] = (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)
    (root / "data").mkdir(parents=True)
    frame.to_csv(root / "data" / "train.csv", index=False)
    columns: dict[str, Any] = {name: {"type": "float"} for name in NUMERIC}
    columns |= {name: {"type": "category", "allowed": LEVELS} for name in CATEGORICAL}
    columns["group"] = {
        "type": "category",
        "allowed": ["g1", "g2"],
        "sensitive": True,
        "role": "ignore",
    }
    columns["label"] = {"type": "int", "nullable": False}
    spec = {
        "name": "twenty",
        "task": "binary",
        "target": "label",
        "data": {"path": "data/train.csv"},
        "columns": columns,
        "features": [{"step": "onehot", "columns": CATEGORICAL}],
        "model": {
            "estimator": "lightgbm.LGBMClassifier",
            "params": {"n_estimators": 30, "num_leaves": 15, "n_jobs": 1},
        },
        "split": {"method": "random", "test_size": 0.25},
        "evaluate": {"metrics": ["roc_auc", "accuracy"]},
        "gates": [{"metric": "roc_auc", "min": 0.6}],
        "serve": TEST_SERVE,
        # strict: every acknowledged prediction is in the log when its answer arrives
        "monitor": {"log": {"durability": "strict"}},
    }
    spec_path = root / "atoll.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return spec_path


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    answers: list[dict[str, Any]]  # the server's one answer per row, in order


@dataclass
class Served:
    project: Project
    server: Server

    def send(self, frame: pd.DataFrame) -> Window:
        """Post ``frame`` in requests of 100 rows; the window spans exactly these requests."""
        since = datetime.now(UTC)
        answers: list[dict[str, Any]] = []
        for start in range(0, len(frame), ROWS_PER_REQUEST):
            rows = frame.iloc[start : start + ROWS_PER_REQUEST].to_dict("records")
            response = self.server.client.post(
                "/v1/models/twenty/predict", json={"instances": rows}
            )
            assert response.status_code == 200, response.text
            answers += response.json()["predictions"]
        return Window(since, datetime.now(UTC) + timedelta(milliseconds=1), answers)

    def report(self, window: Window) -> dict[str, Any]:
        result = api.monitor_report(
            "twenty",
            since=window.since,
            until=window.until,
            save=False,
            settings=self.project.settings,
        )
        assert result.rows == WINDOW_ROWS
        return result.to_dict()["checks"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served-traffic")
    spec_path = write_project(root)
    settings = Settings.from_env(project_dir=root, environ=_environ(None))
    outcome = api.train(spec_path, settings=settings)
    api.promote(f"{outcome.version.name}@{outcome.version.version}", settings=settings)
    _, key = api.create_key(["admin"], settings=settings)
    project = Project(root, settings, key, name="twenty")
    server = start_server(project)
    try:
        yield Served(project, server)
    finally:
        server.stop()


def test_a_window_labelled_through_feedback_gives_the_metric_computed_directly(
    served: Served,
) -> None:
    frame = features(WINDOW_ROWS, seed=30)
    window = served.send(frame)
    truth = (np.random.default_rng(31).uniform(size=WINDOW_ROWS) < 0.5).astype(int)
    truth[: WINDOW_ROWS // 2] = (frame["x0"] > 0).astype(int)[: WINDOW_ROWS // 2]
    labelled = LABELLED_ROWS
    feedback = [
        {"prediction_id": answer["id"], "label": int(label)}
        for answer, label in zip(window.answers[:labelled], truth, strict=False)
    ]
    response = served.server.client.post("/v1/feedback", json={"feedback": feedback})
    assert response.status_code == 200 and response.json() == {"stored": labelled}

    performance = served.report(window)["performance"]

    scores = [answer["probabilities"]["1"] for answer in window.answers[:labelled]]
    predicted = [answer["prediction"] for answer in window.answers[:labelled]]
    assert performance["labelled_rows"] == labelled
    metrics = performance["metrics"]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(truth[:labelled], scores), abs=1e-12)
    assert metrics["accuracy"] == pytest.approx(
        accuracy_score(truth[:labelled], predicted), abs=1e-12
    )


def drifted_columns(checks: dict[str, Any]) -> set[str]:
    columns = checks["drift"]["columns"]
    return {name for name, column in columns.items() if column["status"] != "ok"}


def test_drift_injected_into_3_of_20_features_is_found_on_exactly_those(served: Served) -> None:
    clean = served.report(served.send(features(WINDOW_ROWS, seed=10)))
    assert drifted_columns(clean) == set()
    assert clean["drift"]["status"] == "ok"

    shifted = features(WINDOW_ROWS, seed=11)
    shifted["x3"] += 1.0  # a location shift of one standard deviation
    shifted["x9"] *= 2.5  # same centre, a wider spread
    shifted["c2"] = np.random.default_rng(12).choice(LEVELS, WINDOW_ROWS, p=[0.1, 0.2, 0.3, 0.4])
    checks = served.report(served.send(shifted))

    found = drifted_columns(checks)
    assert found == set(DRIFTED), found
    assert set(checks["drift"]["drifted"]) == set(DRIFTED)
    assert all(checks["drift"]["columns"][name]["status"] == "alert" for name in DRIFTED)


def test_a_group_disparity_in_traffic_is_flagged(served: Served) -> None:
    fair = served.report(served.send(features(WINDOW_ROWS, seed=20)))
    assert fair["fairness"]["status"] == "ok"

    skewed = features(WINDOW_ROWS, seed=21)
    in_g2 = skewed["group"] == "g2"
    skewed.loc[in_g2, "x0"] += 2.0  # g2's applicants now look riskier to the model
    checks = served.report(served.send(skewed))

    fairness = checks["fairness"]
    group = fairness["columns"]["group"]
    assert fairness["status"] == "alert"
    assert "demographic_parity_difference" in group["flagged"]
    rates = {name: g["selection_rate"] for name, g in group["groups"].items()}
    assert rates["g2"] > rates["g1"] + 0.2
