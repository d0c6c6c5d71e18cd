"""The ``serve:`` and ``monitor:`` sections of ``atoll.yaml``: how a model is served and logged.

Defaults follow research/security.md §5: every limit is on and bounded, and
every one can be changed here. The server reads these once at start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from atoll.spec_monitor import (
    AlertRules,
    DriftSpec,
    FairnessSpec,
    PerformanceSpec,
    QualitySpec,
)
from atoll.types import ALIAS_PATTERN

KIB = 1024
MIB = 1024 * KIB


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingSpec(_Section):
    """Adaptive micro-batching: requests that arrive together share one predict call."""

    enabled: bool = True
    max_batch_size: int = Field(256, ge=1, le=100_000, description="Rows per predict call.")
    max_latency_ms: float = Field(
        0.0,
        ge=0.0,
        le=1_000.0,
        description="Longest wait for more rows after the first. 0: a batch is whatever "
        "arrived while the model was busy with the previous one (lowest latency).",
    )
    max_queue_requests: int = Field(
        512, ge=1, description="Requests waiting per model before 503 + Retry-After."
    )
    inline_max_rows: int = Field(
        128,
        ge=0,
        le=100_000,
        description="Batches of at most this many rows are predicted on the event loop's "
        "own thread, not the model thread (no thread hop). 0: always the model thread.",
    )


class LimitsSpec(_Section):
    max_body_bytes: int = Field(16 * MIB, ge=1024, description="Predict routes (413 past it).")
    max_other_body_bytes: int = Field(1 * MIB, ge=1024, description="Every other route.")
    max_rows: int = Field(10_000, ge=1, description="Rows per online request (413 past it).")
    max_header_bytes: int = Field(
        16 * KIB,
        ge=KIB,
        le=MIB,
        description="Request line and headers; also a chunked body's trailers (431 past it).",
    )
    max_header_count: int = Field(
        100, ge=8, le=10_000, description="Header fields; also trailer fields (431)."
    )
    max_json_depth: int = Field(
        32, ge=8, le=1_000, description="Nesting levels of a JSON body (400 json_too_deep)."
    )
    body_timeout_s: float = Field(30.0, gt=0, description="Whole body received within (408).")
    request_timeout_s: float = Field(30.0, gt=0, description="Prediction answered within (504).")
    max_in_flight: int = Field(1_024, ge=1, description="Requests in progress per worker (503).")
    max_connections: int = Field(1_000, ge=1, description="Open connections per worker (503).")
    keepalive_s: float = Field(75.0, gt=0, description="Idle keep-alive before closing.")


class RateLimitSpec(_Section):
    per_key_per_s: float = Field(100.0, ge=0, description="Token refill rate; 0 = unlimited.")
    burst: int = Field(200, ge=1)
    auth_failures_per_min: int = Field(10, ge=1, description="Per client address (429).")


class CanarySpec(_Section):
    """Send a share of traffic to a challenger alias; it answers those requests."""

    alias: str = Field(pattern=ALIAS_PATTERN)
    percent: float = Field(gt=0, le=100)


class ShadowSpec(_Section):
    """A challenger alias scores every request too; its answers are logged, not returned."""

    alias: str = Field(pattern=ALIAS_PATTERN)


class ServeSpec(_Section):
    auth: bool = Field(True, description="API keys required; off only on loopback.")
    cors_origins: list[str] = Field(default_factory=list, description="Empty = CORS off.")
    unknown_columns: Literal["error", "ignore"] = "error"
    reload_interval_s: float = Field(
        1.0, gt=0, le=60, description="How often each worker checks where aliases point."
    )
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    rate_limit: RateLimitSpec = Field(default_factory=RateLimitSpec)
    canary: CanarySpec | None = None
    shadow: ShadowSpec | None = None
    drain_s: float = Field(5.0, ge=0, description="On SIGTERM, keep serving this long first.")


class LogSpec(_Section):
    """The prediction log: what is kept of each prediction, and how safely."""

    enabled: bool = True
    durability: Literal["batched", "strict"] = Field(
        "batched",
        description="batched: a crash loses at most flush_ms; strict: answers only once logged.",
    )
    flush_ms: int = Field(200, ge=1, le=60_000)
    writer: Literal["process", "thread"] = Field(
        "process",
        description="Where `atoll serve` builds and inserts log records: a process of its own "
        "beside each worker (off the worker's GIL), or a thread in the worker.",
    )
    sample: float = Field(1.0, ge=0.0, le=1.0, description="Share of predictions logged.")
    queue_size: int = Field(10_000, ge=1)
    pii: Literal["hash", "drop"] = Field(
        "hash", description="PII columns: keyed hash (ATOLL_PII_PEPPER) or dropped."
    )
    batch: bool = Field(
        False,
        description="Also log the rows `atoll predict` scores, so `atoll monitor` can judge "
        "batch traffic.",
    )


class MonitorSpec(_Section):
    log: LogSpec = Field(default_factory=LogSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    fairness: FairnessSpec = Field(default_factory=FairnessSpec)
    alerts: AlertRules = Field(default_factory=list)
