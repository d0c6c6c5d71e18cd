"""Holding rows out: random, stratified and time splits, and when a split is impossible."""

from __future__ import annotations

import numpy as np
import pytest

from atoll.data.split import split_rows
from atoll.errors import DataError
from atoll.spec import SplitSpec


def check_partition(n_rows: int, train: np.ndarray, test: np.ndarray) -> None:
    assert train.dtype.kind == "i"
    assert test.dtype.kind == "i"
    assert np.all(np.diff(train) > 0), "train positions are sorted and unique"
    assert np.all(np.diff(test) > 0), "test positions are sorted and unique"
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted([*train.tolist(), *test.tolist()]) == list(range(n_rows))


def labels(n: int, minority: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < minority).astype(np.int64)


# --- sizes --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "stratified"])
@pytest.mark.parametrize(
    ("n_rows", "test_size", "n_test"),
    [(100, 0.2, 20), (1000, 0.25, 250), (10, 0.5, 5), (7, 0.3, 2), (1001, 0.1, 100)],
)
def test_sizes(method: str, n_rows: int, test_size: float, n_test: int) -> None:
    y = np.arange(n_rows) % 2
    train, test = split_rows(n_rows, SplitSpec(method=method, test_size=test_size), y=y)
    assert len(test) == n_test
    assert len(train) == n_rows - n_test
    check_partition(n_rows, train, test)


def test_at_least_one_test_row() -> None:
    train, test = split_rows(5, SplitSpec(method="random", test_size=0.01))
    assert len(test) == 1
    assert len(train) == 4


def test_two_rows_is_enough() -> None:
    train, test = split_rows(2, SplitSpec(method="random", test_size=0.5))
    check_partition(2, train, test)
    assert len(train) == len(test) == 1


# --- determinism --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["random", "stratified"])
def test_same_seed_same_split(method: str) -> None:
    y = labels(500)
    spec = SplitSpec(method=method, test_size=0.2, seed=42)
    first = split_rows(500, spec, y=y)
    second = split_rows(500, spec, y=y.copy())
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize("method", ["random", "stratified"])
def test_different_seed_different_split(method: str) -> None:
    y = labels(500)
    _, test_a = split_rows(500, SplitSpec(method=method, seed=1), y=y)
    _, test_b = split_rows(500, SplitSpec(method=method, seed=2), y=y)
    assert len(test_a) == len(test_b)
    assert not np.array_equal(test_a, test_b)


def test_random_split_is_not_the_tail() -> None:
    _, test = split_rows(1000, SplitSpec(method="random", test_size=0.2))
    assert test.min() < 500  # shuffled, not simply the last rows
    assert not np.array_equal(test, np.arange(800, 1000))


# --- stratified ---------------------------------------------------------------------


def test_stratified_keeps_class_ratios() -> None:
    y = labels(2000, minority=0.1, seed=3)
    overall = y.mean()
    for seed in range(5):
        train, test = split_rows(2000, SplitSpec(method="stratified", seed=seed), y=y)
        check_partition(2000, train, test)
        assert abs(y[test].mean() - overall) < 0.005
        assert abs(y[train].mean() - overall) < 0.005


def test_stratified_keeps_multiclass_ratios_with_string_labels() -> None:
    y = np.array(["a"] * 600 + ["b"] * 300 + ["c"] * 100, dtype=object)
    train, test = split_rows(1000, SplitSpec(method="stratified", test_size=0.2), y=y)
    check_partition(1000, train, test)
    values, counts = np.unique(y[test].astype(str), return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist(), strict=True)) == {"a": 120, "b": 60, "c": 20}


def test_stratified_is_better_than_chance_on_a_rare_class() -> None:
    # 10 positives in 1000 rows: a 20% stratified test set holds exactly 2 of them
    y = np.zeros(1000, dtype=np.int64)
    y[::100] = 1
    for seed in range(10):
        _, test = split_rows(1000, SplitSpec(method="stratified", seed=seed), y=y)
        assert int(y[test].sum()) == 2


def test_stratified_without_labels_falls_back_to_random() -> None:
    spec = SplitSpec(method="stratified", seed=5)
    train, test = split_rows(100, spec)
    check_partition(100, train, test)
    random_train, _ = split_rows(100, SplitSpec(method="random", seed=5))
    np.testing.assert_array_equal(train, random_train)


def test_random_split_ignores_labels() -> None:
    y = np.array([0] * 99 + [1])  # would not stratify
    train, test = split_rows(100, SplitSpec(method="random"), y=y)
    check_partition(100, train, test)


# --- time ---------------------------------------------------------------------------


def test_time_split_holds_out_the_latest_rows() -> None:
    rng = np.random.default_rng(0)
    time = np.datetime64("2024-01-01T00:00:00") + rng.permutation(1000).astype("timedelta64[s]")
    train, test = split_rows(1000, SplitSpec(method="time", test_size=0.2), time=time)
    check_partition(1000, train, test)
    assert len(test) == 200
    assert time[train].max() < time[test].min()
    np.testing.assert_array_equal(np.sort(time[test]), np.sort(time)[800:])


def test_time_split_ignores_the_seed_and_labels() -> None:
    time = np.arange(100)[::-1].astype(np.float64)
    y = np.array([0] * 99 + [1])
    first = split_rows(100, SplitSpec(method="time", seed=1), y=y, time=time)
    second = split_rows(100, SplitSpec(method="time", seed=2), time=time)
    np.testing.assert_array_equal(first[1], second[1])
    np.testing.assert_array_equal(first[1], np.arange(20))  # reversed times: the first rows


def test_time_split_on_iso_strings() -> None:
    time = np.array(["2024-03-01", "2024-01-01", "2024-02-01", "2024-04-01", "2023-12-01"])
    train, test = split_rows(5, SplitSpec(method="time", test_size=0.4), time=time)
    assert test.tolist() == [0, 3]
    assert train.tolist() == [1, 2, 4]


def test_time_split_keeps_ties_at_the_cut_together() -> None:
    time = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    train, test = split_rows(10, SplitSpec(method="time", test_size=0.2), time=time)
    check_partition(10, train, test)
    assert set(time[train].tolist()).isdisjoint(time[test].tolist())
    assert time[train].max() < time[test].min()


def test_time_split_moves_the_cut_after_a_leading_run_of_ties() -> None:
    time = np.array([5, 5, 5, 5, 5, 5, 5, 5, 5, 9])
    train, test = split_rows(10, SplitSpec(method="time", test_size=0.2), time=time)
    assert test.tolist() == [9]
    assert len(train) == 9


def test_time_split_with_a_single_time_is_refused() -> None:
    with pytest.raises(DataError, match="same time"):
        split_rows(10, SplitSpec(method="time"), time=np.zeros(10))


def test_time_split_needs_the_time_column() -> None:
    with pytest.raises(DataError, match="needs the time column"):
        split_rows(10, SplitSpec(method="time"))


# --- impossible splits ----------------------------------------------------------------


@pytest.mark.parametrize("n_rows", [0, 1])
@pytest.mark.parametrize("method", ["random", "stratified", "time"])
def test_too_few_rows(n_rows: int, method: str) -> None:
    with pytest.raises(DataError, match="too few") as info:
        split_rows(
            n_rows,
            SplitSpec(method=method, test_size=0.2),
            y=np.zeros(n_rows),
            time=np.arange(n_rows),
        )
    assert "20%" in str(info.value)


def test_too_few_rows_for_a_large_test_size() -> None:
    # 0.9 of 2 rounds to 2 test rows and leaves no training row
    with pytest.raises(DataError, match="too few"):
        split_rows(2, SplitSpec(method="random", test_size=0.9))


def test_unstratifiable_single_row_class() -> None:
    y = np.array([0] * 50 + [1] * 49 + [2])
    with pytest.raises(DataError, match="cannot stratify") as info:
        split_rows(100, SplitSpec(method="stratified"), y=y)
    assert "[2]" in str(info.value)
    assert "split.method: random" in str(info.value)


def test_unstratifiable_test_set_smaller_than_the_classes() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    with pytest.raises(DataError, match="cannot stratify 3 classes"):
        split_rows(10, SplitSpec(method="stratified", test_size=0.1), y=y)


def test_unstratifiable_train_set_smaller_than_the_classes() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    with pytest.raises(DataError, match="cannot stratify 3 classes"):
        split_rows(10, SplitSpec(method="stratified", test_size=0.9), y=y)


def test_smallest_stratifiable_split() -> None:
    y = np.array([0, 0, 1, 1])
    train, test = split_rows(4, SplitSpec(method="stratified", test_size=0.5), y=y)
    check_partition(4, train, test)
    assert sorted(y[test].tolist()) == [0, 1]
    assert sorted(y[train].tolist()) == [0, 1]
