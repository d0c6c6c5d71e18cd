"""Alerts: each rule's state per model reference, and the history of alert events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-05-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("firing", sa.Boolean, nullable=False),
        sa.Column("since", _UTC, nullable=True),
        sa.Column("notified_at", _UTC, nullable=True),
        sa.Column("pending_event", sa.String(32), nullable=True),
        sa.Column("pending_at", _UTC, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("model", "ref", "rule", name="pk_alert_states"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", _BIG_ID, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("ref", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("check_name", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("window_start", _UTC, nullable=True),
        sa.Column("window_end", _UTC, nullable=True),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
        sa.UniqueConstraint("event_id", name="uq_alert_events_event_id"),
    )
    op.create_index("ix_alert_events_model_id", "alert_events", ["model", "id"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_model_id", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_states")
