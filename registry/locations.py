"""Where a registry lives: the home directory, the catalog URL and the blob store.

Resolution order, first match wins:

* catalog: ``catalog=`` argument, ``$MODELSHELF_CATALOG``, else
  ``sqlite:///<home>/catalog.db``;
* store: ``store=`` argument, ``$MODELSHELF_STORE``, else ``<home>`` itself
  (blobs under ``<home>/blobs``);
* home: the ``home`` argument, ``$MODELSHELF_HOME``, else ``.modelshelf`` in
  the current working directory — next to the code that trains the models,
  as ``.git`` is next to the code it versions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME_NAME = ".modelshelf"
CATALOG_FILE_NAME = "catalog.db"
HOME_VARIABLE = "MODELSHELF_HOME"
CATALOG_VARIABLE = "MODELSHELF_CATALOG"
STORE_VARIABLE = "MODELSHELF_STORE"


@dataclass(frozen=True)
class Locations:
    """The resolved catalog URL and store location of one registry."""

    home: Path
    catalog: str
    store: str


def _path(value: object, what: str) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a path (str or os.PathLike), not {type(value).__name__}")
    if not value or "\x00" in value:
        raise ValueError(f"{what} {value!r} is not a usable path")
    return Path(value).expanduser()


def sqlite_url(path: Path) -> str:
    """A SQLAlchemy URL for a SQLite file (absolute, so the working directory does not matter)."""
    return f"sqlite:///{path.absolute()}"


def resolve(
    home: str | os.PathLike[str] | None = None,
    catalog: str | None = None,
    store: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Locations:
    """Resolve the three locations from arguments, environment and defaults (see the module doc)."""
    env = os.environ if environ is None else environ
    if home is not None:
        home_path = _path(home, "the registry directory")
    elif env.get(HOME_VARIABLE):
        home_path = _path(env[HOME_VARIABLE], f"${HOME_VARIABLE}")
    else:
        home_path = Path.cwd() / DEFAULT_HOME_NAME
    home_path = home_path.absolute()
    if home_path.exists() and not home_path.is_dir():
        raise ValueError(f"the registry directory {home_path} is a file; give a directory path")

    if catalog is None:
        catalog = env.get(CATALOG_VARIABLE) or sqlite_url(home_path / CATALOG_FILE_NAME)
    elif not isinstance(catalog, str) or not catalog:
        raise ValueError(f"catalog must be a database URL string, not {catalog!r}")

    if store is None:
        store_text = env.get(STORE_VARIABLE) or str(home_path)
    else:
        store_text = os.fspath(_path(store, "the store location")) if "://" not in str(store) else str(store)
    return Locations(home=home_path, catalog=catalog, store=store_text)
