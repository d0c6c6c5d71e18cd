"""Drafting ``columns:`` from data: types, roles, PII, nullability, and a spec that validates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from atoll.data.infer import MAX_ALLOWED_VALUES, infer_columns
from atoll.data.sources import read_frame
from atoll.data.synthetic import TARGET, credit_risk
from atoll.schema import Column, Schema
from atoll.spec import parse_spec
from atoll.types import ColumnType, Role


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_risk(2000)


@pytest.fixture(scope="module")
def inferred(frame: pd.DataFrame) -> dict[str, Column]:
    return infer_columns(frame, target=TARGET)


def spec_text(columns: dict[str, Column], target: str = TARGET, **extra: Any) -> str:
    raw: dict[str, Any] = {
        "name": "drafted",
        "task": "binary",
        "target": target,
        "data": {"path": "rows.csv"},
        "columns": {
            name: column.model_dump(mode="json", exclude_defaults=True)
            for name, column in columns.items()
        },
        "model": {"estimator": "lightgbm.LGBMClassifier"},
        **extra,
    }
    return yaml.safe_dump(raw, sort_keys=False)


# --- the credit-risk frame ----------------------------------------------------------


def test_one_column_per_frame_column_in_order(
    frame: pd.DataFrame, inferred: dict[str, Column]
) -> None:
    assert list(inferred) == list(frame.columns)


def test_types(inferred: dict[str, Column]) -> None:
    types = {name: column.type for name, column in inferred.items()}
    assert types["application_id"] is ColumnType.STRING
    assert types["email"] is ColumnType.STRING
    assert types["application_date"] is ColumnType.DATETIME
    assert types["age"] is ColumnType.INT
    assert types["credit_score"] is ColumnType.INT
    assert types["num_open_accounts"] is ColumnType.INT
    assert types["term_months"] is ColumnType.INT
    assert types[TARGET] is ColumnType.INT
    assert types["income"] is ColumnType.FLOAT
    assert types["employment_years"] is ColumnType.FLOAT
    assert types["debt_to_income"] is ColumnType.FLOAT
    for name in ("sex", "home_ownership", "purpose"):
        assert types[name] is ColumnType.CATEGORY, name


def test_small_text_sets_become_closed_categories(
    frame: pd.DataFrame, inferred: dict[str, Column]
) -> None:
    assert inferred["sex"].allowed == ["female", "male"]
    assert inferred["home_ownership"].allowed == ["mortgage", "other", "own", "rent"]
    assert inferred["purpose"].allowed == sorted(frame["purpose"].unique().tolist())
    assert inferred["purpose"].unknown == "error"
    for name in ("application_id", "email", "age", "income"):
        assert inferred[name].allowed is None, name


def test_email_is_pii_and_ignored(inferred: dict[str, Column]) -> None:
    email = inferred["email"]
    assert email.pii is True
    assert email.role is Role.IGNORE
    assert sum(c.pii for c in inferred.values()) == 1


def test_id_column(inferred: dict[str, Column]) -> None:
    assert inferred["application_id"].role is Role.ID
    assert inferred["application_id"].pii is False
    ids = [name for name, column in inferred.items() if column.role is Role.ID]
    assert ids == ["application_id"]


def test_target_role(inferred: dict[str, Column]) -> None:
    assert inferred[TARGET].role is Role.TARGET
    assert [n for n, c in inferred.items() if c.role is Role.TARGET] == [TARGET]


def test_without_a_target_every_column_keeps_its_guess(frame: pd.DataFrame) -> None:
    columns = infer_columns(frame)
    assert columns[TARGET].role is Role.FEATURE
    assert not any(c.role is Role.TARGET for c in columns.values())


def test_nullable_only_where_nulls_are(frame: pd.DataFrame, inferred: dict[str, Column]) -> None:
    for name, column in inferred.items():
        assert column.nullable is bool(frame[name].isna().any()), name
    assert {n for n, c in inferred.items() if c.nullable} == {
        "income",
        "employment_years",
        "debt_to_income",
    }


def test_no_ranges_or_sensitivity_are_guessed(inferred: dict[str, Column]) -> None:
    for name, column in inferred.items():
        assert column.min is None, name
        assert column.max is None, name
        assert column.sensitive is False, name


def test_features_are_the_remaining_columns(inferred: dict[str, Column]) -> None:
    features = [n for n, c in inferred.items() if c.role is Role.FEATURE]
    assert "application_id" not in features
    assert "email" not in features
    assert TARGET not in features
    assert {"age", "income", "sex", "purpose", "application_date"} <= set(features)


# --- the draft is a working spec ----------------------------------------------------


def test_inferred_columns_form_a_valid_spec(
    frame: pd.DataFrame, inferred: dict[str, Column]
) -> None:
    spec = parse_spec(spec_text(inferred))
    assert dict(spec.columns) == inferred
    assert spec.schema.columns[TARGET].role is Role.TARGET


def test_the_drafted_spec_validates_the_same_frame(
    frame: pd.DataFrame, inferred: dict[str, Column]
) -> None:
    spec = parse_spec(spec_text(inferred))
    result = spec.schema.validate(frame, "train")
    assert result.report.ok, result.report.summary()
    assert result.report.n_rows == len(frame)
    assert not result.invalid_rows.any()
    predict = spec.schema.validate(
        frame.drop(columns=[TARGET, "application_id", "email"]), "predict"
    )
    assert predict.report.ok, predict.report.summary()


def test_the_drafted_spec_with_a_time_split(inferred: dict[str, Column]) -> None:
    raw = spec_text(
        inferred,
        data={"path": "rows.csv", "time_column": "application_date"},
        split={"method": "time"},
    )
    spec = parse_spec(raw)
    assert spec.data.time_column == "application_date"


def test_draft_from_a_csv_file_validates_that_file(tmp_path: Path) -> None:
    credit_risk(1500, seed=3).to_csv(tmp_path / "rows.csv", index=False)
    rows = read_frame("rows.csv", base_dir=tmp_path)
    columns = infer_columns(rows, target=TARGET)
    assert columns["application_date"].type is ColumnType.DATETIME
    assert columns["email"].role is Role.IGNORE
    spec = parse_spec(spec_text(columns))
    result = spec.schema.validate(rows, "train")
    assert result.report.ok, result.report.summary()


def test_draft_from_a_parquet_file_validates_that_file(tmp_path: Path) -> None:
    credit_risk(1500, seed=4).to_parquet(tmp_path / "rows.parquet", index=False)
    rows = read_frame("rows.parquet", base_dir=tmp_path)
    columns = infer_columns(rows, target=TARGET)
    result = Schema(columns, TARGET).validate(rows, "train")
    assert result.report.ok, result.report.summary()


# --- individual guesses -------------------------------------------------------------


def test_integral_floats_are_int_and_fractional_floats_are_float() -> None:
    columns = infer_columns(
        pd.DataFrame(
            {
                "whole": [1.0, 2.0, np.nan],
                "part": [1.0, 2.5, 3.0],
                "empty": [np.nan, np.nan, np.nan],
            }
        )
    )
    assert columns["whole"].type is ColumnType.INT
    assert columns["whole"].nullable is True
    assert columns["part"].type is ColumnType.FLOAT
    assert columns["empty"].type is ColumnType.FLOAT
    assert columns["empty"].nullable is True


def test_bool_columns() -> None:
    frame = pd.DataFrame(
        {
            "plain": [True, False, True],
            "with_nulls": pd.Series([True, None, False], dtype=object),
            "nullable": pd.array([True, None, False], dtype="boolean"),
        }
    )
    columns = infer_columns(frame)
    for name in frame.columns:
        assert columns[name].type is ColumnType.BOOL, name
    assert columns["plain"].nullable is False
    assert columns["with_nulls"].nullable is True
    assert columns["with_nulls"].allowed is None
    columns["t"] = Column(type=ColumnType.INT, role=Role.TARGET)
    assert Schema(columns, "t").validate(frame, "predict").report.ok


def test_datetime_columns_naive_and_aware() -> None:
    naive = pd.to_datetime(pd.Series(["2024-01-01", "2024-02-01"]), format="ISO8601")
    frame = pd.DataFrame({"naive": naive, "aware": naive.dt.tz_localize("UTC")})
    columns = infer_columns(frame)
    assert columns["naive"].type is ColumnType.DATETIME
    assert columns["aware"].type is ColumnType.DATETIME


def test_category_threshold() -> None:
    n = 200
    at_limit = [f"v{i % MAX_ALLOWED_VALUES}" for i in range(n)]
    over_limit = [f"v{i % (MAX_ALLOWED_VALUES + 1)}" for i in range(n)]
    columns = infer_columns(pd.DataFrame({"at": at_limit, "over": over_limit}))
    assert columns["at"].type is ColumnType.CATEGORY
    assert columns["at"].allowed is not None
    assert len(columns["at"].allowed) == MAX_ALLOWED_VALUES
    assert columns["over"].type is ColumnType.STRING
    assert columns["over"].allowed is None
    assert columns["over"].role is Role.FEATURE  # repeated values: not an id


def test_allowed_values_ignore_nulls_and_are_text() -> None:
    frame = pd.DataFrame({"c": pd.Series(["b", None, "a", "b", 3], dtype=object)})
    column = infer_columns(frame)["c"]
    assert column.type is ColumnType.CATEGORY
    assert column.allowed == ["3", "a", "b"]
    assert column.nullable is True


def test_unique_text_with_many_values_is_an_id() -> None:
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(100)], "n": np.arange(100)})
    columns = infer_columns(frame)
    assert columns["key"].role is Role.ID
    assert columns["key"].type is ColumnType.STRING
    assert columns["n"].role is Role.FEATURE  # unique numbers are not ids


@pytest.mark.parametrize(
    "name",
    [
        "email",
        "Email",
        "work_email",
        "e-mail",
        "phone",
        "mobile_phone",
        "ssn",
        "passport_no",
        "first_name",
        "lastname",
        "FullName",
        "home_address",
    ],
)
def test_pii_by_name(name: str) -> None:
    frame = pd.DataFrame({name: [f"value {i}" for i in range(40)]})
    column = infer_columns(frame)[name]
    assert column.pii is True
    assert column.role is Role.IGNORE


def test_pii_by_value() -> None:
    emails = [f"user{i}@example.org" for i in range(40)]
    frame = pd.DataFrame({"contact": emails, "note": [f"note {i}" for i in range(40)]})
    columns = infer_columns(frame)
    assert columns["contact"].pii is True
    assert columns["contact"].role is Role.IGNORE
    assert columns["note"].pii is False


def test_pii_by_value_needs_most_values_to_look_like_emails() -> None:
    mostly = [f"user{i}@example.org" for i in range(45)] + ["n/a"] * 5
    half = [f"user{i}@example.org" for i in range(25)] + [f"x{i}" for i in range(25)]
    columns = infer_columns(pd.DataFrame({"mostly": mostly, "half": half}))
    assert columns["mostly"].pii is True
    assert columns["half"].pii is False


def test_pii_wins_over_target() -> None:
    frame = pd.DataFrame({"email": [f"u{i}@x.io" for i in range(40)]})
    assert infer_columns(frame, target="email")["email"].role is Role.IGNORE


def test_empty_frame() -> None:
    assert infer_columns(pd.DataFrame()) == {}
