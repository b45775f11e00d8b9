"""Which inventory a safe load holds a version to: scanned ones always, a pickler tracer's never.

Versions registered before the scanner carry the globals a tracer saw,
which missed nested pickles (the ``Tree`` inside a gradient-boosting model,
joblib's object arrays): holding them to that list would refuse good
models. The flag that tells the two apart is set by the code that scans.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from registry import Registry, UnsafeArtifact, UntrustedArtifact
from registry.locations import CATALOG_FILE_NAME


def _rewrite(home: Path, ref_version: int, imports: str, scanned: int | None) -> None:
    with sqlite3.connect(home / CATALOG_FILE_NAME) as db:
        db.execute(
            "UPDATE versions SET imports = ?, imports_scanned = ? WHERE version = ?", (imports, scanned, ref_version)
        )


def test_a_scanned_inventory_is_enforced_and_a_tracers_is_not(home: Path, iris: Any) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = iris
    model = GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X, y)
    with Registry(home) as reg:
        mv = reg.register("gb", model)
        assert mv.imports_scanned and "sklearn.tree._tree.Tree" in mv.imports  # the nested global, scanned
        assert reg.get("gb:1").imports_scanned
    # What a tracer of the old code recorded: the outer classes only.
    _rewrite(home, 1, '["sklearn.ensemble._gb.GradientBoostingClassifier"]', 1)
    with Registry(home) as reg, pytest.raises(UnsafeArtifact, match="inventory"):
        reg.load("gb:1", safe=True)
    _rewrite(home, 1, '["sklearn.ensemble._gb.GradientBoostingClassifier"]', None)  # as the migration leaves it
    with Registry(home) as reg:
        assert not reg.get("gb:1").imports_scanned
        assert (reg.load("gb:1", safe=True).predict(X) == model.predict(X)).all()  # the policy alone decides


def test_with_a_key_clearing_the_flag_does_not_lift_the_check(home: Path) -> None:
    key = "a signing key of at least sixteen bytes"
    with Registry(home, signing_key=key) as reg:
        reg.register("m", [1, 2, 3], format="pickle")
    _rewrite(home, 1, '["builtins.list"]', None)
    with Registry(home, signing_key=key) as reg:
        with pytest.raises(UntrustedArtifact):
            reg.load("m", safe=True)  # the v2 signature covers the inventory, and v2 means scanned
        assert "signature_mismatch" in {problem.kind for problem in reg.verify().problems}
