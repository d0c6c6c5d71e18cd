"""Data quality of a window against the reference: nulls, out-of-range values, unseen categories.

Shares are of the window's rows per column; levels come from ``monitor.quality``.
A column some chunks lack counts as null in their rows; a column no row of
the window held is reported as absent, and judged (``alert``) only if it is a
feature of the model, since id, time and ignored columns need not be sent.
A categorical reference that kept only its most frequent categories cannot
tell a new category from a rare old one: there, unseen values are reported
but not judged. Rows of a data file that fail the model's schema validation
are counted as rejected; rows the server refused never reach the log, so for
the log ``atoll_prediction_errors_total`` on the server's ``/metrics`` counts them.
"""

from __future__ import annotations

from typing import Any

from atoll.monitor.status import NO_DATA, level, worst
from atoll.monitor.window import CategoricalFold, ColumnFold, InputsFold, NumericFold
from atoll.spec_monitor import QualitySpec


def quality_report(
    fold: InputsFold, spec: QualitySpec, rejected: int | None = None
) -> dict[str, Any]:
    """Per column: null rate (and the reference's), out-of-range and unseen counts, a status.

    ``rejected``: rows refused by schema validation before folding (a data
    file), ``None`` where they cannot be known here (the log).
    """
    head: dict[str, Any] = {"rejected_rows": rejected}
    seen = fold.rows + (rejected or 0)
    if seen == 0:
        return {
            "status": NO_DATA,
            "rows": 0,
            **head,
            "columns": {},
            "absent": [],
            "absent_features": [],
        }
    statuses = []
    if rejected is not None:
        head["rejected_rate"] = rejected / seen
        statuses.append(level(head["rejected_rate"], spec.rejected_rate))
    absent = fold.absent
    columns = {
        name: column_quality(f, spec)
        for name, f in fold.columns.items()
        if f.rows and name not in absent
    }
    missing = [name for name in absent if fold.reference.is_feature(name)]
    statuses += [c["status"] for c in columns.values()] + ["alert" for _ in missing]
    return {
        "status": worst(statuses),
        "rows": fold.rows,
        **head,
        "columns": columns,
        "absent": absent,
        "absent_features": missing,
    }


def column_quality(fold: ColumnFold, spec: QualitySpec) -> dict[str, Any]:
    """The quality of one column's fold (which has at least one row)."""
    null_rate = fold.nulls / fold.rows
    reference_rate = fold.reference.null_rate
    increase = max(0.0, null_rate - reference_rate)
    result: dict[str, Any] = {
        "rows": fold.rows,
        "nulls": fold.nulls,
        "null_rate": null_rate,
        "reference_null_rate": reference_rate,
    }
    statuses = [level(increase, spec.null_rate_increase)]
    if isinstance(fold, NumericFold):
        outside = fold.below + fold.above
        result.update(below_range=fold.below, above_range=fold.above)
        statuses.append(level(outside / fold.rows, spec.out_of_range_rate))
    else:
        result.update(_unseen(fold))
        if not fold.reference.truncated:
            statuses.append(level(result["unseen_values"] / fold.rows, spec.out_of_range_rate))
    return {**result, "status": worst(statuses)}


def _unseen(fold: CategoricalFold) -> dict[str, Any]:
    unseen = int(fold.counts[-1])
    top = sorted(fold.unseen.items(), key=lambda item: (-item[1], item[0]))
    return {
        "unseen_values": unseen,
        "unseen_categories": dict(top),
        "unseen_unnamed": fold.unseen_unnamed,
        "unseen_judged": not fold.reference.truncated,
    }
