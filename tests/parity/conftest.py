"""Fixtures of the parity tests: the shared trained project's production predictor."""

from __future__ import annotations

import pytest

from atoll.api import open_registry
from atoll.model.predictor import Predictor
from tests.conftest import TrainedProject


@pytest.fixture(scope="module")
def loaded(trained_project: TrainedProject) -> Predictor:
    """``credit-risk@production`` loaded through the registry's one load path."""
    with open_registry(trained_project.settings) as registry:
        return registry.load_predictor("credit-risk@production")
