"""Record pickle imports and signatures on versions.

Revision ID: 7bba9ce21c3f
Revises: 2395150adee6
Create Date: 2026-11-23 02:40:00.000000

Both columns are nullable: versions registered before this revision have no
recorded imports (``mv.imports`` is ``None``) and no signature.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7bba9ce21c3f"
down_revision: str | None = "2395150adee6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch_op:
        batch_op.add_column(sa.Column("imports", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("versions") as batch_op:
        batch_op.drop_column("signature")
        batch_op.drop_column("imports")
