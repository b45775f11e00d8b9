"""Keyset pages and flat counts: ``latest_metrics.model_id``, its index, and ``models.live_versions``.

Revision ID: e3a9b6c5d210
Revises: c7d41f0a9e2b
Create Date: 2026-12-04 09:00:00.000000

``latest_metrics`` gains the id of its version's model, backfilled from
``versions``, and ``ix_latest_metrics_model_id`` over (model, key, value,
version): a model's top versions by a metric are then one index range read
in order, and its metric names a few index seeks, whatever the number of
versions or of other models. ``models.live_versions`` counts each model's
live versions, kept by every write in the statement that moves the model's
counter, backfilled here by counting; a page's total then costs one row.
A downgrade drops the three.

Table and column names are spelled out here as literals: a migration must
keep meaning what it meant when written, whatever the ORM classes become.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3a9b6c5d210"
down_revision: str | None = "c7d41f0a9e2b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("latest_metrics") as batch:
        batch.add_column(sa.Column("model_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE latest_metrics SET model_id = "
        "(SELECT versions.model_id FROM versions WHERE versions.id = latest_metrics.version_id)"
    )
    with op.batch_alter_table("latest_metrics") as batch:
        batch.alter_column("model_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_latest_metrics_model_id_models", "models", ["model_id"], ["id"])
    op.create_index("ix_latest_metrics_model_id", "latest_metrics", ["model_id", "key", "value", "version_id"])
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("live_versions", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE models SET live_versions = (SELECT COUNT(*) FROM versions"
        " WHERE versions.model_id = models.id AND versions.deleted_at IS NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("live_versions")
    with op.batch_alter_table("latest_metrics") as batch:  # the key first: MySQL keeps an index under a key
        batch.drop_constraint("fk_latest_metrics_model_id_models", type_="foreignkey")
    op.drop_index("ix_latest_metrics_model_id", table_name="latest_metrics")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.drop_column("model_id")
