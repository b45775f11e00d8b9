"""The schema revision this code reads and writes, found from the packaged migration scripts alone.

No SQLAlchemy and no Alembic here: opening a registry compares the
catalog's ``alembic_version`` with :data:`HEAD_REVISION`, and a cold
process that only loads must not import either to do so. The scripts are
read as text (a few small files), so adding a migration is all it takes.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from registry.errors import SchemaVersionError

__all__ = ["HEAD_REVISION", "head_revision", "migrations_dir"]


def migrations_dir() -> Path:
    """The directory of the packaged Alembic environment."""
    return Path(str(files("registry._migrations")))


_REVISION_LINE = re.compile(r'^(down_revision|revision)\b[^=\n]*=\s*(?:"([0-9a-f]+)"|None)', re.MULTILINE)


def head_revision(versions: Path) -> str:
    """The one revision among the scripts in ``versions`` that no other script revises."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in versions.glob("*.py"):
        for kind, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            if value:
                (revisions if kind == "revision" else revised).add(value)
    heads = sorted(revisions - revised)
    if len(heads) != 1:
        raise SchemaVersionError(
            f"the migration scripts in {versions} have {len(heads)} heads ({', '.join(heads) or 'none'}), "
            "not one: the installation is damaged or a merge revision is missing; reinstall modelshelf"
        )
    return heads[0]


#: The newest revision in ``migrations/versions``: the schema this code reads and writes.
HEAD_REVISION = head_revision(migrations_dir() / "versions")
