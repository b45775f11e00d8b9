"""Mark damaged blobs: ``blobs.damaged_at`` and ``blobs.damage``.

Revision ID: 5c1f0e2d9b7a
Revises: 3a447daecc05
Create Date: 2026-12-02 07:40:00.000000

``modelshelf repair`` moves damaged bytes into ``quarantine/`` and marks
their blob here, so a load of any version using them can say what happened
and how to heal it; the mark is cleared when the same digest comes back
verified. Both columns are nullable and start empty: no blob of an existing
catalog is known damaged until ``repair`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "5c1f0e2d9b7a"
down_revision: str | None = "3a447daecc05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("damaged_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("damage", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("damage")
        batch.drop_column("damaged_at")
