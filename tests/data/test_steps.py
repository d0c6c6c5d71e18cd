from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from atoll.data.steps import (
    BUILTIN_STEPS,
    Bucketize,
    Clip,
    DatetimeParts,
    Impute,
    Log1p,
    OneHot,
    Ordinal,
    Scale,
    Step,
    resolve_step,
)
from atoll.errors import DataError, NotFittedError, PackageError, SpecError

NaN = np.nan


def text(*values: str | None) -> pd.Series[Any]:
    """A category column in canonical layout: object dtype holding str or None."""
    return pd.Series(list(values), dtype=object)


def stamps(*values: str | None) -> pd.Series[Any]:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601")).astype("datetime64[ns]")


def train_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, NaN, 4.0, 10.0],
            "c": text("a", "b", None, "a", "c"),
            "d": stamps("2024-02-29 13:45", None, "1969-12-31 23:30", "2023-01-01", "2024-12-31"),
        }
    )


def new_frame() -> pd.DataFrame:
    """Prediction-time rows: unseen categories, nulls everywhere, out-of-range numbers."""
    return pd.DataFrame(
        {
            "x": [NaN, -3.0, 100.0, 2.5],
            "c": text("zebra", None, "b", "a"),
            "d": stamps(None, "2030-06-15 06:00", "1950-01-01", "2024-02-29 13:45"),
        }
    ).set_axis([10, 11, 12, 13])  # a non-default index, kept as is by every step


def round_trip(step: Step) -> Step:
    """Rebuild ``step`` the way a model package does: params + state through JSON text."""
    state = json.loads(json.dumps(step.to_state(), allow_nan=False))
    params = json.loads(json.dumps(step.get_params(), allow_nan=False))
    return type(step).from_state(params, state)


def column(frame: pd.DataFrame, name: str) -> list[float]:
    return frame[name].tolist()


# One configured instance of every built-in step, for the contract tests.
CONFIGURED: list[Step] = [
    Impute(["x"], strategy="mean"),
    Impute(["x", "c"], strategy="most_frequent"),
    Impute(["c"], strategy="constant", value="unknown"),
    Scale(["x"], method="standard"),
    Scale(["x"], method="robust"),
    Clip(["x"], lower_quantile=0.25, upper=5.0),
    Log1p(["x"]),
    OneHot(["c"], max_categories=2),
    Ordinal(["c"]),
    Bucketize(["x"], strategy="quantile", bins=3),
    Bucketize(["x"], edges=[2.0, 5.0]),
    DatetimeParts(["d"], parts=["year", "dayofweek", "epoch_days"]),
]


def fresh(step: Step) -> Step:
    return type(step)(**step.get_params())


@pytest.fixture(params=CONFIGURED, ids=lambda s: f"{s.name}-{'-'.join(s.columns)}")
def step(request: pytest.FixtureRequest) -> Step:
    return fresh(request.param)


# -- the contract, for every built-in step ---------------------------------------------------


def test_registry_holds_every_builtin() -> None:
    assert set(BUILTIN_STEPS) == {
        "impute", "scale", "clip", "log1p", "onehot", "ordinal", "bucketize", "datetime_parts"
    }  # fmt: skip
    assert all(BUILTIN_STEPS[name].name == name for name in BUILTIN_STEPS)


def test_round_trip_applies_identically_on_new_rows(step: Step) -> None:
    step.fit(train_frame())
    rebuilt = round_trip(step)
    assert rebuilt.get_params() == step.get_params()
    assert_frame_equal(rebuilt.apply(new_frame()), step.apply(new_frame()))
    assert_frame_equal(rebuilt.apply(train_frame()), step.apply(train_frame()))


def test_state_is_plain_json(step: Step) -> None:
    state = step.fit(train_frame()).to_state()
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def test_apply_before_fit_raises(step: Step) -> None:
    with pytest.raises(NotFittedError, match=step.name):
        step.apply(train_frame())
    with pytest.raises(NotFittedError):
        step.to_state()
    with pytest.raises(NotFittedError):
        step.output_columns(["x", "c", "d"])


def test_apply_returns_a_new_frame_and_leaves_the_input_alone(step: Step) -> None:
    frame = train_frame()
    before = frame.copy(deep=True)
    out = step.fit(frame).apply(frame)
    assert out is not frame
    assert_frame_equal(frame, before)


def test_output_columns_match_apply(step: Step) -> None:
    out = step.fit(train_frame()).apply(new_frame())
    assert list(out.columns) == step.output_columns(["x", "c", "d"])
    assert list(out.index) == [10, 11, 12, 13]


def test_init_only_stores_params(step: Step) -> None:
    params = step.get_params()
    assert params["columns"] == step.columns
    again = type(step)(**params)
    assert again.get_params() == params


def test_missing_column_at_fit_names_it(step: Step) -> None:
    frame = train_frame().drop(columns=step.columns[0])
    with pytest.raises(DataError, match=repr(step.columns[0])) as info:
        step.fit(frame)
    assert info.value.context["column"] == step.columns[0]


def test_missing_column_at_apply_names_it(step: Step) -> None:
    step.fit(train_frame())
    with pytest.raises(DataError, match=repr(step.columns[0])):
        step.apply(new_frame().drop(columns=step.columns[0]))


def test_bad_columns_param_is_a_spec_error(step: Step) -> None:
    params = step.get_params()
    for bad in ([], "x", ["x", "x"], [1]):
        with pytest.raises(SpecError, match="'columns'"):
            type(step)(**{**params, "columns": bad}).fit(train_frame())


def test_failed_fit_leaves_the_step_unfitted() -> None:
    step = Impute(["x"], strategy="mean")
    with pytest.raises(DataError):
        step.fit(pd.DataFrame({"x": [NaN, NaN]}))
    with pytest.raises(NotFittedError):
        step.apply(train_frame())


def test_a_column_of_another_kind_at_apply_time_is_refused() -> None:
    step = Impute(["x"], strategy="most_frequent").fit(train_frame())
    with pytest.raises(DataError, match="'x' is categorical; this step needs numeric"):
        step.apply(pd.DataFrame({"x": text("1", None)}))


def test_state_that_does_not_match_the_columns_is_a_package_error() -> None:
    step = Scale(["x"]).fit(train_frame())
    state = step.to_state()
    state["center"] = {"other": 1.0}
    with pytest.raises(PackageError, match="center"):
        Scale.from_state(step.get_params(), state)


def test_pandas_string_dtype_works_like_object() -> None:
    frame = train_frame().assign(c=lambda f: f["c"].astype("str"))
    step = OneHot(["c"]).fit(frame)
    assert_frame_equal(step.apply(frame), OneHot(["c"]).fit(train_frame()).apply(train_frame()))


# -- impute ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "fill"), [("mean", 4.25), ("median", 3.0), ("most_frequent", 1.0)]
)
def test_impute_numeric(strategy: str, fill: float) -> None:
    out = Impute(["x"], strategy=strategy).fit(train_frame()).apply(train_frame())
    assert column(out, "x") == [1.0, 2.0, fill, 4.0, 10.0]
    assert out["x"].dtype == np.float64


def test_impute_constant_numeric_and_categorical() -> None:
    out = Impute(["x"], strategy="constant", value=0).fit(train_frame()).apply(new_frame())
    assert column(out, "x") == [0.0, -3.0, 100.0, 2.5]
    step = Impute(["c"], strategy="constant", value="none")
    out = step.fit(train_frame()).apply(new_frame())
    assert column(out, "c") == ["zebra", "none", "b", "a"]
    assert out["c"].dtype == object


def test_impute_most_frequent_categorical_breaks_ties_by_value() -> None:
    out = Impute(["c"], strategy="most_frequent").fit(train_frame()).apply(new_frame())
    assert column(out, "c") == ["zebra", "a", "b", "a"]
    tied = pd.DataFrame({"c": text("y", "x", None, "y", "x")})
    assert Impute(["c"], strategy="most_frequent").fit(tied).fill_ == {"c": "x"}


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_impute_refuses_an_all_null_column(strategy: str) -> None:
    frame = pd.DataFrame({"x": [NaN, NaN], "c": text(None, None)})
    cols = ["x", "c"] if strategy == "most_frequent" else ["x"]
    with pytest.raises(DataError, match="'x' has no non-null values") as info:
        Impute(cols, strategy=strategy).fit(frame)
    assert info.value.context["column"] == "x"


def test_impute_mean_on_a_category_names_the_column() -> None:
    with pytest.raises(DataError, match="'c' is categorical") as info:
        Impute(["c"], strategy="mean").fit(train_frame())
    assert info.value.context["column"] == "c"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"strategy": "mode"}, "strategy"),
        ({"strategy": "constant"}, "value"),
        ({"strategy": "constant", "value": float("nan")}, "value"),
        ({"strategy": "mean", "value": 3}, "value"),
        ({"columns": ["x"], "strategy": "constant", "value": "zero"}, "value"),
        ({"columns": ["c"], "strategy": "constant", "value": 0}, "value"),
    ],
)
def test_impute_bad_params(params: dict[str, Any], param: str) -> None:
    with pytest.raises(SpecError, match=f"'{param}'") as info:
        Impute(**{"columns": ["x"], **params}).fit(train_frame())
    assert info.value.problems[0][0] == param


# -- scale -----------------------------------------------------------------------------------


def test_scale_standard() -> None:
    out = Scale(["x"]).fit(train_frame()).apply(train_frame())
    # mean of 1, 2, 4, 10 is 4.25; population variance (3.25² + 2.25² + 0.25² + 5.75²) / 4
    std = np.sqrt(12.1875)
    expected = [(1 - 4.25) / std, (2 - 4.25) / std, NaN, (4 - 4.25) / std, (10 - 4.25) / std]
    np.testing.assert_allclose(column(out, "x"), expected)


def test_scale_minmax_and_robust() -> None:
    minmax = Scale(["x"], method="minmax").fit(train_frame()).apply(new_frame())
    np.testing.assert_allclose(column(minmax, "x"), [NaN, -4 / 9, 11.0, 1.5 / 9])
    # quartiles of 1, 2, 4, 10: 1.75, 3 (median), 5.5, so the IQR is 3.75
    robust = Scale(["x"], method="robust").fit(train_frame()).apply(new_frame())
    np.testing.assert_allclose(column(robust, "x"), [NaN, -6 / 3.75, 97 / 3.75, -0.5 / 3.75])


def test_scale_zero_spread_divides_by_one() -> None:
    frame = pd.DataFrame({"x": [5.0, 5.0, NaN]})
    for method in ("standard", "minmax", "robust"):
        out = Scale(["x"], method=method).fit(frame).apply(frame)
        np.testing.assert_array_equal(column(out, "x"), [0.0, 0.0, NaN])


def test_scale_refuses_a_category_and_an_empty_column() -> None:
    with pytest.raises(DataError, match="'c' is categorical; this step needs numeric"):
        Scale(["c"]).fit(train_frame())
    with pytest.raises(DataError, match="'x' has no non-null values"):
        Scale(["x"]).fit(pd.DataFrame({"x": [NaN]}))


def test_scale_bad_method() -> None:
    with pytest.raises(SpecError, match="'method' must be one of standard, minmax, robust"):
        Scale(["x"], method="zscore").fit(train_frame())


# -- clip ------------------------------------------------------------------------------------


def test_clip_fixed_bounds() -> None:
    out = Clip(["x"], lower=0, upper=5).fit(train_frame()).apply(new_frame())
    assert column(out, "x")[1:] == [0.0, 5.0, 2.5]
    assert np.isnan(column(out, "x")[0])


def test_clip_learned_quantiles() -> None:
    step = Clip(["x"], lower_quantile=0.25, upper_quantile=0.75).fit(train_frame())
    assert (step.lower_, step.upper_) == ({"x": 1.75}, {"x": 5.5})
    np.testing.assert_array_equal(column(step.apply(train_frame()), "x"), [1.75, 2, NaN, 4, 5.5])


def test_clip_one_sided_stores_none_for_the_open_side() -> None:
    step = Clip(["x"], upper=3).fit(train_frame())
    assert step.to_state()["lower"] == {"x": None}
    assert column(round_trip(step).apply(new_frame()), "x")[1:] == [-3.0, 3.0, 2.5]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "lower"),
        ({"lower": 5, "upper": 1}, "lower"),
        ({"lower_quantile": 0.9, "upper_quantile": 0.1}, "lower"),
        ({"lower": 1, "lower_quantile": 0.1}, "lower"),
        ({"upper_quantile": 1.5}, "upper_quantile"),
        ({"upper": "high"}, "upper"),
        ({"lower": True}, "lower"),
    ],
)
def test_clip_bad_params(params: dict[str, Any], param: str) -> None:
    with pytest.raises(SpecError) as info:
        Clip(["x"], **params).fit(train_frame())
    assert info.value.problems[0][0] == param


def test_clip_quantiles_need_values() -> None:
    with pytest.raises(DataError, match="'x' has no non-null values"):
        Clip(["x"], lower_quantile=0.1).fit(pd.DataFrame({"x": [NaN]}))


# -- log1p -----------------------------------------------------------------------------------


def test_log1p_clips_negatives_at_zero() -> None:
    frame = pd.DataFrame({"x": [-5.0, 0.0, NaN, np.e - 1, -0.5]})
    out = Log1p(["x"]).fit(frame).apply(frame)
    np.testing.assert_allclose(column(out, "x"), [0.0, 0.0, NaN, 1.0, 0.0])


def test_log1p_takes_no_params_and_refuses_categories() -> None:
    with pytest.raises(TypeError):
        Log1p(["x"], base=10)  # type: ignore[call-arg]
    with pytest.raises(DataError, match="'c' is categorical"):
        Log1p(["c"]).fit(train_frame())


# -- onehot ----------------------------------------------------------------------------------


def test_onehot_columns_and_values() -> None:
    step = OneHot(["c"]).fit(train_frame())
    out = step.apply(new_frame())
    buckets = ["c=a", "c=b", "c=c", "c=__unknown__", "c=__missing__"]
    assert list(out.columns) == ["x", *buckets, "d"]  # in place of the original column
    expected = [
        [0, 0, 0, 1, 0],  # zebra: unseen
        [0, 0, 0, 0, 1],  # null
        [0, 1, 0, 0, 0],  # b
        [1, 0, 0, 0, 0],  # a
    ]
    np.testing.assert_array_equal(out[buckets].to_numpy(), expected)
    assert (out[buckets].dtypes == np.float64).all()


def test_onehot_and_ordinal_follow_a_refit() -> None:
    """A step fitted again on other data answers with what it learned last, never before."""
    onehot, ordinal = OneHot(["c"]), Ordinal(["c"])
    for step in (onehot, ordinal):
        step.fit(train_frame())
        step.apply(new_frame())  # applied once with the first categories
        step.fit(pd.DataFrame({"c": text("q", "q", "b")}))
    out = onehot.apply(pd.DataFrame({"c": text("q", "a", None)}))
    buckets = ["c=q", "c=b", "c=__unknown__", "c=__missing__"]
    assert list(out.columns) == buckets
    np.testing.assert_array_equal(out.to_numpy(), [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    codes = ordinal.apply(pd.DataFrame({"c": text("b", "q", "a")}))["c"].to_numpy()
    np.testing.assert_array_equal(codes, [1.0, 0.0, -1.0])


def test_onehot_orders_by_frequency_then_value() -> None:
    frame = pd.DataFrame({"c": text("z", "m", "z", "b", "m", None, None, None)})
    assert OneHot(["c"]).fit(frame).categories_ == {"c": ["m", "z", "b"]}


@pytest.mark.parametrize(
    "params", [{"max_categories": 1}, {"min_frequency": 2}, {"min_frequency": 0.3}]
)
def test_onehot_rare_categories_go_to_unknown(params: dict[str, Any]) -> None:
    step = OneHot(["c"], **params).fit(train_frame())
    assert step.categories_ == {"c": ["a"]}
    out = step.apply(new_frame())
    np.testing.assert_array_equal(out["c=__unknown__"].to_numpy(), [1, 0, 1, 0])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"max_categories": 0}, "max_categories"),
        ({"max_categories": "3"}, "max_categories"),
        ({"max_categories": 2.5}, "max_categories"),
        ({"min_frequency": -1}, "min_frequency"),
    ],
)
def test_onehot_bad_params(params: dict[str, Any], param: str) -> None:
    with pytest.raises(SpecError, match=f"'{param}'"):
        OneHot(["c"], **params).fit(train_frame())


def test_onehot_refuses_numeric_and_colliding_names() -> None:
    with pytest.raises(DataError, match="'x' is numeric; this step needs categorical"):
        OneHot(["x"]).fit(train_frame())
    frame = pd.DataFrame({"c": text("a"), "c=a": [1.0]})
    with pytest.raises(DataError, match="'c=a' already exists"):
        OneHot(["c"]).fit(frame).apply(frame)


# -- ordinal ---------------------------------------------------------------------------------


def test_ordinal_codes_by_frequency() -> None:
    out = Ordinal(["c"]).fit(train_frame()).apply(new_frame())
    np.testing.assert_array_equal(column(out, "c"), [-1.0, NaN, 1.0, 0.0])
    assert out["c"].dtype == np.float64


def test_ordinal_explicit_order() -> None:
    step = Ordinal(["c"], order=["c", "b", "a"]).fit(train_frame())
    np.testing.assert_array_equal(column(step.apply(new_frame()), "c"), [-1.0, NaN, 1.0, 2.0])
    frame = pd.DataFrame({"c": text("a", "b"), "e": text("low", "high")})
    by_column = Ordinal(["c", "e"], order={"e": ["low", "high"]}).fit(frame)
    assert by_column.categories_ == {"c": ["a", "b"], "e": ["low", "high"]}


@pytest.mark.parametrize(
    ("order", "param"),
    [("abc", "order"), (["a", "a"], "order"), ({"nope": ["a"]}, "order"), ({"c": [1]}, "order.c")],
)
def test_ordinal_bad_params(order: Any, param: str) -> None:
    with pytest.raises(SpecError) as info:
        Ordinal(["c"], order=order).fit(train_frame())
    assert info.value.problems[0][0] == param


# -- bucketize -------------------------------------------------------------------------------


def test_bucketize_explicit_edges_are_right_closed() -> None:
    step = Bucketize(["x"], edges=[2, 5]).fit(train_frame())
    np.testing.assert_array_equal(column(step.apply(train_frame()), "x"), [0, 0, NaN, 1, 2])
    np.testing.assert_array_equal(column(step.apply(new_frame()), "x"), [NaN, 0, 2, 1])


def test_bucketize_learned_edges() -> None:
    uniform = Bucketize(["x"], strategy="uniform", bins=3).fit(train_frame())
    assert uniform.edges_ == {"x": [4.0, 7.0]}
    np.testing.assert_array_equal(column(uniform.apply(train_frame()), "x"), [0, 0, NaN, 0, 2])
    quantile = Bucketize(["x"], bins=2).fit(train_frame())
    assert quantile.edges_ == {"x": [3.0]}
    np.testing.assert_array_equal(column(quantile.apply(train_frame()), "x"), [0, 0, NaN, 1, 1])


def test_bucketize_merges_tied_quantile_edges() -> None:
    frame = pd.DataFrame({"x": [0.0] * 8 + [1.0, 2.0]})
    # quantiles 0.2 .. 0.8 of ten values sit at positions 1.8 .. 7.2: 0, 0, 0 and 0.2
    assert Bucketize(["x"], bins=5).fit(frame).edges_ == {"x": [0.0, pytest.approx(0.2)]}
    constant = pd.DataFrame({"x": [3.0, 3.0]})
    out = Bucketize(["x"], strategy="uniform").fit(constant).apply(constant)
    assert column(out, "x") == [0.0, 0.0]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"strategy": "kmeans"}, "strategy"),
        ({"bins": 1}, "bins"),
        ({"bins": 2.5}, "bins"),
        ({"edges": []}, "edges"),
        ({"edges": [3, 1]}, "edges"),
        ({"edges": [1, "2"]}, "edges"),
    ],
)
def test_bucketize_bad_params(params: dict[str, Any], param: str) -> None:
    with pytest.raises(SpecError, match=f"'{param}'"):
        Bucketize(["x"], **params).fit(train_frame())


# -- datetime_parts --------------------------------------------------------------------------


def test_datetime_parts_defaults() -> None:
    out = DatetimeParts(["d"]).fit(train_frame()).apply(train_frame())
    names = ["d.year", "d.month", "d.day", "d.dayofweek", "d.hour"]
    assert list(out.columns) == ["x", "c", *names]
    table = out[names].to_numpy()
    np.testing.assert_array_equal(table[0], [2024, 2, 29, 3, 13])  # a Thursday, 13:45
    assert np.isnan(table[1]).all()  # NaT
    np.testing.assert_array_equal(table[2], [1969, 12, 31, 2, 23])  # a Wednesday, 23:30
    assert (out[names].dtypes == np.float64).all()


def test_datetime_parts_extra_parts() -> None:
    frame = pd.DataFrame({"d": stamps("1970-01-02 12:30", "2024-12-31 00:00", None)})
    out = DatetimeParts(["d"], parts=["dayofyear", "minute", "epoch_days"]).fit(frame).apply(frame)
    np.testing.assert_array_equal(out["d.dayofyear"].to_numpy(), [2, 366, NaN])
    np.testing.assert_array_equal(out["d.minute"].to_numpy(), [30, 0, NaN])
    np.testing.assert_allclose(out["d.epoch_days"].to_numpy(), [1 + 12.5 / 24, 20088, NaN])


def test_datetime_parts_agree_with_pandas_calendar() -> None:
    rng = np.random.default_rng(7)
    seconds = rng.integers(-2 * 10**9, 4 * 10**9, 2_000)
    frame = pd.DataFrame({"d": pd.Series(pd.to_datetime(seconds, unit="s"))})
    parts = ["year", "month", "day", "dayofweek", "dayofyear", "hour", "minute"]
    out = DatetimeParts(["d"], parts=parts).fit(frame).apply(frame)
    pandas_names = ["year", "month", "day", "day_of_week", "day_of_year", "hour", "minute"]
    for part, truth in zip(parts, pandas_names, strict=True):
        expected = getattr(frame["d"].dt, truth).to_numpy()
        np.testing.assert_array_equal(out[f"d.{part}"].to_numpy(), expected)


def test_datetime_parts_bad_params_and_kind() -> None:
    for parts in (["week"], [], ["year", "year"], "year"):
        with pytest.raises(SpecError, match="'parts'"):
            DatetimeParts(["d"], parts=parts).fit(train_frame())  # type: ignore[arg-type]
    with pytest.raises(DataError, match="'x' is numeric; this step needs datetime"):
        DatetimeParts(["x"]).fit(train_frame())


# -- resolving a step by name ----------------------------------------------------------------


class NotAStep:
    pass


def test_resolve_step_builtin_and_errors() -> None:
    assert resolve_step("onehot", [], "features[0].step") is OneHot
    with pytest.raises(SpecError, match=r"features\[0\]\.step: unknown step 'one_hot'"):
        resolve_step("one_hot", [], "features[0].step")
    with pytest.raises(SpecError, match="not allowed"):
        resolve_step("tests.data.test_steps.NotAStep", [], "features[0].step")
    with pytest.raises(SpecError, match=r"not a subclass of atoll\.data\.steps\.Step") as info:
        resolve_step("tests.data.test_steps.NotAStep", ["tests.data"], "features[0].step")
    assert info.value.problems[0][0] == "features[0].step"
