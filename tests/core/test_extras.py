"""Optional libraries: the lean core declares none of them, and each names a real extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from atoll import _extras
from atoll.errors import MissingDependencyError

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]


def distribution(requirement: str) -> str:
    """``"dask[distributed]>=2024.8"`` -> ``"dask"``."""
    found = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert found, requirement
    return found.group(0).lower()


def provided_by(extra: str) -> set[str]:
    """Every distribution an extra brings, following ``atoll[...]`` references."""
    names: set[str] = set()
    for requirement in EXTRAS[extra]:
        if requirement.startswith("atoll["):
            for inner in requirement[len("atoll[") : requirement.index("]")].split(","):
                names |= provided_by(inner)
        else:  # dask[distributed] brings the distribution of that name too
            names.add(distribution(requirement))
            names |= set(re.findall(r"\[([a-z-]+)\]", requirement))
    return names


def test_every_optional_library_names_an_extra_that_brings_it() -> None:
    for module, (dist, extra) in _extras.LIBRARIES.items():
        assert extra in EXTRAS, f"{module}: no extra {extra!r} in pyproject.toml"
        assert dist in provided_by(extra), f"atoll[{extra}] does not install {dist}"


def test_the_lean_core_declares_no_optional_library() -> None:
    core = {distribution(r) for r in PROJECT["dependencies"]}
    optional = {dist for dist, _ in _extras.LIBRARIES.values()}
    assert core & optional == set()
    assert {"numpy", "starlette", "uvicorn", "sqlalchemy"} <= core
    assert "pandas" not in core  # the prediction path runs on numpy alone


def test_full_holds_every_optional_library_but_the_opt_in_ones() -> None:
    opt_in = {"xgboost-cpu", "psycopg"}  # own extras, as before the lean core existed
    wanted = {dist for dist, _ in _extras.LIBRARIES.values()} - opt_in
    assert wanted <= provided_by("full")
    assert provided_by("all") == provided_by("full")
    assert provided_by("full") <= provided_by("dev")


def test_require_passes_for_installed_libraries() -> None:
    _extras.require("numpy", "pandas", *_extras.TRAINING, *_extras.COMPRESSING, *_extras.MONITORING)


def test_require_names_the_extra_of_a_missing_library() -> None:
    with pytest.raises(MissingDependencyError) as caught:
        _extras.require("numpy", "atoll_no_such_library")
    assert caught.value.context == {"package": "atoll_no_such_library", "extra": "full"}
    assert "pip install 'atoll[full]'" in str(caught.value)
