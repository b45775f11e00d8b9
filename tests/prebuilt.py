"""Registries filled once for a module and copied for each test, as the session does with the template catalog.

A registration costs a few milliseconds (its blob written and synced, one
catalog transaction); copying a small filled registry costs a tenth of
that. A fixture that fills a registry the same way for many tests builds
it once with :func:`build_registry` (module scope) and hands each test its
own copy with :func:`copy_registry`: still a real SQLite catalog and real
blobs, which the test may change as it likes.

Only for registries without a signing key: a keyed client remembers the
catalog states it saw (in its cache), and the first reader of a copy has
seen none, unlike the client that filled it.

Example::

    def fill(reg: Registry) -> None:
        reg.register("m", [1], format="pickle")
        reg.register("m", [2], format="pickle")

    @pytest.fixture(scope="module")
    def built(tmp_path_factory, template_home) -> Path:
        return build_registry(tmp_path_factory, template_home, "two", fill)

    @pytest.fixture
    def two(home: Path, built: Path) -> Path:
        return copy_registry(built, home)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from registry import Registry
from registry.locations import CATALOG_FILE_NAME


def build_registry(
    factory: pytest.TempPathFactory, template_home: Path, name: str, fill: Callable[[Registry], object]
) -> Path:
    """A new registry directory filled by ``fill`` and closed; ``fill`` runs with a cache of its own."""
    home = factory.mktemp(name)
    shutil.copyfile(template_home / CATALOG_FILE_NAME, home / CATALOG_FILE_NAME)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELSHELF_CACHE", str(factory.mktemp(f"{name}-cache")))
        with Registry(home) as reg:
            fill(reg)
    return home


def copy_registry(built: Path, home: Path) -> Path:
    """Make ``home`` (a test's empty registry directory) a copy of ``built``; blobs stay read-only."""
    shutil.copytree(built, home, symlinks=True, dirs_exist_ok=True)
    return home
