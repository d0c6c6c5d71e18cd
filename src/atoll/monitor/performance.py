"""Task metrics of a window once ground truth has arrived through feedback.

Labels join the log by prediction id (feedback is unique per id, so no row
counts twice). Metrics are exact, computed by :func:`atoll.model.evaluate.evaluate`
as at training time; for that the labelled rows' label and prediction (as
class codes, or values for regression) and score are kept in growable numpy
arrays: about 10 bytes per labelled binary row (the positive-class score in
float64, so ranking metrics see the logged scores exactly), ``4k + 2`` for a
``k``-class model (float32 probabilities), 16 for regression. Unlabelled rows
cost nothing. Labels and predictions are compared with the model's classes as
training compares them (:func:`atoll.model.holdout.plain_label`: a label
``1.0`` is the class ``1``). The version's training metrics are the baseline;
the task's primary metric is judged against it with ``monitor.performance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from atoll.model.holdout import plain_label
from atoll.monitor.reference import Reference
from atoll.monitor.status import NO_DATA, level
from atoll.spec_monitor import PerformanceSpec

METRICS = {
    "binary": ("roc_auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("accuracy", "macro_f1", "log_loss"),
    "regression": ("rmse", "mae", "r2"),
}
"""The metrics a window reports per task."""


class Growable:
    """A numpy array that rows are appended to, in amortised constant time.

    Capacity grows by half each time it runs out, so the array holds at most
    about 1.5 times its rows (plus, while growing, the copy).
    """

    def __init__(self, dtype: type | np.dtype[Any], width: int | None = None) -> None:
        self._shape: tuple[int, ...] = () if width is None else (width,)
        self._data = np.empty((256, *self._shape), dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.size + values.shape[0]
        if need > self._data.shape[0]:
            capacity = max(need, self._data.shape[0] * 3 // 2)
            grown = np.empty((capacity, *self._shape), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = values
        self.size = need

    @property
    def dtype(self) -> np.dtype[Any]:
        kind: np.dtype[Any] = self._data.dtype
        return kind

    @property
    def values(self) -> np.ndarray:
        """The rows appended so far (a view: do not keep it across :meth:`extend`)."""
        return self._data[: self.size]


@dataclass
class LabelFold:
    """The labelled rows of a window: label, prediction and scores, plus label delays."""

    reference: Reference
    rows: int = 0
    unknown_labels: int = 0
    unscored: int = 0
    delay_total_s: float = 0.0
    delay_max_s: float = 0.0
    truth: Growable = field(init=False)
    predicted: Growable = field(init=False)
    scores: Growable | None = field(init=False)
    _index: dict[str, int] = field(init=False, repr=False)
    _keys: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        classes = self.reference.classes
        self._keys = [str(c) for c in classes]  # as the probabilities are keyed
        self._index = {str(plain_label(c)): i for i, c in enumerate(classes)}
        task = self.reference.task
        code = np.float64 if task == "regression" else (np.int8 if len(classes) < 128 else np.int32)
        self.truth, self.predicted = Growable(code), Growable(code)
        if task == "binary":
            self.scores = Growable(np.float64)
        elif task == "multiclass":
            self.scores = Growable(np.float32, len(classes))
        else:
            self.scores = None

    def add(
        self,
        labels: Sequence[Any],
        outputs: Sequence[Mapping[str, Any]],
        delays_s: Sequence[float],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fold a chunk of labelled predictions; a label that is no class of the model is counted.

        ``delays_s`` are the seconds from each prediction to its label.

        Returns:
            which of the rows were kept (label and prediction both known), and
            the kept rows' label and prediction codes (class indices, or values
            for regression).
        """
        truth = [self._encode(label) for label in labels]
        predicted = [self._encode(output.get("prediction")) for output in outputs]
        kept = np.asarray(
            [t is not None and p is not None for t, p in zip(truth, predicted, strict=True)],
            dtype=bool,
        )
        self.unknown_labels += int(kept.shape[0] - np.count_nonzero(kept))
        rows = np.flatnonzero(kept).tolist()
        codes = self.truth.dtype
        truth_codes = np.asarray([truth[i] for i in rows], dtype=codes)
        predicted_codes = np.asarray([predicted[i] for i in rows], dtype=codes)
        self.rows += len(rows)
        self.truth.extend(truth_codes)
        self.predicted.extend(predicted_codes)
        if self.scores is not None:
            self.scores.extend(self._scores([outputs[i] for i in rows]))
        delays = np.maximum(np.asarray(delays_s, dtype=float)[rows], 0.0)
        if delays.shape[0]:
            self.delay_total_s += float(delays.sum())
            self.delay_max_s = max(self.delay_max_s, float(delays.max()))
        return kept, truth_codes, predicted_codes

    def _encode(self, value: Any) -> float | int | None:
        if self.reference.task == "regression":
            try:
                number = float(value)
            except (TypeError, ValueError):
                return None
            return number if np.isfinite(number) else None
        return self._index.get(str(plain_label(value)))

    def _scores(self, outputs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The kept rows' scores: the positive class's (binary) or every class's; NaN if none."""
        wanted = self._keys[1:] if self.reference.task == "binary" else self._keys
        rows = []
        for output in outputs:
            probabilities = output.get("probabilities")
            if isinstance(probabilities, Mapping):
                rows.append([float(probabilities.get(k, 0.0)) for k in wanted])
            else:
                self.unscored += 1
                rows.append([np.nan] * len(wanted))
        values = np.asarray(rows, dtype=float).reshape(len(rows), len(wanted))
        return values[:, 0] if self.reference.task == "binary" else values

    def probabilities(self) -> np.ndarray | None:
        """The ``(n, k)`` class probabilities of the labelled rows; ``None`` if any had none."""
        if self.scores is None or self.unscored:
            return None
        if self.reference.task == "binary":
            positive = self.scores.values
            return np.column_stack([1.0 - positive, positive])
        return self.scores.values.astype(np.float64)


def performance_report(fold: LabelFold, logged_rows: int, spec: PerformanceSpec) -> dict[str, Any]:
    """Metrics on the labelled rows beside the training baseline, with counts, delays, a status.

    The status judges the task's primary metric: its relative drop from the
    training value against ``monitor.performance.max_metric_drop``, once the
    window has ``min_labelled_rows`` labelled rows.
    """
    from atoll.model.evaluate import evaluate, higher_is_better, primary_metric

    reference = fold.reference
    head: dict[str, Any] = {
        "rows": logged_rows,
        "labelled_rows": fold.rows,
        "unknown_labels": fold.unknown_labels,
        "label_coverage": fold.rows / logged_rows if logged_rows else None,
    }
    if fold.rows == 0:
        return {**head, "status": NO_DATA, "reason": "no labelled rows in the window"}
    report = evaluate(
        reference.task,
        fold.truth.values,
        fold.predicted.values,
        fold.probabilities(),
        reference.classes,
    )
    names = METRICS.get(reference.task, ())
    metrics = {n: report["metrics"][n] for n in names if n in report["metrics"]}
    baseline = {n: reference.baseline[n] for n in names if n in reference.baseline}
    change = {
        n: (metrics[n] - baseline[n]) * (1 if higher_is_better(n) else -1)
        for n in metrics
        if n in baseline
    }
    judged = primary_metric(reference.task)
    drop = _relative_drop(judged, metrics.get(judged), baseline.get(judged))
    result = {
        **head,
        "metrics": metrics,
        "baseline": baseline,
        "change": change,
        "judged_metric": judged,
        "metric_drop": drop,
        "label_delay_s": {"mean": fold.delay_total_s / fold.rows, "max": fold.delay_max_s},
    }
    if fold.rows < spec.min_labelled_rows:
        reason = f"{fold.rows} labelled rows, fewer than monitor.performance.min_labelled_rows"
        return {**result, "status": NO_DATA, "reason": reason}
    if drop is None:
        reason = f"no {judged} to compare: the window's or the training one is undefined"
        return {**result, "status": NO_DATA, "reason": reason}
    return {**result, "status": level(drop, spec.max_metric_drop)}


def _relative_drop(metric: str, value: float | None, baseline: float | None) -> float | None:
    """How much worse ``value`` is than ``baseline``, as a share of it (negative: better)."""
    from atoll.model.evaluate import higher_is_better

    if value is None or baseline is None or baseline == 0:
        return None
    worse = baseline - value if higher_is_better(metric) else value - baseline
    return worse / abs(baseline)
