"""Prediction canaries: the ``canaries`` table.

Revision ID: 494dc2f3efd6
Revises: 9e4c2b7d1a30
Create Date: 2026-12-03 08:30:00.000000

One row per version registered with an input at hand: a few input rows and
the model's outputs for them, as JSON, and the MAC binding them to the
version's bytes under the signing key. Versions of an existing catalog get
none (there is no input to ask their models about); ``check`` says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "494dc2f3efd6"
down_revision: str | None = "9e4c2b7d1a30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "canaries",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("hmac", sa.String(length=64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_canaries_version_id_versions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_canaries")),
    )


def downgrade() -> None:
    op.drop_table("canaries")
