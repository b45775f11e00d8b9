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


def _package_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


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


def environment_differences(
    recorded: dict[str, Any], current: dict[str, Any] | None = None, *, where: str = "here"
) -> list[str]:
    """Describe each compared package whose ``major.minor`` differs, as ``"numpy 1.26.4 → 2.1.0"``.

    A package that was absent at registration is not compared: the model did
    not depend on it then. One that was present but is missing now is a
    difference. ``where`` names the other side (``"there"`` for another interpreter).
    """
    now = current_environment() if current is None else current
    differences = []
    for key in COMPARED_KEYS:
        then = recorded.get(key)
        if then is None:
            continue
        if _minor(then) != _minor(now.get(key)):
            differences.append(f"{key} {then} (registered) vs {now.get(key) or 'not installed'} ({where})")
    return differences
