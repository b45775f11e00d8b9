"""Protected aliases: ``alias_protection`` holds the promotion gates of each protected alias.

Revision ID: 9e4c2b7d1a30
Revises: 5c1f0e2d9b7a
Create Date: 2026-12-03 08:30:00.000000

One row per protected alias: the model, the alias, its gates as JSON (each
``{"gate": name, ...arguments}``), who set them and when. The table starts
empty: no alias of an existing catalog is protected until someone says so
(``modelshelf alias protect``), which is an audited event.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "9e4c2b7d1a30"
down_revision: str | None = "5c1f0e2d9b7a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "alias_protection",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("set_by", sa.String(length=255), nullable=True),
        sa.Column("set_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_alias_protection_model_id_models")),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_alias_protection")),
    )


def downgrade() -> None:
    op.drop_table("alias_protection")
