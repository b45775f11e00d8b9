"""Metric indexes in version order: ``metrics`` and ``latest_metrics`` repeat the version's number.

Revision ID: 1dbfd1e06554
Revises: e5b3a1c9d7f2
Create Date: 2026-12-04 12:00:00.000000

``latest_metrics.version`` (filled from ``versions``) joins the model's
metric index, ``ix_latest_metrics_model_id`` becoming (model, key, value,
version, version id), with a twin ``ix_latest_metrics_model_id_desc`` whose
value descends: a model's top versions by a metric, in either direction,
then come out of an index with their ties already by version. Before, a
tie group (a metric with 1,000 distinct values over a million versions has
ties of 1,000) was sorted in full before the first row came out.

``metrics`` gains ``model_id`` and ``version`` (filled from ``versions``)
and ``ix_metrics_model_key`` (model, key, version, step, time, id, value,
version id): one metric's history over a model is then one index range in
history order, where it was one index seek per version; the model's
deleted versions, which it leaves out, are read from ``ix_versions_deleted``
(partial on SQLite and PostgreSQL: it holds only deleted versions).

A downgrade drops the columns and indexes and restores the old index.
Table and column names are spelled out here as literals: a migration must
keep meaning what it meant when written, whatever the ORM classes become.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "1dbfd1e06554"
down_revision: str | None = "e5b3a1c9d7f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FROM_VERSION = "(SELECT versions.{column} FROM versions WHERE versions.id = {table}.version_id)"


def upgrade() -> None:
    with op.batch_alter_table("latest_metrics") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
    op.execute(f"UPDATE latest_metrics SET version = {_FROM_VERSION.format(column='version', table='latest_metrics')}")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.alter_column("version", existing_type=sa.Integer(), nullable=False)
    # The new indexes first: MySQL keeps an index on the foreign key's column (model_id) at every moment.
    op.create_index(
        "ix_latest_metrics_model_id_desc",
        "latest_metrics",
        ["model_id", "key", sa.text("value DESC"), "version", "version_id"],
    )
    op.drop_index("ix_latest_metrics_model_id", table_name="latest_metrics")
    op.create_index(
        "ix_latest_metrics_model_id", "latest_metrics", ["model_id", "key", "value", "version", "version_id"]
    )
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("model_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=True))
    op.execute(
        f"UPDATE metrics SET model_id = {_FROM_VERSION.format(column='model_id', table='metrics')}, "
        f"version = {_FROM_VERSION.format(column='version', table='metrics')}"
    )
    with op.batch_alter_table("metrics") as batch:
        batch.alter_column("model_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("version", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key("fk_metrics_model_id_models", "models", ["model_id"], ["id"])
    op.create_index(
        "ix_metrics_model_key",
        "metrics",
        ["model_id", "key", "version", "step", "timestamp", "id", "value", "version_id"],
    )
    deleted = sa.text("deleted_at IS NOT NULL")
    op.create_index(
        "ix_versions_deleted", "versions", ["model_id", "deleted_at"], sqlite_where=deleted, postgresql_where=deleted
    )


def downgrade() -> None:
    op.drop_index("ix_versions_deleted", table_name="versions")
    with op.batch_alter_table("metrics") as batch:  # the key first: MySQL keeps an index under a key
        batch.drop_constraint("fk_metrics_model_id_models", type_="foreignkey")
    op.drop_index("ix_metrics_model_key", table_name="metrics")
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("version")
        batch.drop_column("model_id")
    op.drop_index("ix_latest_metrics_model_id", table_name="latest_metrics")
    op.create_index("ix_latest_metrics_model_id", "latest_metrics", ["model_id", "key", "value", "version_id"])
    op.drop_index("ix_latest_metrics_model_id_desc", table_name="latest_metrics")
    with op.batch_alter_table("latest_metrics") as batch:
        batch.drop_column("version")
