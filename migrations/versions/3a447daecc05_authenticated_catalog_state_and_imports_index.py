"""Authenticated catalog state: event chain, model seals, catalog identity, and the imports index.

Revision ID: 3a447daecc05
Revises: 034979a6f331
Create Date: 2026-12-02 04:40:00.000000

Adds ``events.link`` (each event chained to its model's previous one),
``models.state_seq``/``state``/``state_seal`` (the model's sealed state),
the one-row ``catalog_identity`` table, the ``version_imports`` index of
every version's import inventory and ``versions.imports_scanned`` (left
empty for existing rows, whose inventories a pickler tracer recorded). (``v2:`` signatures fit the existing
``versions.signature`` column: widening it would make SQLite rebuild the
table, and dropping the old one cascades into every table that refers to it.)

Existing data is carried over: ``version_imports`` gets one row per name of
each version's ``imports`` list, and every existing event gets its unkeyed
link (``u1:`` + SHA-256), model by model in id order, so ``verify`` can tell
later accidental damage of the trail. No model is sealed here: a migration
has no key, and sealing is an audited decision (``modelshelf seal``); the
catalog's identity is made by the first keyed writer. The link encoding is a
frozen copy of ``registry.catalog.chain`` as written today: a migration must
keep meaning what it meant when written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "3a447daecc05"
down_revision: str | None = "034979a6f331"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_BATCH = 1000
_NAME_LENGTH = 500


def _exact(length: int) -> sa.types.TypeEngine:
    dialect = op.get_bind().dialect
    collation = None
    if dialect.name == "postgresql":
        collation = "C"
    elif dialect.name in ("mysql", "mariadb"):
        collation = "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"
    return sa.String(length=length, collation=collation)


def _index_name(name: str) -> str:
    if len(name) <= _NAME_LENGTH:
        return name
    return "sha256:" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _unkeyed_link(previous: str | None, event: dict[str, Any]) -> str:
    at = event["at"] if event["at"].tzinfo else event["at"].replace(tzinfo=UTC)
    fields = [
        at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        event["action"],
        event["model"],
        event["version"],
        event["alias"],
        event["old"],
        event["new"],
        event["user_name"],
        event["host"],
    ]
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = b"\n".join([b"modelshelf-event-v1", (previous or "").encode(), text.encode()])
    return "u1:" + hashlib.sha256(message).hexdigest()


def _backfill(connection: sa.Connection) -> None:
    versions = sa.table("versions", sa.column("id", sa.Integer()), sa.column("imports", sa.JSON()))
    version_imports = sa.table("version_imports", sa.column("version_id", sa.Integer()), sa.column("name", sa.String()))
    rows: list[dict[str, Any]] = []
    for version_id, imports in connection.execute(sa.select(versions.c.id, versions.c.imports).order_by(versions.c.id)):
        for name in sorted({_index_name(str(name)) for name in imports or ()}):
            rows.append({"version_id": version_id, "name": name})
    for start in range(0, len(rows), _BATCH):
        op.bulk_insert(version_imports, rows[start : start + _BATCH])

    events = sa.table(
        "events",
        sa.column("id", sa.Integer()),
        sa.column("at", TIMESTAMP),
        sa.column("action", sa.String()),
        sa.column("model", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("alias", sa.String()),
        sa.column("old", sa.JSON()),
        sa.column("new", sa.JSON()),
        sa.column("user_name", sa.String()),
        sa.column("host", sa.String()),
        sa.column("link", sa.String()),
    )
    heads: dict[str, str] = {}
    links: list[dict[str, Any]] = []
    for row in connection.execute(sa.select(events).order_by(events.c.id)):
        event = row._asdict()
        link = heads[event["model"]] = _unkeyed_link(heads.get(event["model"]), event)
        links.append({"event_id": event["id"], "link": link})
    statement = sa.update(events).where(events.c.id == sa.bindparam("event_id")).values(link=sa.bindparam("link"))
    for start in range(0, len(links), _BATCH):
        connection.execute(statement, links[start : start + _BATCH])


def upgrade() -> None:
    op.create_table(
        "catalog_identity",
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("slot", name=op.f("pk_catalog_identity")),
    )
    op.create_table(
        "version_imports",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("name", _exact(_NAME_LENGTH), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"], ["versions.id"], name=op.f("fk_version_imports_version_id_versions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("version_id", "name", name=op.f("pk_version_imports")),
    )
    op.create_index("ix_version_imports_name", "version_imports", ["name"])
    with op.batch_alter_table("models") as batch_op:
        batch_op.add_column(sa.Column("state_seq", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("state", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("state_seal", sa.String(length=72), nullable=True))
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("link", sa.String(length=72), nullable=True))
    with op.batch_alter_table("versions") as batch_op:  # existing inventories came from the tracer: not scanned
        batch_op.add_column(sa.Column("imports_scanned", sa.Boolean(), nullable=True))
    _backfill(op.get_bind())


def downgrade() -> None:
    # v2 signatures stay: the earlier code compares them as v1 and refuses them, which is the safe reading.
    with op.batch_alter_table("versions") as batch_op:
        batch_op.drop_column("imports_scanned")
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("link")
    with op.batch_alter_table("models") as batch_op:
        batch_op.drop_column("state_seal")
        batch_op.drop_column("state")
        batch_op.drop_column("state_seq")
    op.drop_table("version_imports")
    op.drop_table("catalog_identity")
