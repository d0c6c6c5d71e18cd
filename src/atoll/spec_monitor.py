"""The ``monitor.drift``, ``quality``, ``performance``, ``fairness`` and ``alerts`` sections.

Drift is judged on effect sizes, never on p-values alone: on large windows a
p-value flags every column (evidently#50). Each statistic has a ``warn`` and an
``alert`` level; a column's status is the worst over its statistics. Alert
rules (``monitor.alerts``) turn a check's status into notifications.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from atoll._durations import format_duration, parse_duration


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


Check = Literal["drift", "quality", "performance", "fairness", "operational"]
"""The checks of a report: those of :data:`atoll.monitor.report.CHECKS` (a test keeps them
equal; the spec is below the monitor layer and cannot import it)."""

SILENT_CHECKS = {
    "operational": (
        "the operational check has no thresholds yet (its status is only ok or no_data),"
        " so a rule on it could never fire"
    )
}
"""Checks a rule may not watch, and why."""

ALERT_CHECKS: tuple[str, ...] = tuple(c for c in get_args(Check) if c not in SILENT_CHECKS)
"""The checks a rule may watch."""


def _alertable(check: str) -> str:
    if check in SILENT_CHECKS:
        raise ValueError(f"{SILENT_CHECKS[check]}: watch one of {', '.join(ALERT_CHECKS)}")
    return check


def web_url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable webhook URL, never quoting it (it may hold a token).

    A webhook URL must be absolute http(s), name a host, have a numeric port if
    any, and hold no credentials: secrets never live in the spec.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http:// or https:// URL with a host"
    try:
        port = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        port = 0
    if port == 0:
        return "the port is not a number from 1 to 65535"
    if parts.username or parts.password:
        return "the URL holds credentials: sign with secret_env instead"
    return None


def _web_url(url: str | None) -> str | None:
    problem = None if url is None else web_url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return url


def _cooldown(value: object) -> timedelta:
    """Text such as ``6h`` from YAML; a positive ``timedelta`` of whole seconds from Python."""
    if isinstance(value, timedelta) and value > timedelta(0) and not value.microseconds:
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r}: give a positive span of whole seconds such as 6h, 30m or 1d")
    return parse_duration(value)


_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]*$"


class WebhookSpec(_Section):
    """Where an alert is POSTed, signed with the secret held in an environment variable.

    The URL is given as ``url``, or, when it holds a token itself (Slack,
    Teams and Discord put one in the path), read from the environment variable
    ``url_env`` names: exactly one of the two.
    """

    url: Annotated[str | None, Field(max_length=2048), AfterValidator(_web_url)] = None
    url_env: str | None = Field(
        None,
        pattern=_VARIABLE,
        max_length=128,
        description="Environment variable holding the URL (for URLs that carry a token).",
    )
    secret_env: str = Field(
        pattern=_VARIABLE,
        max_length=128,
        description="Environment variable holding the HMAC-SHA256 key (never the key itself).",
    )
    timeout_s: float = Field(
        5.0, gt=0, le=60, description="Per attempt: connecting, sending and the answer's status."
    )
    retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Further attempts after a 5xx, 408, 429, timeout or refused connection.",
    )

    @model_validator(mode="after")
    def _one_url(self) -> WebhookSpec:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env'")
        return self


class AlertRule(_Section):
    """Notify when one check reaches a level; at most once per cooldown while it stays there.

    The level key is ``level`` rather than ``on``: YAML 1.1 reads a bare ``on`` as ``true``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    check: Annotated[Check, AfterValidator(_alertable)]
    level: Literal["warn", "alert"] = Field(
        "alert", description="Fire when the check's status is at least this."
    )
    cooldown: Annotated[
        timedelta, BeforeValidator(_cooldown), PlainSerializer(format_duration, when_used="json")
    ] = Field(
        default=timedelta(hours=6),
        description=(
            "No notification sooner than this after the rule's last one: while firing, the"
            " alert is re-sent once it has passed; a new fire within it is held until it has."
        ),
    )
    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=10)


def _unique_names(rules: list[AlertRule]) -> list[AlertRule]:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ValueError(f"two rules are named {rule.name!r}: names must be unique")
        seen.add(rule.name)
    return rules


AlertRules = Annotated[list[AlertRule], AfterValidator(_unique_names)]
"""``monitor.alerts``: the rules ``atoll monitor check`` evaluates."""
