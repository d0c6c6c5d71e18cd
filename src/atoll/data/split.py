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
        return np.sort(order[: n_rows - n_test]), np.sort(order[n_rows - n_test :])
    return _shuffled(n_rows, n_test, split, y)


def _shuffled(
    n_rows: int, n_test: int, split: SplitSpec, y: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    stratify = y if split.method == "stratified" else None
    if stratify is not None:
        _check_stratifiable(stratify)
    train, test = train_test_split(
        np.arange(n_rows), test_size=n_test, random_state=split.seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


def _check_stratifiable(y: np.ndarray) -> None:
    labels, counts = np.unique(y, return_counts=True)
    rare = labels[counts < 2]
    if len(rare):
        raise DataError(
            f"cannot stratify: target classes {rare.tolist()} have fewer than 2 rows; "
            "use split.method: random"
        )
