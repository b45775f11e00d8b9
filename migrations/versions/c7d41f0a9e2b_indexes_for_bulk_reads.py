"""Indexes for bulk reads: a metric's history read from one index, in order.

Revision ID: c7d41f0a9e2b
Revises: 494dc2f3efd6
Create Date: 2026-12-03 16:30:00.000000

``ix_metrics_history`` replaces ``ix_metrics_version_id_key``, whose
columns it begins with: it also holds the step, time, id and value, so a
history is one index range per version, already in history order, with no
lookup of the rows. Indexes only: no data changes, and a downgrade restores
the old index.

Table and column names are spelled out here as literals: a migration must
keep meaning what it meant when written, whatever the ORM classes become.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c7d41f0a9e2b"
down_revision: str | None = "494dc2f3efd6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new index first: MySQL keeps an index on the foreign key's column at every moment.
    op.create_index("ix_metrics_history", "metrics", ["version_id", "key", "step", "timestamp", "id", "value"])
    op.drop_index("ix_metrics_version_id_key", table_name="metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_version_id_key", "metrics", ["version_id", "key"])
    op.drop_index("ix_metrics_history", table_name="metrics")
