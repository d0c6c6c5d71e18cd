"""Hold rows out for evaluation: random, stratified by the target, or by time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from atoll.errors import DataError

if TYPE_CHECKING:
    from atoll.spec import SplitSpec


def split_rows(
    n_rows: int, split: SplitSpec, y: np.ndarray | None = None, time: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted ``(train_positions, test_positions)``, reproducible from the seed.

    A time split holds out the latest rows, which is how the model will meet
    the future; ties at the cut stay together.
    """
    n_test = max(1, round(n_rows * split.test_size))
    if n_rows - n_test < 1:
        raise DataError(f"{n_rows} rows are too few to hold out {split.test_size:.0%} for testing")
    if split.method == "time":
        if time is None:
            raise DataError("a time split needs the time column")
        order = np.argsort(time, kind="stable")
        cut = _tie_safe_cut(np.asarray(time)[order], n_rows - n_test)
        return np.sort(order[:cut]), np.sort(order[cut:])
    return _shuffled(n_rows, n_test, split, y)


def _tie_safe_cut(ordered: np.ndarray, cut: int) -> int:
    """Move the cut off a run of equal times: before the run, else after it."""
    before = int(np.searchsorted(ordered, ordered[cut], side="left"))
    if before > 0:
        return before
    after = int(np.searchsorted(ordered, ordered[cut], side="right"))
    if after < len(ordered):
        return after
    raise DataError("every row has the same time: a time split cannot hold rows out")


def _shuffled(
    n_rows: int, n_test: int, split: SplitSpec, y: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    stratify = y if split.method == "stratified" else None
    if stratify is not None:
        _check_stratifiable(stratify, n_test, n_rows - n_test)
    train, test = train_test_split(
        np.arange(n_rows), test_size=n_test, random_state=split.seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


def _check_stratifiable(y: np.ndarray, n_test: int, n_train: int) -> None:
    labels, counts = np.unique(y, return_counts=True)
    rare = labels[counts < 2]
    if len(rare):
        raise DataError(
            f"cannot stratify: target classes {rare.tolist()} have fewer than 2 rows; "
            "use split.method: random"
        )
    if min(n_test, n_train) < len(labels):
        raise DataError(
            f"cannot stratify {len(labels)} classes into {n_train} training and {n_test} "
            "test rows; change split.test_size or use split.method: random"
        )
