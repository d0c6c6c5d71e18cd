from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from atoll.data.steps import Step
from atoll.data.steps_base import Columns, float_values
from atoll.data.wrangler import Wrangler
from atoll.errors import DataError, NotFittedError, PackageError, SpecError
from atoll.spec import StepSpec

FEATURES = ["age", "income", "loan_amount", "purpose", "home_ownership", "application_date"]
PURPOSES = ["debt_consolidation", "credit_card", "car", "medical", "other"]
HOMES = ["rent", "mortgage", "own"]

PIPELINE: list[dict[str, Any]] = [
    {"step": "impute", "columns": ["income"], "strategy": "median"},
    {"step": "log1p", "columns": ["income", "loan_amount"]},
    {"step": "scale", "columns": ["income", "loan_amount"]},
    {"step": "onehot", "columns": ["purpose"], "max_categories": 4},
    {"step": "ordinal", "columns": ["home_ownership"]},
    {"step": "datetime_parts", "columns": ["application_date"], "parts": ["year", "month"]},
    {"step": "bucketize", "columns": ["age"], "bins": 4},
]


class DoubleIt(Step):
    """A user step, importable as ``tests.data.test_wrangler.DoubleIt``."""

    name: ClassVar[str] = "double_it"

    def __init__(self, columns: list[str], factor: float = 2.0) -> None:
        super().__init__(columns)
        self.factor = factor

    def apply_column(self, column: str, series: pd.Series[Any]) -> Columns:
        return {column: float_values(series) * self.factor}


class NotAStep:
    pass


def credit_frame(n_rows: int, seed: int) -> pd.DataFrame:
    """Credit-like rows in canonical layout, with nulls in every column that allows them."""
    rng = np.random.default_rng(seed)

    def nulls(values: Any, rate: float) -> Any:
        values = np.asarray(values, dtype=object if isinstance(values[0], str) else None)
        values[rng.random(n_rows) < rate] = None if values.dtype == object else np.nan
        return values

    dates = np.datetime64("2023-01-01", "ns") + rng.integers(0, 730 * 86_400, n_rows).astype(
        "timedelta64[s]"
    )
    dates[rng.random(n_rows) < 0.05] = np.datetime64("NaT")
    return pd.DataFrame(
        {
            "application_id": [f"app-{i}" for i in range(n_rows)],
            "age": rng.integers(18, 80, n_rows).astype(np.float64),
            "income": nulls(rng.lognormal(10.5, 0.6, n_rows), 0.1),
            "loan_amount": rng.lognormal(9.0, 0.8, n_rows),
            "purpose": pd.Series(nulls(rng.choice(PURPOSES, n_rows).astype(object), 0.05)),
            "home_ownership": pd.Series(nulls(rng.choice(HOMES, n_rows).astype(object), 0.05)),
            "application_date": pd.Series(dates, dtype="datetime64[ns]"),
            "defaulted": rng.integers(0, 2, n_rows).astype(np.float64),
        }
    )


def unseen_rows() -> pd.DataFrame:
    """Rows as a server would see them: unseen categories, nulls, extreme values."""
    return pd.DataFrame(
        {
            "age": [17.0, np.nan, 99.0],
            "income": [np.nan, -50.0, 1e9],
            "loan_amount": [0.0, np.nan, 5e6],
            "purpose": pd.Series(["crypto", None, "car"], dtype=object),
            "home_ownership": pd.Series([None, "castle", "own"], dtype=object),
            "application_date": pd.Series(
                [None, np.datetime64("2031-05-01"), np.datetime64("2020-02-29")],
                dtype="datetime64[ns]",
            ),
        }
    )


def specs(entries: list[dict[str, Any]]) -> list[StepSpec]:
    return [StepSpec.model_validate(entry) for entry in entries]


def fitted(train: pd.DataFrame | None = None) -> Wrangler:
    wrangler = Wrangler.from_spec(specs(PIPELINE), FEATURES, [])
    return wrangler.fit(credit_frame(500, seed=1) if train is None else train)


def rebuilt(wrangler: Wrangler, allow_imports: list[str] | None = None) -> Wrangler:
    text = json.dumps(wrangler.to_state(), allow_nan=False)
    return Wrangler.from_state(json.loads(text), allow_imports or [])


def problem_fields(error: SpecError) -> list[str]:
    return [field for field, _, _ in error.problems]


# -- the happy path --------------------------------------------------------------------------


def test_feature_names_follow_the_steps() -> None:
    wrangler = fitted()
    purposes = [f"purpose={p}" for p in wrangler.steps[3].categories_["purpose"]]  # type: ignore[attr-defined]
    assert len(purposes) == 4
    assert wrangler.feature_names_ == [
        "age",
        "income",
        "loan_amount",
        *purposes,
        "purpose=__unknown__",
        "purpose=__missing__",
        "home_ownership",
        "application_date.year",
        "application_date.month",
    ]


def test_apply_gives_floats_in_feature_order_and_ignores_other_columns() -> None:
    wrangler = fitted()
    frame = credit_frame(50, seed=2)
    out = wrangler.apply(frame)
    assert list(out.columns) == wrangler.feature_names_
    assert (out.dtypes == np.float64).all()
    assert "application_id" not in out.columns
    # nulls survive only where a step keeps them: ordinal codes and date parts
    keeps_nulls = ["home_ownership", "application_date.year", "application_date.month"]
    assert not out.drop(columns=keeps_nulls).isna().any().any()
    assert out[keeps_nulls].isna().any().all()


def test_matrix_is_c_contiguous_float64() -> None:
    wrangler = fitted()
    matrix = wrangler.matrix(credit_frame(40, seed=3))
    assert matrix.dtype == np.float64
    assert matrix.shape == (40, len(wrangler.feature_names_))
    assert matrix.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(matrix, wrangler.apply(credit_frame(40, seed=3)).to_numpy())


def test_hand_checked_unseen_rows() -> None:
    wrangler = fitted()
    out = wrangler.apply(unseen_rows())
    np.testing.assert_array_equal(out["purpose=__unknown__"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(out["purpose=__missing__"], [0.0, 1.0, 0.0])
    home = out["home_ownership"].to_numpy()
    assert np.isnan(home[0]) and home[1] == -1.0 and home[2] >= 0.0
    np.testing.assert_array_equal(out["application_date.year"], [np.nan, 2031.0, 2020.0])
    assert out["age"].tolist()[0] == 0.0 and np.isnan(out["age"].tolist()[1])
    assert out["age"].tolist()[2] == 3.0
    # income: imputed with the training median, then log1p (negatives clip to 0), then scaled
    impute, _, scale = wrangler.steps[:3]
    median = impute.fill_["income"]  # type: ignore[attr-defined]
    center, spread = scale.center_["income"], scale.spread_["income"]  # type: ignore[attr-defined]
    expected = (np.log1p([median, 0.0, 1e9]) - center) / spread
    np.testing.assert_allclose(out["income"], expected)


def test_fit_does_not_touch_the_input() -> None:
    frame = credit_frame(200, seed=4)
    before = frame.copy(deep=True)
    wrangler = fitted(frame)
    wrangler.apply(frame)
    assert_frame_equal(frame, before)


# -- parity: the promise that training and serving compute the same numbers -----------------


def test_state_round_trip_gives_identical_matrices() -> None:
    wrangler = fitted()
    again = rebuilt(wrangler)
    assert again.feature_names_ == wrangler.feature_names_
    for frame in (credit_frame(300, seed=5), unseen_rows()):
        np.testing.assert_array_equal(again.matrix(frame), wrangler.matrix(frame))
    assert again.to_state() == wrangler.to_state()


def test_state_layout() -> None:
    state = fitted().to_state()
    assert state["format"] == 1
    assert state["features"] == FEATURES
    assert [s["step"] for s in state["steps"]] == [entry["step"] for entry in PIPELINE]
    assert state["steps"][0]["params"] == {"strategy": "median", "value": None}
    assert state["steps"][0]["columns"] == ["income"]
    assert set(state["steps"][0]["state"]) == {"kinds", "fill"}


def test_row_by_row_equals_whole_frame() -> None:
    wrangler = rebuilt(fitted())
    frame = pd.concat([credit_frame(60, seed=6), unseen_rows()], ignore_index=True)
    whole = wrangler.matrix(frame)
    one_by_one = np.vstack([wrangler.matrix(frame.iloc[[i]]) for i in range(len(frame))])
    np.testing.assert_array_equal(one_by_one, whole)


def test_row_order_and_index_do_not_matter() -> None:
    wrangler = fitted()
    frame = credit_frame(100, seed=7)
    order = np.random.default_rng(0).permutation(len(frame))
    shuffled = frame.iloc[order].set_axis([5] * len(frame))  # duplicate labels, too
    np.testing.assert_array_equal(wrangler.matrix(shuffled), wrangler.matrix(frame)[order])


# -- errors ----------------------------------------------------------------------------------


def test_a_category_left_over_is_a_spec_error() -> None:
    entries = [entry for entry in PIPELINE if entry["step"] != "onehot"]
    wrangler = Wrangler.from_spec(specs(entries), FEATURES, [])
    with pytest.raises(SpecError, match=r"'purpose' is still categorical.*'onehot' or 'ordinal'"):
        wrangler.fit(credit_frame(100, seed=9))


def test_a_datetime_left_over_is_a_spec_error() -> None:
    entries = [entry for entry in PIPELINE if entry["step"] != "datetime_parts"]
    wrangler = Wrangler.from_spec(specs(entries), FEATURES, [])
    with pytest.raises(SpecError, match=r"'application_date' is still datetime.*datetime_parts"):
        wrangler.fit(credit_frame(100, seed=9))


def test_unknown_step_names_its_field() -> None:
    entries = [PIPELINE[0], {"step": "standardise", "columns": ["age"]}]
    with pytest.raises(SpecError, match="unknown step 'standardise'") as info:
        Wrangler.from_spec(specs(entries), FEATURES, [])
    assert problem_fields(info.value) == ["features[1].step"]


def test_a_column_that_is_not_a_feature_names_its_field() -> None:
    entries = [{"step": "scale", "columns": ["age", "defaulted"]}]
    with pytest.raises(SpecError, match="not feature columns: defaulted") as info:
        Wrangler.from_spec(specs(entries), FEATURES, [])
    assert problem_fields(info.value) == ["features[0].columns"]


def test_a_step_without_columns_names_its_field() -> None:
    with pytest.raises(SpecError) as info:
        Wrangler.from_spec(specs([{"step": "log1p"}]), FEATURES, [])
    assert problem_fields(info.value) == ["features[0].columns"]


def test_an_unknown_parameter_names_the_step() -> None:
    entries = [PIPELINE[0], {"step": "scale", "columns": ["age"], "methd": "robust"}]
    expected = r"unknown parameters \['methd'\]; it takes: method"
    with pytest.raises(SpecError, match=expected) as info:
        Wrangler.from_spec(specs(entries), FEATURES, [])
    assert problem_fields(info.value) == ["features[1]"]


def test_an_invalid_parameter_is_refused_before_any_data_is_read() -> None:
    entries = [{"step": "impute", "columns": ["income"], "strategy": "average"}]
    with pytest.raises(SpecError, match="'strategy' must be one of") as info:
        Wrangler.from_spec(specs(entries), FEATURES, [])
    assert problem_fields(info.value) == ["features[0].strategy"]


def test_a_missing_feature_at_apply_is_named() -> None:
    wrangler = fitted()
    with pytest.raises(DataError, match="missing feature columns: purpose") as info:
        wrangler.apply(credit_frame(10, seed=1).drop(columns="purpose"))
    assert info.value.context["column"] == "purpose"


def test_a_feature_of_another_kind_at_apply_is_a_data_error() -> None:
    wrangler = Wrangler([], ["age"]).fit(pd.DataFrame({"age": [30.0, 40.0]}))
    with pytest.raises(DataError, match="'age' is categorical, but was numeric"):
        wrangler.apply(pd.DataFrame({"age": pd.Series(["30"], dtype=object)}))


def test_apply_before_fit() -> None:
    wrangler = Wrangler.from_spec(specs(PIPELINE), FEATURES, [])
    with pytest.raises(NotFittedError):
        wrangler.apply(credit_frame(5, seed=1))
    with pytest.raises(NotFittedError):
        wrangler.to_state()


def test_malformed_state_is_a_package_error() -> None:
    state = fitted().to_state()
    with pytest.raises(PackageError):
        Wrangler.from_state({**state, "format": 2}, [])
    del state["steps"][0]["columns"]
    with pytest.raises(PackageError):
        Wrangler.from_state(state, [])


def test_numeric_features_of_other_dtypes_become_float64() -> None:
    frame = pd.DataFrame({"n": np.array([1, 2, 3], dtype=np.int64), "b": [True, False, True]})
    out = Wrangler([], ["n", "b"]).fit(frame).apply(frame)
    assert (out.dtypes == np.float64).all()
    np.testing.assert_array_equal(out.to_numpy(), [[1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])


# -- user steps by import path ---------------------------------------------------------------

DOUBLE_IT = "tests.data.test_wrangler.DoubleIt"


def test_a_user_step_by_import_path_when_allowed() -> None:
    entries = [{"step": DOUBLE_IT, "columns": ["age"], "factor": 3.0}]
    wrangler = Wrangler.from_spec(specs(entries), ["age"], ["tests.data"])
    frame = pd.DataFrame({"age": [1.0, np.nan, 2.5]})
    out = wrangler.fit(frame).apply(frame)
    np.testing.assert_array_equal(out["age"], [3.0, np.nan, 7.5])
    state = wrangler.to_state()
    assert state["steps"][0]["step"] == DOUBLE_IT
    assert state["steps"][0]["params"] == {"factor": 3.0}
    again = rebuilt(wrangler, ["tests.data"])
    np.testing.assert_array_equal(again.matrix(frame), wrangler.matrix(frame))


def test_a_user_step_outside_the_allow_list_is_refused() -> None:
    entries = specs([{"step": DOUBLE_IT, "columns": ["age"]}])
    with pytest.raises(SpecError, match="not allowed") as info:
        Wrangler.from_spec(entries, ["age"], [])
    assert problem_fields(info.value) == ["features[0].step"]
    wrangler = Wrangler.from_spec(entries, ["age"], ["tests.data"])
    wrangler.fit(pd.DataFrame({"age": [1.0]}))
    with pytest.raises(SpecError, match="not allowed"):  # a package cannot trust itself
        rebuilt(wrangler, ["atoll"])


def test_an_import_path_that_is_not_a_step_is_refused() -> None:
    entries = specs([{"step": "tests.data.test_wrangler.NotAStep", "columns": ["age"]}])
    with pytest.raises(SpecError, match=r"not a subclass of atoll\.data\.steps\.Step") as info:
        Wrangler.from_spec(entries, ["age"], ["tests.data"])
    assert problem_fields(info.value) == ["features[0].step"]
