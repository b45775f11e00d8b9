"""Search, lineage, audit trail and input signatures.

Revision ID: 034979a6f331
Revises: 7bba9ce21c3f
Create Date: 2026-12-01 06:36:09.906721

Adds the typed ``param_values`` rows that searches compare, an index on tag
keys, the ``lineage`` table, the append-only ``events`` table and the
``versions.input_signature`` column.

Existing data is carried over, not left behind: every version's top-level
params become ``param_values`` rows, and the audit trail starts with the
history the catalog can still tell (one ``register`` event per version at
its creation time, a ``metrics.log`` event per later logging of metrics, a
``version.delete`` event per deleted version, an ``alias.set`` event per
alias at its last move), with user and host unknown.
Table and column names are spelled out here as literals, and the param
classification is a frozen copy: a migration must keep meaning what it
meant when written, whatever the live code becomes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "034979a6f331"
down_revision: str | None = "7bba9ce21c3f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_BATCH = 1000


def _collation() -> str | None:
    """Keys, names and searched text compare by code point on every engine, as on SQLite.

    MySQL/MariaDB's default collation ignores case, accents and trailing
    spaces (``acc`` and ``ACC`` were one metric key there); PostgreSQL's
    follows the locale.
    """
    dialect = op.get_bind().dialect
    if dialect.name == "postgresql":
        return "C"
    if dialect.name in ("mysql", "mariadb"):
        return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"
    return None


def _exact(length: int | None = None) -> sa.types.TypeEngine:
    collation = _collation()
    return sa.Text(collation=collation) if length is None else sa.String(length=length, collation=collation)


#: (table, column, length or None for TEXT, nullable): columns of the earlier schema that now compare exactly.
_EXACT_COLUMNS = (
    ("models", "name", 128, False),
    ("tags", "key", 250, False),
    ("tags", "value", None, False),
    ("metrics", "key", 250, False),
    ("latest_metrics", "key", 250, False),
)


def _param_row(version_id: int, key: str, value: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"version_id": version_id, "key": key, "kind": "json", "number": None, "text": None}
    if value is None:
        row["kind"] = "null"
    elif isinstance(value, bool):
        row.update(kind="bool", number=1.0 if value else 0.0)
    elif isinstance(value, (int, float)) and math.isfinite(float(value)):
        row.update(kind="number", number=float(value))
    elif isinstance(value, str):
        row.update(kind="string", text=value)
    else:
        row["text"] = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return row


def _insert_in_batches(table: sa.TableClause, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _BATCH):
        op.bulk_insert(table, rows[start : start + _BATCH])


def _backfill(connection: sa.Connection) -> None:
    models = sa.table("models", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
    versions = sa.table(
        "versions",
        sa.column("id", sa.Integer()),
        sa.column("model_id", sa.Integer()),
        sa.column("version", sa.Integer()),
        sa.column("blob_digest", sa.String()),
        sa.column("format", sa.String()),
        sa.column("params", sa.JSON()),
        sa.column("created_at", TIMESTAMP),
        sa.column("deleted_at", TIMESTAMP),
    )
    aliases = sa.table(
        "aliases",
        sa.column("model_id", sa.Integer()),
        sa.column("alias", sa.String()),
        sa.column("version_id", sa.Integer()),
        sa.column("updated_at", TIMESTAMP),
    )
    param_values = sa.table(
        "param_values",
        sa.column("version_id", sa.Integer()),
        sa.column("key", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("number", sa.Double()),
        sa.column("text", sa.Text()),
    )
    events = sa.table(
        "events",
        sa.column("at", TIMESTAMP),
        sa.column("action", sa.String()),
        sa.column("model", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("alias", sa.String()),
        sa.column("old", sa.JSON()),
        sa.column("new", sa.JSON()),
        sa.column("user_name", sa.String()),
        sa.column("host", sa.String()),
    )
    params: list[dict[str, Any]] = []
    history: list[tuple[Any, int, dict[str, Any]]] = []  # (time, order within that time, event)
    rows = connection.execute(
        sa.select(
            versions.c.id,
            models.c.name,
            versions.c.version,
            versions.c.blob_digest,
            versions.c.format,
            versions.c.params,
            versions.c.created_at,
            versions.c.deleted_at,
        )
        .join(models, models.c.id == versions.c.model_id)
        .order_by(versions.c.id)
    )
    for version_id, name, number, digest, fmt, version_params, created_at, deleted_at in rows:
        for key, value in (version_params or {}).items():
            params.append(_param_row(version_id, key, value))
        event = {"model": name, "version": number, "alias": None, "user_name": None, "host": None}
        checksum = f"sha256:{digest}"
        history.append(
            (created_at, 0, {**event, "at": created_at, "action": "register", "old": None,
                             "new": {"checksum": checksum, "format": fmt}})
        )  # fmt: skip
        if deleted_at is not None:
            history.append(
                (deleted_at, 3, {**event, "at": deleted_at, "action": "version.delete",
                                 "old": {"checksum": checksum}, "new": None})
            )  # fmt: skip
    metrics = sa.table(
        "metrics",
        sa.column("id", sa.Integer()),
        sa.column("version_id", sa.Integer()),
        sa.column("key", sa.String()),
        sa.column("value", sa.Double()),
        sa.column("step", sa.BigInteger()),
        sa.column("timestamp", TIMESTAMP),
    )
    logged: dict[tuple[Any, ...], dict[str, Any]] = {}  # one event per (version, time, step), as log_metrics wrote
    for name, number, key, value, step, at in connection.execute(
        sa.select(
            models.c.name, versions.c.version, metrics.c.key, metrics.c.value, metrics.c.step, metrics.c.timestamp
        )
        .join(versions, versions.c.id == metrics.c.version_id)
        .join(models, models.c.id == versions.c.model_id)
        .where(metrics.c.timestamp > versions.c.created_at)  # not those given at registration, or imported with it
        .order_by(metrics.c.id)
    ):
        event = logged.setdefault((name, number, at, step), {
            "at": at, "action": "metrics.log", "model": name, "version": number, "alias": None, "old": None,
            "new": {"metrics": {}, "step": step}, "user_name": None, "host": None,
        })  # fmt: skip
        event["new"]["metrics"][key] = value
    history.extend((event["at"], 1, event) for event in logged.values())
    for name, alias, number, updated_at in connection.execute(
        sa.select(models.c.name, aliases.c.alias, versions.c.version, aliases.c.updated_at)
        .join(models, models.c.id == aliases.c.model_id)
        .join(versions, versions.c.id == aliases.c.version_id)
    ):
        history.append(
            (updated_at, 2, {"at": updated_at, "action": "alias.set", "model": name, "version": number,
                             "alias": alias, "old": None, "new": number, "user_name": None, "host": None})
        )  # fmt: skip
    history.sort(key=lambda item: (item[0], item[1]))
    _insert_in_batches(param_values, params)
    _insert_in_batches(events, [event for _, _, event in history])


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("model", _exact(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(length=64), nullable=True),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_model_id", "events", ["model", "id"])
    op.create_table(
        "lineage",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("script", _exact(), nullable=True),
        sa.Column("user_name", _exact(255), nullable=True),
        sa.Column("host", _exact(255), nullable=True),
        sa.Column("modelshelf_version", _exact(64), nullable=True),
        sa.Column("data_digest", sa.String(length=64), nullable=True),
        sa.Column("data_shape", sa.JSON(), nullable=True),
        sa.Column("data_columns", sa.JSON(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["versions.id"], name=op.f("fk_lineage_parent_id_versions")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_lineage_version_id_versions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_lineage")),
    )
    op.create_index("ix_lineage_data_digest", "lineage", ["data_digest"])
    op.create_index("ix_lineage_parent_id", "lineage", ["parent_id"])
    op.create_table(
        "param_values",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", _exact(250), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("number", sa.Double(), nullable=True),
        sa.Column("text", _exact(), nullable=True),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_param_values_version_id_versions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name=op.f("pk_param_values")),
    )
    op.create_index("ix_param_values_key_number", "param_values", ["key", "number"])
    op.create_index("ix_tags_key", "tags", ["key"])
    with op.batch_alter_table("versions") as batch_op:
        batch_op.add_column(sa.Column("input_signature", sa.JSON(), nullable=True))
    if _collation() is not None:  # the earlier tables' keys, names and tag values compare exactly too
        for table, name, length, nullable in _EXACT_COLUMNS:
            before = sa.Text() if length is None else sa.String(length=length)
            op.alter_column(table, name, existing_type=before, type_=_exact(length), nullable=nullable)
    _backfill(op.get_bind())


def downgrade() -> None:
    # Tables first: dropping them drops their indexes and foreign keys, which MySQL/MariaDB will not drop
    # on their own while a foreign key needs them (and their DDL is not transactional: order matters).
    op.drop_table("events")
    op.drop_table("lineage")
    op.drop_table("param_values")
    op.drop_index("ix_tags_key", table_name="tags")
    # The exact collations stay: the earlier code reads them fine, and undoing them could fail halfway on
    # MySQL/MariaDB, where names that now differ only in case would collide again.
    with op.batch_alter_table("versions") as batch_op:
        batch_op.drop_column("input_signature")
