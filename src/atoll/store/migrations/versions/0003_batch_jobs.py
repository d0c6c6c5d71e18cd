"""Batch scoring: one record per ``atoll predict`` job.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-17
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
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
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.Column("seconds", sa.Double, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("options", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batch_jobs"),
        sa.UniqueConstraint("job_id", name="uq_batch_jobs_job_id"),
    )
    op.create_index("ix_batch_jobs_model_id", "batch_jobs", ["model", "id"])


def downgrade() -> None:
    op.drop_index("ix_batch_jobs_model_id", table_name="batch_jobs")
    op.drop_table("batch_jobs")
