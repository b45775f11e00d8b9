"""v3 version signatures bind the recorded environment and input signature, which gates and input checks trust."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from registry import PromotionRefused, Registry, UntrustedArtifact, environment_matches
from registry.trust import signing
from tests.test_backends import backend  # noqa: F401  (the fixture, shared)

KEY = "signature-v3-test-key-of-32-bytes!"


@pytest.fixture
def keyed(home: Path, iris: tuple[Any, Any]) -> Path:
    X, y = iris
    with Registry(home, signing_key=KEY) as reg:
        for _ in range(2):
            reg.register("lr", LogisticRegression(max_iter=500).fit(X, y), data=(X, y))
        reg.set_alias("lr", "production", 1)
    return home


def _sql(home: Path, statement: str, *args: Any) -> None:
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute(statement, args)


def test_new_versions_carry_a_signature_that_covers_the_environment(keyed: Path) -> None:
    """v3 and its successor v4 (which adds the BLAKE3 fast digest) both bind the environment and input signature."""
    with Registry(keyed, signing_key=KEY) as reg:
        mv = reg.get("lr:2")
        assert mv.hmac is not None and mv.hmac.startswith("v4:") and signing.covers_environment(mv.hmac)
        assert signing.check_model_version(KEY.encode(), mv) == "valid"


def test_an_environment_rewritten_by_sql_to_pass_a_gate_is_refused(keyed: Path) -> None:
    with Registry(keyed, signing_key=KEY) as reg:
        recorded = reg.get("lr:2").environment
        gate = environment_matches(scikit_learn="0.24")  # what the rewritten row will claim
        with pytest.raises(PromotionRefused):
            reg.promote("lr", 2, "production", require=[gate])
    forged = {**recorded, "scikit-learn": "0.24.2"}
    _sql(keyed, "UPDATE versions SET environment = ? WHERE version = 2", json.dumps(forged))
    with Registry(keyed, signing_key=KEY) as reg:
        with pytest.raises(UntrustedArtifact, match="lr:2"):
            reg.promote("lr", 2, "production", require=[gate])
        assert reg.get("lr@production").version == 1
    with Registry(keyed) as unkeyed:  # without the key the catalog's word is all there is
        assert unkeyed.get("lr:2").environment["scikit-learn"] == "0.24.2"


def test_an_input_signature_rewritten_by_sql_is_refused(keyed: Path) -> None:
    with sqlite3.connect(keyed / "catalog.db") as db:
        (text,) = db.execute("SELECT input_signature FROM versions WHERE version = 2").fetchone()
    loosened = json.loads(text)
    loosened["n_features"] = 5  # a server checking inputs against it would accept five columns
    _sql(keyed, "UPDATE versions SET input_signature = ? WHERE version = 2", json.dumps(loosened))
    with Registry(keyed, signing_key=KEY) as reg, pytest.raises(UntrustedArtifact, match="lr:2"):
        reg.load("lr:2", validate=True)


def test_a_v2_signature_from_before_still_loads(keyed: Path) -> None:
    with Registry(keyed, signing_key=KEY) as reg:
        mv = reg.get("lr:1")
    older = signing.sign_version(
        KEY.encode(), mv.name, mv.version, mv.format, mv.checksum, mv.size, mv.imports, mv.params, generation=2
    )
    _sql(keyed, "UPDATE versions SET signature = ? WHERE version = 1", older)
    with Registry(keyed, signing_key=KEY) as reg:
        assert reg.load("lr:1", check=False) is not None
        assert not signing.covers_environment(reg.get("lr:1").hmac)
        reg.delete_alias("lr", "production")
        sklearn_version = reg.get("lr:1").environment["scikit-learn"]
        with pytest.raises(PromotionRefused, match="not covered by a signature"):
            reg.promote("lr", 1, "production", require=[environment_matches(scikit_learn=sklearn_version)])
        moved = reg.promote("lr", 2, "production", require=[environment_matches(scikit_learn=sklearn_version)])
        assert moved.version == 2  # a v3 version passes the same gate


@pytest.mark.parametrize("backend", ["sqlite+local", "postgresql+s3", "mariadb+local"], indirect=True)
def test_the_signed_fields_read_back_as_they_were_signed_on_every_catalog(
    backend: tuple[str, str],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    example = pd.DataFrame({"température": [0.1, 1e20, -0.0], "größe": np.array([2**62, -(2**62), 7])})
    model = LinearRegression().fit(example, [1.0, 2.0, 3.0])
    params = {"alpha": 0.1, "huge": 1e20, "negative_zero": -0.0, "big": 2**62, "city": "Zürich"}
    with Registry(catalog=backend[0], store=backend[1], signing_key=KEY) as reg:
        mv = reg.register("awkward", model, params=params, input_example=example)
    with Registry(catalog=backend[0], store=backend[1], signing_key=KEY) as reg:  # a fresh reader
        back = reg.get("awkward:1")
        assert back.hmac == mv.hmac and signing.check_model_version(KEY.encode(), back) == "valid"
        assert back.input_signature == mv.input_signature and back.environment == mv.environment
        assert reg.load("awkward:1", validate=True).predict(example).shape == (3,)
