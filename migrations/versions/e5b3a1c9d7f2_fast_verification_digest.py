"""The fast verification digest: ``versions.blake3``.

Revision ID: e5b3a1c9d7f2
Revises: e3a9b6c5d210
Create Date: 2026-12-04 01:30:00.000000

Each version registered from now on records the BLAKE3 of its blob beside
the SHA-256 (hashed in the same pass), and loads verify it instead, since
it hashes on every core. The column is nullable and starts empty: versions
of an existing catalog have no BLAKE3 and keep verifying their SHA-256. It
lives on ``versions`` (not ``blobs``) so that a version's v4 signature can
cover it. A downgrade drops it; the versions keep their SHA-256.

Table and column names are spelled out here as literals: a migration must
keep meaning what it meant when written, whatever the ORM classes become.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b3a1c9d7f2"
down_revision: str | None = "e3a9b6c5d210"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("blake3", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("blake3")
