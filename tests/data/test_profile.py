from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atoll.data.profile import profile_frame, profile_predictions

QUANTILE_KEYS = {"0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 40.0, 50.0, np.inf, -np.inf, 60.0],
            "city": ["a", "b", "a", None, "c", "a", np.nan, "b"],
            "when": pd.to_datetime(
                pd.Series(
                    ["2024-01-02", None, "2023-05-06", "2024-03-04", None, None, None, "2023-01-01"]
                )
            ),
        }
    )


KINDS = {"age": "numeric", "city": "categorical", "when": "datetime"}


def test_profile_frame_counts_nulls_and_is_json_safe() -> None:
    profile = profile_frame(_frame(), KINDS)
    assert profile["rows"] == 8
    age, city, when = (profile["columns"][name] for name in ("age", "city", "when"))
    assert (age["kind"], age["count"], age["null_count"]) == ("numeric", 7, 1)
    assert age["null_rate"] == pytest.approx(1 / 8)
    assert (city["count"], city["null_count"]) == (6, 2)
    assert (when["count"], when["null_count"]) == (4, 4)
    assert when["null_rate"] == 0.5
    json.dumps(profile, allow_nan=False)


def test_numeric_statistics_exclude_infinities() -> None:
    age = profile_frame(_frame(), KINDS)["columns"]["age"]
    finite = np.array([20.0, 30.0, 40.0, 50.0, 60.0])
    assert age["inf_count"] == 2
    assert (age["min"], age["max"]) == (20.0, 60.0)
    assert age["mean"] == pytest.approx(40.0)
    assert age["std"] == pytest.approx(float(np.std(finite)))
    assert set(age["quantiles"]) == QUANTILE_KEYS
    assert age["quantiles"]["0.5"] == pytest.approx(40.0)
    assert age["quantiles"]["0.99"] == pytest.approx(float(np.quantile(finite, 0.99)))


def test_numeric_bins_cover_every_non_null_value() -> None:
    age = profile_frame(_frame(), KINDS, bins=4)["columns"]["age"]
    assert age["bin_edges"] == [20.0, 30.0, 40.0, 50.0, 60.0]
    # -inf joins the first bin, +inf and the max (closed last bin) the last.
    assert age["bin_counts"] == [2, 1, 1, 3]
    assert sum(age["bin_counts"]) == age["count"]


def test_quantile_bins_have_roughly_equal_counts() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.lognormal(size=10_000)})
    x = profile_frame(frame, {"x": "numeric"}, bins=10)["columns"]["x"]
    assert len(x["bin_edges"]) == 11
    assert len(x["bin_counts"]) == 10
    assert sum(x["bin_counts"]) == 10_000
    assert all(990 <= count <= 1010 for count in x["bin_counts"])
    assert x["bin_edges"] == sorted(x["bin_edges"])


def test_repeated_values_deduplicate_edges() -> None:
    frame = pd.DataFrame({"x": [1.0] * 90 + [2.0] * 5 + [3.0] * 5})
    x = profile_frame(frame, {"x": "numeric"})["columns"]["x"]
    assert len(set(x["bin_edges"])) == len(x["bin_edges"])
    assert len(x["bin_counts"]) == len(x["bin_edges"]) - 1
    assert sum(x["bin_counts"]) == 100


def test_constant_and_all_null_numeric_columns() -> None:
    frame = pd.DataFrame({"const": [5.0, 5.0, 5.0], "empty": [np.nan, np.nan, np.nan]})
    profile = profile_frame(frame, {"const": "numeric", "empty": "numeric"})["columns"]
    assert profile["const"]["bin_edges"] == [5.0, 5.0]
    assert profile["const"]["bin_counts"] == [3]
    assert profile["const"]["std"] == 0.0
    empty = profile["empty"]
    assert (empty["count"], empty["null_count"], empty["null_rate"]) == (0, 3, 1.0)
    assert empty["mean"] is None and empty["quantiles"] is None and empty["bin_edges"] is None
    json.dumps(profile, allow_nan=False)


def test_categorical_frequencies_with_top_limit() -> None:
    city = profile_frame(_frame(), KINDS, top_categories=2)["columns"]["city"]
    assert city["frequencies"] == {"a": 3, "b": 2}
    assert list(city["frequencies"]) == ["a", "b"]
    assert city["other_count"] == 1
    assert city["distinct"] == 3
    full = profile_frame(_frame(), KINDS)["columns"]["city"]
    assert full["frequencies"] == {"a": 3, "b": 2, "c": 1}
    assert full["other_count"] == 0


def test_pandas_categorical_ignores_unused_categories() -> None:
    frame = pd.DataFrame({"c": pd.Categorical(["x", "x", None], categories=["x", "y"])})
    c = profile_frame(frame, {"c": "categorical"})["columns"]["c"]
    assert c["frequencies"] == {"x": 2}
    assert (c["distinct"], c["null_count"]) == (1, 1)


def test_datetime_range_as_iso_strings() -> None:
    when = profile_frame(_frame(), KINDS)["columns"]["when"]
    assert when["min"] == "2023-01-01T00:00:00"
    assert when["max"] == "2024-03-04T00:00:00"


def test_unknown_kind_and_missing_column_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown profile kind"):
        profile_frame(_frame(), {"age": "text"})
    with pytest.raises(KeyError):
        profile_frame(_frame(), {"nope": "numeric"})


def test_profile_frame_handles_large_frames() -> None:
    """Runs on 500k rows (speed is measured in bench/, never asserted here)."""
    rng = np.random.default_rng(1)
    n = 500_000
    data: dict[str, object] = {f"n{i}": rng.normal(size=n) for i in range(10)}
    data["n0"] = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    cities = np.array([f"city{i}" for i in range(200)], dtype=object)
    for i in range(4):
        data[f"c{i}"] = cities[rng.integers(0, 200, n)]
    data["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s")
    frame = pd.DataFrame(data)
    kinds = {name: "numeric" for name in frame.columns if name.startswith("n")}
    kinds |= {f"c{i}": "categorical" for i in range(4)} | {"t": "datetime"}
    profile = profile_frame(frame, kinds)
    assert len(profile["columns"]) == 15
    assert profile["columns"]["c0"]["distinct"] == 200
    assert sum(profile["columns"]["n0"]["bin_counts"]) == profile["columns"]["n0"]["count"]


def test_binary_prediction_profile() -> None:
    predictions = np.array([0, 1, 1, 0, 0])
    score = np.array([0.05, 0.95, 1.0, 0.3, 0.31])
    proba = np.column_stack([1 - score, score])
    profile = profile_predictions("binary", predictions, proba, ["no", "yes"])
    assert profile["rows"] == 5
    assert profile["class_frequencies"] == {"no": 3, "yes": 2}
    assert set(profile["score_histogram"]) == {"yes"}
    hist = profile["score_histogram"]["yes"]
    assert hist["bin_edges"] == [i / 10 for i in range(11)]
    assert hist["bin_counts"] == [1, 0, 0, 2, 0, 0, 0, 0, 0, 2]
    json.dumps(profile, allow_nan=False)


def test_multiclass_prediction_profile_lists_every_class() -> None:
    predictions = np.array([0, 2, 2])
    proba = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.2, 0.2, 0.6]])
    profile = profile_predictions("multiclass", predictions, proba, [True, "b", 7])
    assert profile["class_frequencies"] == {"True": 1, "b": 0, "7": 2}
    assert set(profile["score_histogram"]) == {"True", "b", "7"}
    assert all(sum(h["bin_counts"]) == 3 for h in profile["score_histogram"].values())
    assert (
        profile_predictions("multiclass", predictions, None, [0, 1, 2])["score_histogram"] is None
    )


def test_regression_prediction_profile_is_a_numeric_profile() -> None:
    predictions = np.linspace(0.0, 99.0, 100)
    profile = profile_predictions("regression", predictions, None, [])
    assert profile["task"] == "regression"
    assert profile["kind"] == "numeric"
    assert profile["count"] == 100
    assert sum(profile["bin_counts"]) == 100
    assert len(profile["bin_edges"]) == 11
    assert profile["mean"] == pytest.approx(49.5)
    json.dumps(profile, allow_nan=False)
    with pytest.raises(ValueError, match="unknown task"):
        profile_predictions("ranking", predictions, None, [])
