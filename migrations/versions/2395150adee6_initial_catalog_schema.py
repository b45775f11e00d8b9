"""Initial catalog schema: models, versions, blobs, tags, metrics, aliases.

Revision ID: 2395150adee6
Revises:
Create Date: 2026-11-23 01:47:52.614133

Table and column names are spelled out here as literals: a migration must
keep meaning what it meant when written, whatever the ORM classes become.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "2395150adee6"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Naive UTC; microseconds on MySQL/MariaDB, whose default precision is seconds.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_blobs")),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("blob_digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["blob_digest"], ["blobs.digest"], name=op.f("fk_versions_blob_digest_blobs")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_versions_model_id_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint("model_id", "version", name=op.f("uq_versions_model_id")),
    )
    op.create_index("ix_versions_blob_digest", "versions", ["blob_digest"])
    op.create_table(
        "aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_aliases_model_id_models")),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_aliases_version_id_versions")),
        sa.PrimaryKeyConstraint("model_id", "alias", name=op.f("pk_aliases")),
    )
    op.create_index("ix_aliases_version_id", "aliases", ["version_id"])
    op.create_table(
        "latest_metrics",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
            name=op.f("fk_latest_metrics_version_id_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_latest_metrics")),
    )
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    op.create_table(
        "metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_metrics_version_id_versions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metrics")),
    )
    op.create_index("ix_metrics_version_id_key", "metrics", ["version_id", "key"])
    op.create_table(
        "tags",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_tags_version_id_versions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_tags")),
    )


def downgrade() -> None:
    op.drop_table("tags")
    op.drop_index("ix_metrics_version_id_key", table_name="metrics")
    op.drop_table("metrics")
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    op.drop_table("latest_metrics")
    op.drop_index("ix_aliases_version_id", table_name="aliases")
    op.drop_table("aliases")
    op.drop_index("ix_versions_blob_digest", table_name="versions")
    op.drop_table("versions")
    op.drop_table("models")
    op.drop_table("blobs")
