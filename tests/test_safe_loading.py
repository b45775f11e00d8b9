"""Safe loading: an allow-list for pickle and joblib, skops for untrusted artifacts, signatures."""

from __future__ import annotations

import functools
import importlib
import os
import runpy
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import Registry, UnsafeArtifact, UntrustedArtifact, UntrustedTypes
from tests.conftest import blob_files

FORMATS = ["joblib", "pickle"]


class Payload:
    """Unpickling calls ``func(*args)``: what an attacker would put in a model file."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.func, self.args)


def payloads(mark: Path) -> dict[str, tuple[Any, str]]:
    script = mark.with_suffix(".py")
    script.write_text(f"open({str(mark)!r}, 'w').write('ran')\n")
    return {
        "os.system": (Payload(os.system, f"touch {mark}"), "system"),
        "subprocess": (Payload(subprocess.call, ["touch", str(mark)]), "subprocess.call"),
        "eval": (Payload(eval, f"open({str(mark)!r}, 'w').write('ran')"), "builtins.eval"),
        "exec": (Payload(exec, f"open({str(mark)!r}, 'w').write('ran')"), "builtins.exec"),
        "importlib": (Payload(importlib.import_module, "antigravity"), "importlib.import_module"),
        "runpy": (Payload(runpy.run_path, str(script)), "runpy.run_path"),
        # functools.partial is admitted around check_array only: the refusal names what it wraps
        "partial": (Payload(functools.partial(os.system, f"touch {mark}")), "system"),
        "getattr": (Payload(getattr, Path(mark), "write_text"), "builtins.getattr"),
        "memmap": (Payload(np.memmap, str(mark), np.uint8, "w+", 0, (1,)), "numpy.memmap"),
    }


@pytest.fixture(scope="module")
def estimators() -> dict[str, Any]:
    from scipy.sparse import csr_matrix
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]  # object arrays: nested streams
    return {
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, labels),
        "hist-gb": HistGradientBoostingClassifier(max_iter=5).fit(X, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y),
        "kd-tree": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
        "tfidf": TfidfVectorizer().fit(["alpha beta gamma", "beta gamma delta"]),
        "sparse": {"X": csr_matrix(np.eye(3)), "rng": np.random.default_rng(0), "scale": np.float32(2)},
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_common_models_load_safely_and_identically(reg: Registry, estimators: dict[str, Any], fmt: str) -> None:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    for name, model in estimators.items():
        reg.register(name, model, format=fmt)
        loaded = reg.load(name, safe=True)
        if hasattr(model, "predict"):
            assert np.array_equal(loaded.predict(X), model.predict(X)), name
        elif name == "tfidf":
            assert loaded.vocabulary_ == model.vocabulary_
        else:
            assert (loaded["X"] != model["X"]).nnz == 0 and loaded["scale"] == 2


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "kind", ["os.system", "subprocess", "eval", "exec", "importlib", "runpy", "partial", "getattr", "memmap"]
)
def test_hostile_payloads_never_run_in_safe_mode(reg: Registry, tmp_path: Path, fmt: str, kind: str) -> None:
    mark = tmp_path / "mark"
    payload, refused = payloads(mark)[kind]
    model = {"weights": np.arange(3.0), "hook": payload}
    mv = reg.register("evil", model, format=fmt)
    assert mv.imports and any(refused in name for name in mv.imports), mv.imports  # visible before any load
    with pytest.raises(UnsafeArtifact) as caught:
        reg.load("evil", safe=True)
    assert refused in caught.value.global_name and refused in str(caught.value)
    assert not mark.exists()


def test_a_payload_hidden_in_a_joblib_object_array_is_refused(reg: Registry, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    hidden = np.array([1, Payload(os.system, f"touch {mark}")], dtype=object)
    reg.register("evil", {"classes_": hidden}, format="joblib")
    with pytest.raises(UnsafeArtifact, match="system"):
        reg.load("evil", safe=True)
    assert not mark.exists()


def test_the_allow_list_decides_before_importing(reg: Registry, tmp_path: Path) -> None:
    """A module outside the allow-list is never imported: importing one already runs its code."""
    import sys

    module = tmp_path / "side_effect_module.py"
    module.write_text(f"open({str(tmp_path / 'imported')!r}, 'w').write('x')\nclass Thing:\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import side_effect_module  # type: ignore[import-not-found]

        reg.register("m", side_effect_module.Thing(), format="pickle")
        (tmp_path / "imported").unlink()
        del sys.modules["side_effect_module"]
        with pytest.raises(UnsafeArtifact, match="side_effect_module.Thing"):
            reg.load("m", safe=True)
        assert not (tmp_path / "imported").exists()
        loaded = reg.load("m", safe=True, trusted=["side_effect_module.Thing"])
        assert type(loaded).__name__ == "Thing"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("side_effect_module", None)


def test_imports_are_recorded_for_audit(reg: Registry, estimators: dict[str, Any]) -> None:
    mv = reg.register("forest", estimators["forest"])
    assert "sklearn.ensemble._forest.RandomForestClassifier" in mv.imports
    assert "sklearn.tree._tree.Tree" in mv.imports
    assert reg.get("forest").imports == mv.imports
    assert list(mv.imports) == sorted(mv.imports)


@pytest.mark.parametrize("bad", ["sklearn.Thing", [1], None])
def test_trusted_must_be_a_list_of_names(reg: Registry, bad) -> None:
    reg.register("m", [1], format="pickle")
    if bad is None:
        assert reg.load("m", trusted=bad) == [1]
        return
    with pytest.raises(ValueError, match="trusted"):
        reg.load("m", trusted=bad)


# -- skops ---------------------------------------------------------------------


def test_skops_round_trip_and_untrusted_types(reg: Registry, estimators: dict[str, Any]) -> None:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    pipeline = estimators["pipeline"]
    reg.register("pipe", pipeline, format="skops")
    assert np.array_equal(reg.load("pipe").predict(X), pipeline.predict(X))
    forest = estimators["forest"]
    mv = reg.register("forest", forest, format="skops")
    assert "sklearn.tree._tree.Tree" in mv.imports  # the types a loader must trust
    with pytest.raises(UntrustedTypes) as caught:
        reg.load("forest")
    assert "sklearn.tree._tree.Tree" in caught.value.types and "trusted=" in str(caught.value)
    loaded = reg.load("forest", trusted=list(caught.value.types))
    assert np.array_equal(loaded.predict(X), forest.predict(X))


def test_skops_never_runs_a_payload(reg: Registry, tmp_path: Path) -> None:
    from registry import SerializationError

    mark = tmp_path / "mark"
    with pytest.raises((SerializationError, UntrustedTypes)):
        reg.register("evil", Payload(os.system, f"touch {mark}"), format="skops")
        reg.load("evil")
    assert not mark.exists()


# -- signatures ----------------------------------------------------------------

KEY = "a-very-secret-signing-key-of-32-bytes"


@pytest.fixture
def signed(home: Path) -> Registry:
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle")
        reg.register("m", {"v": 2}, format="pickle")
        yield reg


def test_signed_versions_load_and_carry_a_signature(signed: Registry) -> None:
    assert signed.load("m:1") == {"v": 1}
    signature = signed.get("m:1").hmac
    assert signature.startswith("v4:") and len(signature) <= 64  # fits the column v1 signatures had


def test_a_version_repointed_in_the_catalog_is_refused(signed: Registry, home: Path) -> None:
    """The attacker edits the catalog so m:1 serves m:2's (valid, intact) bytes."""
    two = signed.get("m:2")
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("UPDATE versions SET blob_digest = ?, size = ? WHERE version = 1", (two.digest, two.size))
    with pytest.raises(UntrustedArtifact, match="m:1"):
        signed.load("m:1")


def test_a_blob_replaced_together_with_its_checksum_is_refused(signed: Registry, home: Path, tmp_path: Path) -> None:
    """The attacker writes new bytes to the store and the matching checksum to the catalog."""
    import hashlib
    import pickle

    mark = tmp_path / "mark"
    forged = pickle.dumps(Payload(os.system, f"touch {mark}"))
    digest = hashlib.sha256(forged).hexdigest()
    blob = home / "blobs" / "sha256" / digest[:2] / digest[2:]
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(forged)
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        # The fast digest goes too (a stale BLAKE3 alone would refuse the load, keyed or not).
        db.execute(
            "UPDATE versions SET blob_digest = ?, size = ?, blake3 = NULL WHERE version = 2", (digest, len(forged))
        )
    with pytest.raises(UntrustedArtifact):
        signed.load("m:2")
    assert not mark.exists()
    with Registry(home) as unsigned:  # without the key, the forgery verifies: the key is what protects
        unsigned.load("m:2")
    assert mark.exists()


def test_unsigned_versions_and_wrong_keys_are_refused(signed: Registry, home: Path, monkeypatch) -> None:
    """A keyless write leaves the model unsealed: refused until someone with the key adopts its state."""
    with Registry(home) as plain:
        plain.register("m", {"v": 3}, format="pickle")
        assert plain.load("m:3") == {"v": 3}
    with pytest.raises(UntrustedArtifact, match="changed by a client without the signing key.*modelshelf seal m"):
        signed.load("m:1")
    signed.seal("m")
    assert signed.load("m:1") == {"v": 1}
    with pytest.raises(UntrustedArtifact, match="no signature"):
        signed.load("m:3")
    with Registry(home, signing_key=KEY.upper()) as other:
        with pytest.raises(UntrustedArtifact, match="does not verify under this signing key"):
            other.load("m:1")
    monkeypatch.setenv("MODELSHELF_SIGNING_KEY", KEY)
    with Registry(home) as from_env:
        assert from_env.load("m:1") == {"v": 1}
        with pytest.raises(UntrustedArtifact):
            from_env.load("m:3")


def test_a_short_signing_key_is_refused(home: Path) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Registry(home, signing_key="short")
    assert blob_files(home) == []
