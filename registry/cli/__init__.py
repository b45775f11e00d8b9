"""The ``modelshelf`` command line (click for parsing, rich for output).

This package is the only place that imports click or rich. The commands
live in modules by purpose: ``browse`` (read), ``find`` (search, best,
log), ``change`` (write, move between registries), ``keys`` (the keys that
sign bundles), ``policy`` (what safe loading admits), ``promote`` (alias moves
through gates, protected aliases), ``canary`` (check) and ``admin`` (verify,
gc, db, demo); ``ui`` and ``serve`` start servers.
"""

from __future__ import annotations

from registry.cli import admin, audit, browse, canary, change, find, keys, policy, promote, serve, ui, upgrade  # noqa: F401  (they add their commands to the group)
from registry.cli.app import (
    EXIT_CODES,
    EXIT_INTEGRITY,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_USAGE,
    cli,
)

__all__ = [
    "EXIT_CODES",
    "EXIT_INTEGRITY",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "cli",
    "main",
]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="modelshelf")
