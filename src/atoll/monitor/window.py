"""Folding a window of rows into per-column histograms, chunk by chunk.

A window (a span of the prediction log, or a data file) is read in chunks;
each chunk is folded into accumulators keyed to the reference's bins: counts
per bin or category, nulls, values outside the reference range, categories
the reference never kept. Memory depends on the number of columns and bins,
not on the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from atoll.monitor.reference import CategoricalReference, NumericReference, Reference

MAX_NEW_CATEGORIES = 100
"""Distinct unseen categories named per column; further ones are only counted."""


@dataclass
class NumericFold:
    """Counts of one numeric column's values per reference bin."""

    reference: NumericReference
    rows: int = 0
    nulls: int = 0
    below: int = 0
    above: int = 0
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.reference.expected.shape[0], dtype=np.int64)

    def add(self, values: pd.Series) -> None:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        present = numbers[~np.isnan(numbers)]
        self.rows += numbers.shape[0]
        self.nulls += numbers.shape[0] - present.shape[0]
        self.below += int(np.count_nonzero(present < self.reference.minimum))
        self.above += int(np.count_nonzero(present > self.reference.maximum))
        index = self.reference.bin_index(present)
        self.counts += np.bincount(index, minlength=self.counts.shape[0])[: self.counts.shape[0]]

    def add_nulls(self, rows: int) -> None:
        """Fold ``rows`` rows that lack the column."""
        self.rows += rows
        self.nulls += rows


@dataclass
class CategoricalFold:
    """Counts of one categorical column's values per reference category, ``<other>`` last."""

    reference: CategoricalReference
    rows: int = 0
    nulls: int = 0
    counts: np.ndarray = field(init=False)
    unseen: dict[str, int] = field(default_factory=dict)
    unseen_unnamed: int = 0
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(len(self.reference.buckets), dtype=np.int64)
        self._index = {name: i for i, name in enumerate(self.reference.categories)}

    def add(self, values: pd.Series) -> None:
        self.rows += int(values.shape[0])
        present = values.dropna()
        self.nulls += int(values.shape[0] - present.shape[0])
        other = len(self._index)
        if not isinstance(present.dtype, pd.StringDtype):  # text needs no str()
            present = present.map(str)
        for name, count in present.value_counts().items():
            where = self._index.get(str(name), other)
            self.counts[where] += int(count)
            if where == other:
                self._add_unseen(str(name), int(count))

    def add_nulls(self, rows: int) -> None:
        """Fold ``rows`` rows that lack the column."""
        self.rows += rows
        self.nulls += rows

    def _add_unseen(self, name: str, count: int) -> None:
        if name in self.unseen or len(self.unseen) < MAX_NEW_CATEGORIES:
            self.unseen[name] = self.unseen.get(name, 0) + count
        else:
            self.unseen_unnamed += count


ColumnFold = NumericFold | CategoricalFold


def new_fold(reference: NumericReference | CategoricalReference) -> ColumnFold:
    if isinstance(reference, NumericReference):
        return NumericFold(reference)
    return CategoricalFold(reference)


@dataclass
class InputsFold:
    """Every reference column's fold, and which columns some chunk of the window held."""

    reference: Reference
    rows: int = 0
    columns: dict[str, ColumnFold] = field(init=False)
    present: set[str] = field(default_factory=set)
    prediction: ColumnFold | None = field(init=False)
    first_at: datetime | None = None
    last_at: datetime | None = None

    def __post_init__(self) -> None:
        self.columns = {name: new_fold(ref) for name, ref in self.reference.columns.items()}
        prediction = self.reference.prediction
        self.prediction = None if prediction is None else new_fold(prediction)

    @property
    def absent(self) -> list[str]:
        """Reference columns no row of a non-empty window held (sorted)."""
        if self.rows == 0:
            return []
        return sorted(name for name in self.columns if name not in self.present)

    def add_inputs(self, frame: pd.DataFrame) -> None:
        """Fold a chunk of input rows (one column per input).

        A column the chunk lacks is folded as nulls for the chunk's rows, so
        every column's counts cover the whole window, whichever chunks held it.
        """
        self.rows += len(frame)
        for name, fold in self.columns.items():
            if name in frame.columns:
                self.present.add(name)
                fold.add(frame[name])
            else:
                fold.add_nulls(len(frame))

    def add_predictions(self, values: pd.Series) -> None:
        """Fold a chunk of model outputs: positive-class scores, labels or values."""
        if self.prediction is not None:
            self.prediction.add(values)

    def add_times(self, times: Iterable[datetime]) -> None:
        for moment in times:
            if self.first_at is None or moment < self.first_at:
                self.first_at = moment
            if self.last_at is None or moment > self.last_at:
                self.last_at = moment


def output_values(reference: Reference, outputs: pd.DataFrame) -> pd.Series:
    """What the prediction reference bins: the positive score (binary), else the prediction.

    ``outputs`` is a chunk's logged outputs, flattened (``probabilities.<class>``).
    """
    positive = reference.positive_class
    binary = positive is not None and isinstance(reference.prediction, NumericReference)
    return logged_output(outputs, f"probabilities.{positive}" if binary else "prediction")


def logged_output(outputs: pd.DataFrame, name: str) -> pd.Series:
    """One output of every row of a chunk; null where a row lacks it."""
    if name in outputs.columns:
        return outputs[name]
    return pd.Series([None] * len(outputs), index=outputs.index, dtype=object)
