"""The ``monitor.drift``, ``quality``, ``performance`` and ``fairness`` sections of ``atoll.yaml``.

Drift is judged on effect sizes, never on p-values alone: on large windows a
p-value flags every column (evidently#50). Each statistic has a ``warn`` and an
``alert`` level; a column's status is the worst over its statistics.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Section):
    """Two levels of one statistic: ``warn`` must be below ``alert``."""

    warn: float = Field(gt=0)
    alert: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if not self.warn < self.alert:
            raise ValueError(f"warn ({self.warn:g}) must be below alert ({self.alert:g})")
        return self


class _Bounded(Threshold):
    """A statistic that lives in [0, 1] (Jensen-Shannon distance, Kolmogorov-Smirnov D)."""

    @model_validator(mode="after")
    def _at_most_one(self) -> _Bounded:
        if self.alert > 1:
            raise ValueError(
                f"alert ({self.alert:g}) must be at most 1: the statistic is in [0, 1]"
            )
        return self


def _levels(kind: type[Threshold], warn: float, alert: float, description: str) -> Any:
    """A threshold field defaulting to ``warn`` / ``alert``."""
    return Field(default_factory=lambda: kind(warn=warn, alert=alert), description=description)


class DriftSpec(_Section):
    """Effect-size levels of the drift statistics, and the least rows worth judging."""

    psi: Threshold = _levels(
        Threshold, 0.1, 0.25, "Population stability index on the reference bins (every column)."
    )
    js: _Bounded = _levels(
        _Bounded, 0.1, 0.2, "Jensen-Shannon distance (base 2) of category shares."
    )
    ks: _Bounded = _levels(
        _Bounded, 0.1, 0.2, "Kolmogorov-Smirnov D on the binned distributions (numeric columns)."
    )
    wasserstein: Threshold = _levels(
        Threshold, 0.1, 0.2, "Wasserstein distance on the bins, in reference standard deviations."
    )
    min_rows: int = Field(
        100, ge=1, le=1_000_000, description="Fewer rows in a window: no verdict on drift."
    )


class FairnessSpec(_Section):
    """Disparity limits used when the version's own promotion gates set none."""

    demographic_parity_difference: float = Field(0.1, gt=0, le=1)
    equalized_odds_difference: float = Field(0.1, gt=0, le=1)
    min_group_rows: int = Field(
        100,
        ge=1,
        description=(
            "Groups with fewer rows (for TPR/FPR: fewer labelled positives or negatives)"
            " are reported but not judged: below 100 a rate's standard error passes 0.05,"
            " half the default limits."
        ),
    )


class QualitySpec(_Section):
    """Levels of data-quality problems, as shares of a window's rows."""

    null_rate_increase: _Bounded = _levels(
        _Bounded, 0.05, 0.2, "Null rate above the reference's, in absolute terms."
    )
    out_of_range_rate: _Bounded = _levels(
        _Bounded, 0.01, 0.05, "Values outside the reference range, or categories it never saw."
    )
    rejected_rate: _Bounded = _levels(
        _Bounded, 0.01, 0.05, "Rows of a data file refused by the model's schema validation."
    )


class PerformanceSpec(_Section):
    """How far the task's primary metric may fall below its training value."""

    max_metric_drop: Threshold = _levels(
        Threshold,
        0.05,
        0.1,
        (
            "Relative drop of the primary metric (roc_auc, macro_f1 or rmse) from its training"
            " value: 0.05 is 5% worse (an AUC of 0.80 falling to 0.76, an RMSE rising 5%)."
        ),
    )
    min_labelled_rows: int = Field(
        100, ge=1, le=1_000_000, description="Fewer labelled rows in a window: no verdict."
    )
