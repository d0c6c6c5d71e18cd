"""The store's tables, private to ``atoll.store``: rows never leave it as rows.

The migrations in ``store/migrations/versions`` create exactly these tables;
a new table or column needs both an edit here and a new migration. Constraint
names follow :data:`NAMING_CONVENTION` so later migrations can refer to them
(SQLite's batch mode needs names to alter a table).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones: it stores the naive UTC value, and reading
    attaches UTC again, so callers always see aware datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the store only accepts timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime: the one clock the store writes."""
    return datetime.now(UTC)


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""64-bit ids on PostgreSQL; SQLite only auto-increments an INTEGER primary key."""

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The per-model version counter: bumped with UPDATE ... RETURNING, so two
    # registrations can never read the same value.
    sa.Column("last_version", sa.Integer, nullable=False, server_default=sa.text("0")),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("manifest_digest", sa.String(64), nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    # Sum of the package's file sizes, recorded at registration (NULL for older versions:
    # the registry measures those from the artifact store when asked).
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("model_id", "version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("model_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
    # An alias can only name a version that exists (and so a model that exists).
    sa.ForeignKeyConstraint(["model_id", "version"], ["versions.model_id", "versions.version"]),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index(None, "model", "id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # The public half of a key (shown in lists and logs); the secret is never stored,
    # only sha256(salt + secret).
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),
    sa.Column("salt", sa.String(32), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("rate_per_s", sa.Double, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
)

prediction_log = sa.Table(
    "prediction_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # UNIQUE makes every insert idempotent: spill-file replays never duplicate a record.
    sa.Column("prediction_id", sa.String(36), nullable=False, unique=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Index(None, "model", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # No foreign key: feedback may arrive before its prediction's log record is flushed.
    sa.Column("prediction_id", sa.String(36), nullable=False, unique=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
)

batch_jobs = sa.Table(
    "batch_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # The public id (uuid4 hex): the one users see (in the batch summary) and look a job up by.
    sa.Column("job_id", sa.String(32), nullable=False, unique=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("input_fingerprint", sa.String(128), nullable=False),
    sa.Column("output", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_scored", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("chunks_done", sa.Integer, nullable=False),
    sa.Column("chunks_total", sa.Integer, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("seconds", sa.Double, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Index(None, "model", "id"),
)

monitor_results = sa.Table(
    "monitor_results",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # The window checked; NULL ends for a data file, which has no time window.
    sa.Column("window_start", UTCDateTime, nullable=True),
    sa.Column("window_end", UTCDateTime, nullable=True),
    sa.Column("check_name", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "model", "check_name", "id"),
)

alert_states = sa.Table(
    "alert_states",
    metadata,
    # One row per model, reference as given to `monitor check` (name@alias or name@3)
    # and rule: whether it is firing, when it last notified, what is being sent.
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("ref", sa.String(200), primary_key=True),
    sa.Column("rule", sa.String(64), primary_key=True),
    sa.Column("firing", sa.Boolean, nullable=False),
    sa.Column("since", UTCDateTime, nullable=True),
    sa.Column("notified_at", UTCDateTime, nullable=True),
    # The event whose notification a check claimed and is sending, and when it claimed it.
    sa.Column("pending_event", sa.String(32), nullable=True),
    sa.Column("pending_at", UTCDateTime, nullable=True),
    # Bumped by every change: a change is written only if the revision is still the one
    # read, so of two checks running at once only one sends.
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    # The id the webhook body carries, so receivers can drop duplicates.
    sa.Column("event_id", sa.String(32), nullable=False, unique=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("ref", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("check_name", sa.String(32), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=True),
    sa.Column("window_end", UTCDateTime, nullable=True),
    sa.Column("delivery", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "model", "id"),
)
