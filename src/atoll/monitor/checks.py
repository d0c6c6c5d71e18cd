"""Running every check over one window: fold the chunks, then judge the folds.

:class:`WindowChecks` is a plain accumulator (no I/O): the caller feeds it
chunks of the prediction log (:meth:`add_chunk`, or :meth:`add_logged` for
rows decoded one by one) or of a data file (:meth:`add_frame`) and asks for
the :class:`~atoll.monitor.report.Report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from atoll.monitor.drift import drift_report
from atoll.monitor.fairness import GroupFold, fairness_report
from atoll.monitor.operational import LatencyFold, operational_report
from atoll.monitor.performance import LabelFold, performance_report
from atoll.monitor.quality import quality_report
from atoll.monitor.reference import Reference
from atoll.monitor.report import Report
from atoll.monitor.status import NO_DATA
from atoll.monitor.window import InputsFold, logged_output, output_values
from atoll.spec_serve import MonitorSpec
from atoll.store.logwindow import LogChunk, LoggedRow


class WindowChecks:
    """Accumulates one window for every check, in memory independent of its length.

    Only labelled rows cost memory per row (see :mod:`atoll.monitor.performance`).
    """

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self.inputs = InputsFold(reference)
        self.labels = LabelFold(reference)
        self.groups = GroupFold(reference)
        self.latency = LatencyFold()
        self.rejected = 0

    def add_logged(self, rows: Sequence[LoggedRow]) -> None:
        """Fold prediction-log rows already decoded one by one (with their feedback)."""
        if rows:
            self.add_chunk(LogChunk.of_rows(rows))

    def add_chunk(self, chunk: LogChunk) -> None:
        """Fold a chunk of the prediction log, column by column (with its feedback)."""
        self.inputs.add_inputs(chunk.inputs)
        self.inputs.add_predictions(output_values(self.reference, chunk.outputs))
        self.inputs.add_times((chunk.first_at, chunk.last_at))
        if self.reference.sensitive:  # else there are no groups to fold
            predicted = logged_output(chunk.outputs, "prediction")
            self.groups.add(chunk.inputs, predicted.astype(object).where(predicted.notna(), None))
        self.latency.add(chunk.latency_ms)
        labelled = [r for r in chunk.labelled if r.label_received_at is not None]
        if labelled:
            self._add_labelled(labelled)

    def _add_labelled(self, rows: Sequence[LoggedRow]) -> None:
        delays = [  # every row here has its label's time
            ((row.label_received_at or row.created_at) - row.created_at).total_seconds()
            for row in rows
        ]
        kept, truth, predicted = self.labels.add(
            [row.label for row in rows], [row.outputs for row in rows], delays
        )
        if self.reference.task != "binary" or not self.reference.sensitive:
            return
        index = np.flatnonzero(kept).tolist()
        groups = {  # every sensitive column, null where a row lacks it
            column: [rows[i].inputs.get(column) for i in index]
            for column in self.reference.sensitive
        }
        self.groups.add_labelled(groups, truth, predicted)

    def add_frame(self, frame: pd.DataFrame) -> None:
        """Fold a chunk of a data file: inputs only (no predictions, labels or latencies).

        With the model's schema at hand the chunk is validated as serving
        validates a request: rows that fail are counted as rejected, the
        others are folded in their canonical form (e.g. an integer category
        read as the float ``36.0`` is the category ``"36"``, as at training).
        """
        schema = self.reference.schema
        if schema is None:
            self.inputs.add_inputs(frame)
            return
        columns = [c for c in frame.columns if c != schema.target]
        validated = schema.validate(frame[columns], "predict")
        invalid = validated.invalid_rows
        rejected = int(np.count_nonzero(invalid))
        self.rejected += rejected
        canonical = validated.columns
        if rejected:
            canonical = {name: values[~invalid] for name, values in canonical.items()}
        self.inputs.add_inputs(pd.DataFrame(canonical, index=pd.RangeIndex(len(frame) - rejected)))

    def report(
        self,
        spec: MonitorSpec,
        *,
        source: str,
        window: tuple[datetime | None, datetime | None],
        feedback_unmatched: int | None = None,
    ) -> Report:
        """Judge the folded window."""
        from_file = source != "log"
        checks = {
            "drift": drift_report(self.inputs, spec.drift),
            "quality": quality_report(
                self.inputs, spec.quality, self.rejected if from_file else None
            ),
        }
        if not from_file:
            checks["performance"] = performance_report(
                self.labels, self.inputs.rows, spec.performance
            )
            checks["fairness"] = fairness_report(self.groups, spec.fairness)
            span = (window[0] or self.inputs.first_at, window[1] or self.inputs.last_at)
            checks["operational"] = operational_report(self.latency, span)
        else:
            reason = "a data file has no predictions, labels or latencies"
            for name in ("performance", "fairness", "operational"):
                checks[name] = {"status": NO_DATA, "reason": reason}
        return Report(
            model=self.reference.model,
            version=self.reference.version,
            source=source,
            window_start=window[0],
            window_end=window[1],
            rows=self.inputs.rows + self.rejected,
            checks=checks,
            feedback_unmatched=feedback_unmatched,
        )
