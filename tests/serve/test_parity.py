"""The same 50 rows give identical answers through every route and through ``Predictor``.

Exact float equality after the JSON round trip: orjson writes the shortest repr that reads
back to the same double, so any difference is a real difference in what was computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import atoll
from atoll import api
from atoll.model.predictor import Prediction
from tests.serve.running import Served, make_project, start_server
from tests.serve.wire import (
    PREDICT,
    columns_body,
    csv_body,
    native_answers,
    v2_answers,
    v2_datatypes,
    v2_inputs,
)

pytestmark = pytest.mark.xdist_group("serve-parity")

MODEL = "credit-risk"
V1 = PREDICT.format(name=MODEL)
N_ROWS = 50

Answers = list[tuple[Any, list[float]]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    project = make_project(tmp_path_factory.mktemp("parity"))
    server = start_server(project)
    try:
        yield Served(project, server, api.demo_request_rows(project.root, N_ROWS))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def direct(served: Served) -> Prediction:
    predictor = atoll.load(f"{MODEL}@production", settings=served.project.settings)
    return predictor.predict(served.rows)


@pytest.fixture(scope="module")
def expected(direct: Prediction) -> Answers:
    assert direct.probabilities is not None
    return list(zip(direct.predictions.tolist(), direct.probabilities.tolist(), strict=True))


def test_the_rows_cover_nulls(served: Served) -> None:
    """Parity on rows with missing values too (the imputing path)."""
    assert len(served.rows) == N_ROWS
    assert any(value is None for row in served.rows for value in row.values())


def test_v1_one_row_at_a_time(served: Served, expected: Answers) -> None:
    answers: Answers = []
    for row in served.rows:
        response = served.server.client.post(V1, json={"instances": [row]})
        assert response.status_code == 200, response.text
        answers += native_answers(response.json())
    assert answers == expected


def test_v1_one_row_at_a_time_concurrently(served: Served, expected: Answers) -> None:
    """Requests that arrive together are batched: their answers must not change."""

    def one(row: dict[str, Any]) -> Answers:
        response = served.server.client.post(V1, json={"instances": [row]})
        assert response.status_code == 200, response.text
        return native_answers(response.json())

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = [a for part in pool.map(one, served.rows) for a in part]
    assert answers == expected


@pytest.mark.parametrize("form", ["records", "columns"])
def test_v1_in_one_request(served: Served, expected: Answers, form: str) -> None:
    body = {"instances": served.rows} if form == "records" else columns_body(served.rows)
    response = served.server.client.post(V1, json=body)
    assert response.status_code == 200, response.text
    assert native_answers(response.json()) == expected


def test_v2_with_one_tensor_per_column(served: Served, expected: Answers) -> None:
    client = served.server.client
    datatypes = v2_datatypes(client.get(f"/v2/models/{MODEL}").json())
    response = client.post(
        f"/v2/models/{MODEL}/infer", json={"inputs": v2_inputs(served.rows, datatypes)}
    )
    assert response.status_code == 200, response.text
    assert v2_answers(response.json()) == expected


@pytest.mark.parametrize("form", ["dataframe_split", "csv"])
def test_invocations(served: Served, direct: Prediction, form: str) -> None:
    client = served.server.client
    if form == "csv":
        response = client.post(
            "/invocations", content=csv_body(served.rows), headers={"content-type": "text/csv"}
        )
    else:
        split = columns_body(served.rows)
        response = client.post("/invocations", json={"dataframe_split": split})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == direct.predictions.tolist()
