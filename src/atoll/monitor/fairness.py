"""Fairness over time: per-group rates on the sensitive columns of each window.

Selection rates need no labels, so they are reported for every window of a
binary model; TPR, FPR and the equalized-odds difference follow once labels
arrive. They are folded as counts (rows and predicted positives per group;
true/false positives and negatives per group of the labelled rows), so memory
does not grow with the window, and computed with the definitions of
:mod:`atoll.model.fairness` used at training: a rate is ``None`` for a group
without positives (TPR) or negatives (FPR), and the equalized-odds difference
is the larger of the TPR and FPR gaps over the groups where both are defined.

A disparity is judged only on groups large enough for their rates to mean
something (``monitor.fairness.min_group_rows``): rows for selection rates,
labelled positives *and* negatives for TPR/FPR; smaller groups are reported
but never flagged. Limits are the version's own fairness gates, else
``monitor.fairness``. Sensitive columns are in the logged inputs unless the
spec marks them ``pii`` (then hashed or dropped); a missing one is named,
never skipped silently. Rows that lack a column some other rows have count in
the :data:`~atoll.model.fairness.MISSING_GROUP` group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from atoll.model.fairness import MISSING_GROUP
from atoll.model.holdout import plain_label
from atoll.monitor.reference import Reference
from atoll.monitor.status import NO_DATA, worst
from atoll.spec_monitor import FairnessSpec

MAX_GROUPS = 1_000
"""Distinct groups kept per sensitive column; a column with more is not a group column."""

EQUALIZED_ODDS = "equalized_odds_difference"


@dataclass
class GroupFold:
    """Per group of each sensitive column: rows, predicted positives, and labelled outcomes.

    ``outcomes[column][group]`` counts the labelled rows as
    ``[true negatives, false positives, false negatives, true positives]``.
    """

    reference: Reference
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    selected: dict[str, dict[str, int]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def add(self, frame: pd.DataFrame, predictions: Iterable[Any]) -> None:
        """Fold a chunk: the logged inputs and the predicted labels of its rows.

        Rows of a chunk that lacks a sensitive column are in its missing group.
        """
        positive = self.reference.positive_class
        chosen = np.asarray([str(plain_label(p)) == positive for p in predictions], dtype=bool)
        for column in self.reference.sensitive:
            if column in frame.columns:
                self.seen.add(column)
                groups = group_names(frame[column].to_numpy(dtype=object))
            else:
                groups = np.full(len(frame), MISSING_GROUP, dtype=object)
            counts = self.rows.setdefault(column, {})
            picked = self.selected.setdefault(column, {})
            for name, rows in _by_group(groups):
                if name not in counts and len(counts) >= MAX_GROUPS:
                    continue
                counts[name] = counts.get(name, 0) + rows.shape[0]
                picked[name] = picked.get(name, 0) + int(np.count_nonzero(chosen[rows]))

    def add_labelled(
        self, groups: Mapping[str, Sequence[Any]], truth: np.ndarray, predicted: np.ndarray
    ) -> None:
        """Fold labelled rows of a binary model.

        ``groups`` holds each sensitive column's values of the rows, ``truth``
        and ``predicted`` their class codes (1 is the positive class).
        """
        cells = np.asarray(truth, dtype=np.int64) * 2 + np.asarray(predicted, dtype=np.int64)
        for column, values in groups.items():
            table = self.outcomes.setdefault(column, {})
            names = group_names(np.asarray(values, dtype=object))
            for name, rows in _by_group(names):
                if name not in table and len(table) >= MAX_GROUPS:
                    continue
                counts = np.bincount(cells[rows], minlength=4)
                table[name] = table.get(name, np.zeros(4, dtype=np.int64)) + counts


def group_names(values: np.ndarray) -> np.ndarray:
    """Group names as training names them: ``str(value)``, or the missing group for nulls."""
    series = pd.Series(values, dtype=object)
    names = series.map(str).to_numpy(dtype=object)
    names[series.isna().to_numpy()] = MISSING_GROUP
    return names


def _by_group(names: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Each group name with the positions of its rows."""
    if names.shape[0] == 0:
        return []
    unique, inverse = np.unique(names.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=unique.shape[0]))[:-1]
    return list(zip(unique.tolist(), np.split(order, bounds), strict=True))


def fairness_report(fold: GroupFold, spec: FairnessSpec) -> dict[str, Any]:
    """Per sensitive column: group rates, disparities, the limits used and a status."""
    reference = fold.reference
    if not reference.sensitive:
        return {"status": NO_DATA, "reason": "the model has no sensitive columns", "columns": {}}
    columns: dict[str, Any] = {}
    for column in reference.sensitive:
        if column not in fold.seen:
            columns[column] = {
                "status": NO_DATA,
                "reason": "not in the logged inputs (a pii column is hashed or dropped)",
            }
            continue
        columns[column] = _column(fold, spec, column)
    return {"status": worst(c["status"] for c in columns.values()), "columns": columns}


def _column(fold: GroupFold, spec: FairnessSpec, column: str) -> dict[str, Any]:
    limits = {
        "demographic_parity_difference": spec.demographic_parity_difference,
        EQUALIZED_ODDS: spec.equalized_odds_difference,
        **fold.reference.fairness_limits.get(column, {}),
    }
    result: dict[str, Any] = {"limits": limits, **_selection(fold, spec, column)}
    judged_odds = None
    if fold.reference.task == "binary" and column in fold.outcomes:
        labelled, judged_odds = _labelled(fold.outcomes[column], spec)
        result.update(labelled)
    values = {m: result.get(m) for m in limits} | {EQUALIZED_ODDS: judged_odds}
    flagged = sorted(m for m, v in values.items() if v is not None and v > limits[m])
    result["flagged"] = flagged
    any_value = any(v is not None for v in values.values())
    result["status"] = "alert" if flagged else ("ok" if any_value else NO_DATA)
    return result


def _selection(fold: GroupFold, spec: FairnessSpec, column: str) -> dict[str, Any]:
    """Rows per group and, for a binary model, selection rates and their disparities.

    The disparities are over the groups with at least ``min_group_rows`` rows.
    """
    counts, picked = fold.rows.get(column, {}), fold.selected.get(column, {})
    if fold.reference.task != "binary":
        return {"groups": {g: {"count": n} for g, n in counts.items()}}
    rates = {g: picked[g] / n for g, n in counts.items()}  # a group exists once it has rows
    groups = {g: {"count": counts[g], "selection_rate": rates[g]} for g in counts}
    judged = [rates[g] for g, n in counts.items() if n >= spec.min_group_rows]
    if len(judged) < 2:
        return {"groups": groups}
    high, low = max(judged), min(judged)
    return {
        "groups": groups,
        "demographic_parity_difference": high - low,
        "disparate_impact_ratio": low / high if high else None,
    }


def _labelled(
    outcomes: Mapping[str, np.ndarray], spec: FairnessSpec
) -> tuple[dict[str, Any], float | None]:
    """TPR / FPR per group and the equalized-odds difference, from the labelled outcomes.

    Returns:
        the result (the difference over every group with both rates, as at
        training), and the difference over the *judged* groups (at least
        ``min_group_rows`` labelled positives and negatives), ``None`` with
        fewer than two: only that one can flag a disparity.
    """
    groups: dict[str, dict[str, Any]] = {}
    for name, (tn, fp, fn, tp) in outcomes.items():
        positives, negatives = int(tp + fn), int(tn + fp)
        groups[name] = {
            "labelled": positives + negatives,
            "positives": positives,
            "negatives": negatives,
            "tpr": int(tp) / positives if positives else None,
            "fpr": int(fp) / negatives if negatives else None,
            "judged": min(positives, negatives) >= spec.min_group_rows,
        }
    defined = {g: r for g, r in groups.items() if r["tpr"] is not None and r["fpr"] is not None}
    judged = {g: r for g, r in defined.items() if r["judged"]}
    result = {
        "labelled_groups": groups,
        EQUALIZED_ODDS: _odds_gap(defined.values()),
        "equalized_odds_judged_groups": sorted(judged),
    }
    return result, _odds_gap(judged.values()) if len(judged) >= 2 else None


def _odds_gap(groups: Iterable[Mapping[str, Any]]) -> float | None:
    """The larger of the TPR and FPR gaps between groups; ``None`` without a group."""
    rates = [(r["tpr"], r["fpr"]) for r in groups]
    if not rates:
        return None
    tpr, fpr = zip(*rates, strict=True)
    return float(max(max(tpr) - min(tpr), max(fpr) - min(fpr)))
