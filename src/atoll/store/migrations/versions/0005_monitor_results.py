"""Monitoring: the stored result of each check, per model, version and window.

Revision ID: 0005
Revises: 0004
Create Date: 2026-05-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_UTC = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_results",
        sa.Column("id", _BIG_ID, nullable=False, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("window_start", _UTC, nullable=True),
        sa.Column("window_end", _UTC, nullable=True),
        sa.Column("check_name", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_results"),
    )
    op.create_index(
        "ix_monitor_results_model_check_name_id", "monitor_results", ["model", "check_name", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_results_model_check_name_id", table_name="monitor_results")
    op.drop_table("monitor_results")
