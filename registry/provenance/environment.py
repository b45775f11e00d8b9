"""What a model was built with, and whether the loading process matches it.

A pickle of a scikit-learn estimator is only promised to load correctly in
the same scikit-learn version, and numpy or Python changes can break it in
subtle ways (wrong predictions rather than exceptions). So each version
records the versions it was made with, and ``load`` compares them with the
running process before unpickling anything.

Versions are read from package metadata, never by importing the packages:
recording the environment must not cost the import of scikit-learn.
"""

from __future__ import annotations

import platform
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any

#: The distributions whose version is recorded, keyed as they appear in ``mv.environment``.
RECORDED_PACKAGES = {"scikit-learn": "scikit-learn", "numpy": "numpy", "joblib": "joblib", "scipy": "scipy"}

#: The keys compared at load time; a difference in their ``major.minor`` is reported.
COMPARED_KEYS = ("python", "scikit-learn", "numpy")


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None``; read from its metadata's headers alone.

    ``importlib.metadata.version`` parses the whole metadata file as an
    e-mail message, long description included: 2-10 ms for scikit-learn,
    scipy or modelshelf itself on a cold start, where the version is the
    third line. The headers end at the first blank line; the value is the
    same ``Version`` header.

    >>> package_version("modelshelf") == metadata.version("modelshelf")
    True
    """
    try:
        found = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    text = found.read_text("METADATA") or found.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break
        if line[:8].lower() == "version:":
            return line[8:].strip()
    return found.version  # no Version header where expected: let importlib.metadata decide


_package_version = package_version


@lru_cache(maxsize=1)
def _current() -> tuple[tuple[str, Any], ...]:
    env: dict[str, Any] = {"python": platform.python_version()}
    for key, distribution in RECORDED_PACKAGES.items():
        env[key] = _package_version(distribution)
    env["modelshelf"] = _package_version("modelshelf")
    env["platform"] = platform.platform(terse=True)
    env["machine"] = platform.machine()
    env["implementation"] = sys.implementation.name
    return tuple(env.items())


def current_environment() -> dict[str, Any]:
    """The environment of this process, as recorded with each new version.

    >>> sorted(current_environment())[:3]
    ['implementation', 'joblib', 'machine']
    """
    return dict(_current())


def _minor(version: object) -> tuple[str, ...] | None:
    if not isinstance(version, str):
        return None
    return tuple(version.split(".")[:2])


@lru_cache(maxsize=1)
def _compared() -> dict[str, Any]:
    """The compared part of this process's environment: what a load needs, without the rest's lookups.

    :func:`current_environment` also asks for joblib's, scipy's and
    modelshelf's versions and the platform (whose processor field runs
    ``uname -p`` in a subprocess); a cold process that only loads asks for none of them.
    """
    found: dict[str, Any] = {"python": platform.python_version()}
    for key in COMPARED_KEYS[1:]:
        found[key] = package_version(RECORDED_PACKAGES[key])
    return found


def environment_differences(
    recorded: dict[str, Any], current: dict[str, Any] | None = None, *, where: str = "here"
) -> list[str]:
    """Describe each compared package whose ``major.minor`` differs, as ``"numpy 1.26.4 → 2.1.0"``.

    A package that was absent at registration is not compared: the model did
    not depend on it then. One that was present but is missing now is a
    difference. ``where`` names the other side (``"there"`` for another interpreter).
    """
    now = _compared() if current is None else current
    differences = []
    for key in COMPARED_KEYS:
        then = recorded.get(key)
        if then is None:
            continue
        if _minor(then) != _minor(now.get(key)):
            differences.append(f"{key} {then} (registered) vs {now.get(key) or 'not installed'} ({where})")
    return differences
