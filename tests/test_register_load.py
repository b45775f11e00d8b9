"""Register → load round trips: latest, pinned, alias, references, formats, metadata."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from registry import ModelNotFound, ModelVersion, Registry, RegistryError, VersionNotFound
from tests.conftest import blob_files, temp_files


def test_versions_count_from_one_per_name(reg: Registry, knn) -> None:
    assert [reg.register("a", knn).version for _ in range(3)] == [1, 2, 3]
    assert reg.register("b", knn).version == 1
    assert reg.models() == ["a", "b"]


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_fitted_pipeline_round_trip_predicts_identically(reg: Registry, pipeline, iris, fmt: str) -> None:
    X, _ = iris
    mv = reg.register("iris-pipe", pipeline, format=fmt)
    loaded = reg.load("iris-pipe")
    assert loaded is not pipeline
    assert np.array_equal(loaded.predict(X), pipeline.predict(X))
    assert np.array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    assert mv.format == fmt


def test_any_picklable_object_round_trips(reg: Registry) -> None:
    obj = {"weights": np.arange(10.0), "labels": ["a", "b"], "nested": {"x": (1, 2)}}
    reg.register("plain", obj, format="pickle")
    loaded = reg.load("plain")
    assert np.array_equal(loaded["weights"], obj["weights"]) and loaded["nested"] == {"x": (1, 2)}


def test_latest_pinned_alias_and_reference_forms_agree(reg: Registry, iris) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    models = {k: KNeighborsClassifier(n_neighbors=k).fit(X, y) for k in (1, 5, 15)}
    for k, model in models.items():
        reg.register("iris-knn", model, alias="production" if k == 5 else None)

    def k_of(obj) -> int:
        return obj.n_neighbors

    assert k_of(reg.load("iris-knn")) == 15
    assert k_of(reg.load("iris-knn:latest")) == 15
    assert k_of(reg.load("iris-knn", version=1)) == 1
    assert k_of(reg.load("iris-knn:1")) == 1
    assert k_of(reg.load("iris-knn", alias="production")) == 5
    assert k_of(reg.load("iris-knn@production")) == 5
    assert reg.get("iris-knn@production").version == 2
    assert reg.get("iris-knn", version=3) == reg.latest("iris-knn") == reg.get("iris-knn:3")


def test_model_version_records_everything(reg: Registry, knn) -> None:
    before = datetime.now(UTC)
    mv = reg.register(
        "iris-knn", knn, metrics={"accuracy": 0.97}, tags={"team": "cv"}, description="kNN on iris", alias="staging"
    )
    assert isinstance(mv, ModelVersion)
    assert mv.name == "iris-knn" and mv.version == 1 and mv.ref == "iris-knn:1"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", mv.checksum)
    assert mv.format == "joblib"
    assert mv.params["n_neighbors"] == 3 and mv.params["weights"] == "uniform"
    assert mv.metrics == {"accuracy": 0.97}
    assert mv.tags == {"team": "cv"}
    assert mv.description == "kNN on iris"
    assert mv.aliases == ("staging",)
    assert mv.created_at.tzinfo is not None and mv.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= mv.created_at <= datetime.now(UTC)
    for key in ("python", "scikit-learn", "numpy", "joblib", "platform"):
        assert mv.environment[key], key
    # What get() reads back from the catalog equals what register() returned.
    assert reg.get("iris-knn:1") == mv


def test_checksum_and_size_describe_the_stored_bytes(reg: Registry, home: Path, knn) -> None:
    mv = reg.register("iris-knn", knn)
    (blob,) = blob_files(home)
    data = blob.read_bytes()
    assert mv.size == len(data)
    assert mv.checksum == "sha256:" + hashlib.sha256(data).hexdigest()
    assert blob.name == mv.digest[2:] and blob.parent.name == mv.digest[:2]
    assert temp_files(home) == []


def test_identical_artifacts_are_stored_once(reg: Registry, home: Path, knn) -> None:
    first = reg.register("a", knn)
    second = reg.register("b", knn, tags={"copy": "yes"})
    assert first.checksum == second.checksum
    assert len(blob_files(home)) == 1
    assert reg.load("b").n_neighbors == 3


def test_blobs_are_read_only_after_publishing(reg: Registry, home: Path, knn) -> None:
    reg.register("a", knn)
    (blob,) = blob_files(home)
    assert blob.stat().st_mode & 0o222 == 0


def test_versions_are_ascending_and_complete(reg: Registry, knn) -> None:
    for i in range(4):
        reg.register("m", knn, metrics={"i": i})
    assert [mv.version for mv in reg.versions("m")] == [1, 2, 3, 4]
    assert [mv.metrics["i"] for mv in reg.versions("m")] == [0.0, 1.0, 2.0, 3.0]


def test_unknown_model_version_and_alias(reg: Registry, knn) -> None:
    with pytest.raises(ModelNotFound, match="'nope'"):
        reg.load("nope")
    with pytest.raises(ModelNotFound):
        reg.versions("nope")
    reg.register("m", knn)
    with pytest.raises(VersionNotFound, match="version 7 of model 'm'"):
        reg.get("m:7")
    from registry import AliasNotFound

    with pytest.raises(AliasNotFound, match="production"):
        reg.load("m@production")
    with pytest.raises(LookupError):  # every not-found error is also a LookupError
        reg.get("m", alias="production")


def test_another_process_sees_what_was_registered(home: Path, knn, iris) -> None:
    import subprocess
    import sys

    with Registry(home) as reg:
        reg.register("iris-knn", knn, alias="production")
    X, _ = iris
    code = (
        "import sys, numpy as np; from registry import Registry\n"
        "from sklearn.datasets import load_iris\n"
        "X, _ = load_iris(return_X_y=True)\n"
        "m = Registry(sys.argv[1]).load('iris-knn@production')\n"
        "np.save(sys.stdout.buffer, m.predict(X))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, check=True).stdout
    import io

    assert np.array_equal(np.load(io.BytesIO(out)), knn.predict(X))


def test_registry_is_a_context_manager_and_close_is_idempotent(home: Path, knn) -> None:
    with Registry(home) as reg:
        reg.register("m", knn)
    reg.close()
    with Registry(home) as again:
        assert again.latest("m").version == 1


def test_catalog_and_store_can_live_apart(tmp_path: Path, knn) -> None:
    catalog = f"sqlite:///{tmp_path / 'meta' / 'cat.db'}"
    with Registry(catalog=catalog, store=tmp_path / "blobs") as reg:
        mv = reg.register("m", knn)
        assert reg.load("m").n_neighbors == 3
    assert (tmp_path / "meta" / "cat.db").exists()
    assert (tmp_path / "blobs" / "blobs" / "sha256" / mv.digest[:2] / mv.digest[2:]).exists()


def test_default_home_is_env_then_working_directory(tmp_path: Path, monkeypatch, knn) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELSHELF_HOME", raising=False)
    monkeypatch.delenv("MODELSHELF_CATALOG", raising=False)
    monkeypatch.delenv("MODELSHELF_STORE", raising=False)
    with Registry() as reg:
        reg.register("m", knn)
    assert (tmp_path / ".modelshelf" / "catalog.db").exists()
    monkeypatch.setenv("MODELSHELF_HOME", str(tmp_path / "elsewhere"))
    with Registry() as reg:
        assert reg.models() == []
    assert (tmp_path / "elsewhere" / "catalog.db").exists()


@pytest.mark.parametrize("dirname", ["a?mode=ro", "c%20d", "with space", "ünï"])
def test_every_part_of_a_registry_stays_in_its_directory(tmp_path: Path, dirname: str, knn) -> None:
    home = tmp_path / dirname
    with Registry(home) as reg:
        reg.register("m", knn)
        assert reg.load("m").n_neighbors == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [dirname]
    assert (home / "catalog.db").exists() and len(blob_files(home)) == 1


def test_an_explicit_home_ignores_the_catalog_and_store_variables(tmp_path: Path, monkeypatch, knn) -> None:
    monkeypatch.setenv("MODELSHELF_CATALOG", f"sqlite:///{tmp_path / 'team.db'}")
    monkeypatch.setenv("MODELSHELF_STORE", str(tmp_path / "team-blobs"))
    with Registry(tmp_path / "projA") as a, Registry(tmp_path / "projB") as b:
        a.register("m", knn)
        with pytest.raises(ModelNotFound):
            b.get("m")
    assert not (tmp_path / "team.db").exists() and not (tmp_path / "team-blobs").exists()
    monkeypatch.chdir(tmp_path)
    with Registry() as team:  # no home: the variables apply
        team.register("m", knn)
    assert (tmp_path / "team.db").exists() and (tmp_path / "team-blobs").exists()


@pytest.mark.parametrize("home", ["~no-such-user-here/x", "x" * 300, "a\x00b"])
def test_unusable_homes_are_clear_errors(tmp_path: Path, monkeypatch, home: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises((ValueError, RegistryError)) as caught:
        Registry(home)
    assert len(str(caught.value)) > 20  # a sentence, not a bare errno
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "not a url", "nosuchdb://x"])
def test_unusable_catalog_urls_are_refused(tmp_path: Path, url: str) -> None:
    from registry import CatalogError

    with pytest.raises(CatalogError):
        Registry(catalog=url, store=tmp_path / "s")


def test_every_way_in_returns_what_get_reads_back(reg: Registry, knn, tmp_path: Path) -> None:
    """register, register_file and a bundle import share one write path and one row→version mapping."""
    first = reg.register("iris-knn", knn, metrics={"accuracy": 0.9}, alias="staging", data=np.zeros((3, 4)))
    artifact = tmp_path / "model.joblib"
    reg.fetch(first.ref, artifact)
    second = reg.register_file(
        "iris-knn", artifact, metrics={"accuracy": 0.8}, tags={"source": "file"}, parent=first.ref, check="unsafe"
    )
    assert reg.get(first.ref) == first
    assert reg.get(second.ref) == second
    assert second.lineage is not None and second.lineage.parent == "iris-knn:1"
    assert second.input_signature is not None and second.params == first.params
    reg.export_bundle([second.ref], tmp_path / "b.tar")
    [imported] = reg.import_bundle(tmp_path / "b.tar", allow_unsigned=True)
    assert imported.created and imported.target == "iris-knn:3"
    copy = reg.get(imported.target)
    assert copy.checksum == second.checksum and copy.metrics == {"accuracy": 0.8}
    assert copy.tags["modelshelf.imported-from"].startswith("iris-knn:2 ")
