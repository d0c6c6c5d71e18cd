"""Property-based API test: schemathesis reads the live ``/openapi.json`` and tries every route.

Bounded and deterministic (a fixed number of examples per operation, derandomized),
so it fits the suite's budget and fails the same way twice. Valid and invalid
requests alike must never get a 5xx (every client fault is a 4xx), every answer
must match the document, and invalid requests must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serve.running import Project, Server, make_project, start_server

pytestmark = pytest.mark.slow

EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""research/security.md §2 row 14: no 5xx, and every answer as the document declares it."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    project: Project = make_project(tmp_path_factory.mktemp("schemathesis") / "project")
    server = start_server(project)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def document(server: Server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_served_openapi_document_validates(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "/v1/models/{name}/predict" in document["paths"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(
    server: Server, document: dict[str, Any], mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {server.project.key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS
    assert len(operations) >= 10
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=server.url, headers=headers, timeout=30)
            case.validate_response(response, checks=checks)

        try:
            call()
        except Unsatisfiable:  # nothing to make invalid (no parameters and no body)
            assert mode is GenerationMode.NEGATIVE and not _inputs(operation), operation.label
    assert server.process.poll() is None, server.log()[-3000:]


def _inputs(operation: schemathesis.APIOperation) -> bool:
    """Whether the operation takes anything a client chooses: parameters or a body."""
    parameters = [*operation.path_parameters, *operation.query, *operation.headers]
    return bool(parameters) or bool(list(operation.body))
