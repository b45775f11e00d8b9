"""Which tests are slow by nature, and how many examples a property test tries in each lane.

``python -m pytest -m "not slow"`` is the fast lane (under a minute on two
cores); plain ``python -m pytest`` runs everything, this included. The
policy lives here, not in a decorator per test, so that it reads as one
list and a test module never has to change to move lanes. Server tests
need no entry: :func:`tests.conftest.pytest_collection_modifyitems` finds
them from the fixtures and parameters they use.

Example: ``SLOW["test_concurrency.py"] = ALL`` puts the whole module in the
slow lane; a set of names puts only those tests there.
"""

from __future__ import annotations

#: Every test of the module.
ALL: frozenset[str] = frozenset({"*"})

#: Module file name → the tests (by function name) that are slow, with why.
SLOW: dict[str, frozenset[str]] = {}

#: Set by ``tests/conftest.py`` (before any test module is imported) when the run leaves out slow tests.
fast_lane = False


def is_slow(module: str, test: str) -> bool:
    """Whether :data:`SLOW` puts ``test`` of ``module`` (a file name such as ``test_cli.py``) in the slow lane."""
    names = SLOW.get(module, frozenset())
    return "*" in names or test in names


def examples(full: int, fast: int = 25) -> int:
    """A property test's example count: ``full`` when the whole suite runs, ``fast`` in the fast lane.

    The whole suite (the README's command) still tries ``full`` examples;
    the fast lane tries fewer so that it stays quick.
    """
    return min(fast, full) if fast_lane else full
