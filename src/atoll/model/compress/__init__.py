"""Compression: smaller representations of a model package, kept only within an accuracy budget.

:func:`compress_package` builds every candidate (see
:mod:`atoll.model.compress.candidates`) as a package beside the original,
scores the hold-out rows with each through :class:`~atoll.model.predictor.Predictor`,
and selects the smallest one whose metric drop and prediction difference stay
within bounds. The selected package keeps its parent's ``metrics`` (measured
on the parent's test split), records the hold-out metrics it was measured to
have in its ``compression`` block, and has its ``gates`` judged again on
those (:mod:`atoll.model.compress.gating`). Registering it is the caller's job
(``atoll.api.compress``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atoll.errors import CompressionError, SpecError, first_line
from atoll.model import holdout
from atoll.model.compress import _onnx, _package, candidates, gating, report
from atoll.model.compress.cost import (
    Measurement,
    max_difference,
    measure,
    metric_drop,
)
from atoll.model.compress.report import CompressReport, Row
from atoll.model.evaluate import primary_metric
from atoll.model.package import verify_package
from atoll.model.predictor import Predictor
from atoll.spec_compress import CompressSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CompressReport", "Row", "compress_package"]


def compress_package(
    directory: Path,
    frame: pd.DataFrame,
    options: CompressSpec,
    work_dir: Path,
    *,
    parent: dict[str, Any],
    holdout_source: str = holdout.FILE,
    allow_imports: Sequence[str] = (),
) -> CompressReport:
    """Try every candidate of the package at ``directory`` on the hold-out rows ``frame``.

    Candidate packages are built under ``work_dir``; the selected one's
    manifest records what was measured and names ``parent`` in its lineage.

    Raises:
        CompressionError: no candidate is smaller than the native package
            within the budget (its ``report`` holds the table).
        SpecError: the metric is not one the model's task reports.
    """
    run = _start(directory, frame, options, work_dir, parent, list(allow_imports))
    table = [run.row("native", run.baseline, report.BASELINE)]
    measured: dict[str, tuple[Path, Measurement]] = {}
    for name, outcome in candidates.build(run.source, options.candidates):
        row, result = run.attempt(name, outcome)
        table.append(row)
        if result is not None:
            measured[name] = result
    table, winner = report.select(table)
    summary = {"source": holdout_source, "rows": run.rows.rows, "dropped": run.rows.dropped}
    done = CompressReport(
        run.metric,
        options.target,
        options.max_metric_drop,
        options.tolerance,
        summary,
        table,
        winner,
    )
    if winner is None:
        raise CompressionError(_nothing_smaller(done), done)
    chosen_dir, chosen = measured[winner]
    gates = run.finish(chosen_dir, done, chosen)
    return dataclasses.replace(done, package_dir=chosen_dir, gates=gates)


@dataclass(frozen=True)
class _Run:
    """One compression run: the original, its hold-out rows, the budget and the baseline."""

    source: candidates.Source
    rows: holdout.Labelled
    options: CompressSpec
    work_dir: Path
    parent: dict[str, Any]
    metric: str
    baseline: Measurement
    classification: bool

    def attempt(
        self, name: str, outcome: candidates.Outcome
    ) -> tuple[Row, tuple[Path, Measurement] | None]:
        """Write and measure one candidate; a failure is a row with its reason, never a fallback."""
        if isinstance(outcome, _onnx.NotBuilt):
            return Row(name, report.NOT_BUILT, str(outcome)), None
        target = self.work_dir / name
        try:
            _package.write_candidate(self.source, outcome, target, self.parent)
            result = measure(target, self.rows, self.options.target, self.source.trusted)
            row = self.row(name, result, report.QUALIFIES)
        except Exception as exc:  # a candidate that loads or scores wrongly is reported, not fatal
            return Row(name, report.FAILED, first_line(exc)), None
        judged = report.judge(row, self.options.max_metric_drop, self.options.tolerance)
        return judged, (target, result)

    def row(self, name: str, m: Measurement, status: str) -> Row:
        value = m.metrics.get(self.metric)
        base = self.baseline.metrics[self.metric]
        return Row(
            name,
            status,
            size_bytes=m.size_bytes,
            model_bytes=m.model_bytes,
            metric=value,
            drop=None if value is None else metric_drop(self.metric, base, value),
            max_diff=max_difference(self.classification, self.baseline.scores, m.scores),
            load_ms=m.load_ms,
            one_row_us=m.one_row_us,
            rows_10k_ms=m.many_rows_ms,
        )

    def finish(self, directory: Path, done: CompressReport, chosen: Measurement) -> dict[str, Any]:
        """Record in the selected package's manifest what it cost, and judge its gates.

        The manifest's ``metrics`` stay the parent's, so versions compare on
        the same (test split) rows; the hold-out metrics go in ``compression``.
        Returns the new ``gates`` block.
        """
        row = next(r for r in done.rows if r.status == report.SELECTED)
        compression = {
            "target": done.target,
            "metric": done.metric,
            "value": row.metric,
            "baseline": self.baseline.metrics[done.metric],
            "drop": row.drop,
            "max_diff": row.max_diff,
            "max_metric_drop": done.max_metric_drop,
            "tolerance": done.tolerance,
            "evaluated_on": done.holdout,
            "metrics": chosen.metrics,
        }
        manifest = verify_package(directory)
        gates = gating.judge_gates(directory, manifest, chosen.metrics)
        _package.finish(directory, manifest, {"gates": gates, "compression": compression})
        return gates


def _start(
    directory: Path,
    frame: pd.DataFrame,
    options: CompressSpec,
    work_dir: Path,
    parent: dict[str, Any],
    trusted: list[str],
) -> _Run:
    manifest = verify_package(directory)
    native = Predictor.from_verified(directory, manifest, trusted)
    rows = holdout.labelled(frame, native.schema, native.task, native.classes)
    metric = _metric_name(options, directory, manifest)
    baseline = measure(directory, rows, options.target, trusted)
    if metric not in baseline.metrics:
        known = ", ".join(sorted(baseline.metrics))
        raise SpecError(
            f"compress.metric: {metric!r} is not measured for this model (choose from {known})",
            problems=[("compress.metric", None, f"not one of {known}")],
        )
    n_features = len(native.wrangler.feature_names_)
    source = candidates.Source(directory, manifest, n_features, trusted)
    classification = native.task.is_classification
    return _Run(source, rows, options, work_dir, parent, metric, baseline, classification)


def _metric_name(options: CompressSpec, directory: Path, manifest: dict[str, Any]) -> str:
    """The metric asked for, else the spec's first evaluation metric, else the task's primary."""
    if options.metric:
        return options.metric
    spec = gating.packaged_spec(directory, manifest)
    listed = spec.get("evaluate", {}).get("metrics") or []
    return str(listed[0]) if listed else primary_metric(manifest["task"])


def _nothing_smaller(done: CompressReport) -> str:
    return (
        f"no candidate is smaller than the native model with a {done.metric} drop of at most "
        f"{done.max_metric_drop:g} and predictions within {done.tolerance:g}; nothing was "
        f"registered\nwhat each candidate cost ({done.target} size, "
        f"{done.holdout['rows']:,} hold-out rows):\n{done.text()}"
    )
