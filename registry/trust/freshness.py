"""The client's memory of the newest sealed state it has seen, per catalog and model: anti-rollback.

A key proves that a model's state was sealed by someone holding it, not
that it is the *latest* such state: a catalog restored from an older
backup (or rolled back on purpose by an attacker) is consistent and every
seal in it verifies. What a key alone cannot catch, a client that has seen
a newer state can: every model's seal carries a sequence number that only
grows, and this module remembers, in the client's cache directory, the
highest one seen for each (catalog identity, model). A seal older than that
is refused.

It only protects clients that read the newer state before the rollback,
and only as long as their cache survives; a fresh client trusts what it is
given first. The file is small JSON, rewritten atomically (temporary file,
rename) when a higher number is seen; two processes racing may lose one
update, which only lowers what is remembered, never raises a false alarm.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path

from registry.errors import UntrustedArtifact

_CATALOG_ID = re.compile(r"[0-9a-f]{32}")
DIRECTORY_NAME = "catalog-state"


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and missing parents 0755 each, whatever the umask.

    Another user able to write here could remove or lower this memory, so
    no directory of it is left writable by others (``mkdir(parents=True)``
    gives the parents the umask's mode).
    """
    missing = []
    while not directory.exists() and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    for step in reversed(missing):
        try:
            os.mkdir(step, 0o755)
        except FileExistsError:
            pass


class StateMemory:
    """The highest seal sequence seen per model of each catalog, kept under ``cache_dir``."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = Path(cache_dir) / DIRECTORY_NAME

    def path_of(self, catalog_id: str) -> Path:
        return self.directory / f"{catalog_id}.json"

    def _read(self, path: Path) -> dict[str, int]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}

    def observe(self, catalog_id: str | None, model: str, seq: int) -> None:
        """Refuse ``seq`` if a newer state of ``model`` was seen before; remember it if it is the newest."""
        if catalog_id is None:
            return
        if not _CATALOG_ID.fullmatch(catalog_id):
            raise UntrustedArtifact(
                f"the catalog's identity {catalog_id!r} is not one modelshelf makes: the catalog was edited by hand; "
                "restore it from a backup"
            )
        path = self.path_of(catalog_id)
        seen = self._read(path)
        newest = seen.get(model, -1)
        if seq < newest:
            raise UntrustedArtifact(
                f"the catalog was rolled back: model {model!r} is at state {seq}, but this client has already seen "
                f"state {newest} of it; nothing was served. Restore the newer catalog; if the rollback was "
                f"deliberate, remove {path} (this client's memory of that catalog)"
            )
        if seq > newest:
            seen[model] = seq
            self._write(path, seen)

    @staticmethod
    def _write(path: Path, seen: dict[str, int]) -> None:
        try:
            _make_private_dirs(path.parent)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    json.dump(seen, file, sort_keys=True)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            warnings.warn(
                f"cannot remember the catalog state seen in {path} ({exc}); rollbacks will not be noticed",
                stacklevel=4,
            )
