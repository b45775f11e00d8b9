"""Where a registry lives: the home directory, the catalog URL and the blob store.

Resolution order, first match wins:

* catalog: ``catalog=`` argument, ``$MODELSHELF_CATALOG`` (only when no
  home is given), else the SQLite file ``<home>/catalog.db``;
* store: ``store=`` argument, ``$MODELSHELF_STORE`` (only when no home is
  given), else ``<home>`` itself (blobs under ``<home>/blobs``);
* home: the ``home`` argument, ``$MODELSHELF_HOME``, else ``.modelshelf`` in
  the current working directory — next to the code that trains the models,
  as ``.git`` is next to the code it versions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from registry.errors import InvalidCatalogURL, InvalidPath

DEFAULT_HOME_NAME = ".modelshelf"
CATALOG_FILE_NAME = "catalog.db"
HOME_VARIABLE = "MODELSHELF_HOME"
CATALOG_VARIABLE = "MODELSHELF_CATALOG"
STORE_VARIABLE = "MODELSHELF_STORE"


@dataclass(frozen=True)
class Locations:
    """The resolved catalog URL and store location of one registry."""

    home: Path
    #: A database URL, or the path of a SQLite file (kept a path so that no
    #: character of it is ever read as URL syntax, such as ``?`` or ``%20``).
    catalog: str | Path
    store: str


def _path(value: object, what: str) -> Path:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InvalidPath(f"{what} must be a path (str or os.PathLike), not {type(value).__name__}")
    if not value or "\x00" in value:
        raise InvalidPath(f"{what} {value!r} is not a usable path")
    try:
        return Path(value).expanduser()
    except RuntimeError as exc:  # "~nosuchuser/x"
        raise InvalidPath(f"{what} {value!r}: {exc}") from None


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
    try:
        is_file = home_path.exists() and not home_path.is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise InvalidPath(f"the registry directory {str(home_path)[:200]!r} is not usable: {exc.strerror}") from None
    if is_file:
        raise InvalidPath(f"the registry directory {home_path} is a file; give a directory path")

    # An explicit home means its own catalog and store: the variables only fill in for a missing home.
    use_env = home is None
    resolved_catalog: str | Path
    if catalog is not None:
        if not isinstance(catalog, str) or not catalog:
            raise InvalidCatalogURL(f"catalog must be a database URL string, not {catalog!r}")
        resolved_catalog = catalog
    elif use_env and env.get(CATALOG_VARIABLE):
        resolved_catalog = env[CATALOG_VARIABLE]
    else:
        resolved_catalog = home_path / CATALOG_FILE_NAME

    if store is None:
        store_text = (env.get(STORE_VARIABLE) if use_env else None) or str(home_path)
    else:
        store_text = os.fspath(_path(store, "the store location")) if "://" not in str(store) else str(store)
    return Locations(home=home_path, catalog=resolved_catalog, store=store_text)
