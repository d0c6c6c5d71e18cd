"""Serving: API keys, the prediction log and feedback.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("rate_per_s", sa.Double, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("expires_at", _UTC, nullable=True),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
    )
    op.create_table(
        "prediction_log",
        sa.Column("id", _BIG_ID, nullable=False, autoincrement=True),
        sa.Column("prediction_id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_log"),
        sa.UniqueConstraint("prediction_id", name="uq_prediction_log_prediction_id"),
    )
    op.create_index("ix_prediction_log_model_created_at", "prediction_log", ["model", "created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", _BIG_ID, nullable=False, autoincrement=True),
        sa.Column("prediction_id", sa.String(36), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("received_at", _UTC, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.UniqueConstraint("prediction_id", name="uq_feedback_prediction_id"),
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_log_model_created_at", table_name="prediction_log")
    for table in ("feedback", "prediction_log", "api_keys"):
        op.drop_table(table)
