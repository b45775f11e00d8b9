"""verify names each kind of damage for what it is, and one bad catalog row does not lose the whole report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import cli


@pytest.fixture
def populated(reg: Registry) -> Registry:
    reg.register("a", {"v": 1}, format="pickle")
    reg.register("a", {"v": 2}, format="pickle")
    reg.register("b", {"v": 3}, format="pickle")
    return reg


def kinds(report) -> list[tuple[str, str | None]]:
    return sorted((p.kind, p.ref) for p in report.problems)


def plant_digest(home: Path, ref_version: tuple[str, int], digest: str) -> None:
    """Point one version's row at ``digest`` by raw SQL, as a hand edit or a damaged catalog would."""
    name, version = ref_version
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(
            "UPDATE versions SET blob_digest = ? "
            "WHERE version = ? AND model_id = (SELECT id FROM models WHERE name = ?)",
            (digest, version, name),
        )


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64, ""])
@pytest.mark.parametrize("deep", [True, False])
def test_a_digest_that_is_not_64_hex_is_reported_and_the_rest_still_checked(
    populated: Registry, home: Path, bad: str, deep: bool
) -> None:
    plant_digest(home, ("a", 2), bad)
    path = populated._store.path_of(populated.get("b").digest)
    path.unlink()  # a second problem the report must not lose
    report = populated.verify(deep=deep)
    assert not report.ok
    assert kinds(report) == [("invalid_digest", "a:2"), ("missing_blob", "b:1")]
    detail = next(p.detail for p in report.problems if p.kind == "invalid_digest")
    assert "not 64 hex" in detail and repr(bad[:80]) in detail


def test_a_blob_of_another_size_is_a_size_mismatch_in_both_modes(populated: Registry) -> None:
    path = populated._store.path_of(populated.get("a:1").digest)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1])  # truncated
    for deep in (False, True):
        report = populated.verify(deep=deep)
        assert not report.ok and kinds(report) == [("size_mismatch", "a:1")]
        assert "bytes, expected" in report.problems[0].detail


def test_a_same_size_change_is_still_a_checksum_mismatch(populated: Registry) -> None:
    path = populated._store.path_of(populated.get("a:1").digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    assert kinds(populated.verify(deep=True)) == [("checksum_mismatch", "a:1")]


def test_a_blob_gone_between_the_size_and_the_hash_is_missing_not_a_checksum_mismatch(
    populated: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose size answer is stale (an object store's remembered listing) and whose read finds nothing."""
    store = populated._store
    digest = populated.get("a:1").digest
    size = store.size_of(digest)
    store.path_of(digest).unlink()
    monkeypatch.setattr(store, "size_of", lambda d: size if d == digest else type(store).size_of(store, d))
    assert kinds(populated.verify(deep=True)) == [("missing_blob", "a:1")]


def test_the_cli_reports_the_new_kinds_with_exit_3_and_in_json(populated: Registry, home: Path) -> None:
    plant_digest(home, ("a", 2), "not-a-digest")
    path = populated._store.path_of(populated.get("b").digest)
    path.chmod(0o644)
    path.write_bytes(b"short")
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "verify"])
    assert result.exit_code == 3
    assert "invalid_digest a:2" in result.output and "size_mismatch b:1" in result.output
    result = runner.invoke(cli, ["--home", str(home), "--json", "verify", "--quick"])
    assert result.exit_code == 3
    found = json.loads(result.stdout)
    assert found["ok"] is False
    assert sorted((p["kind"], p["ref"]) for p in found["problems"]) == [
        ("invalid_digest", "a:2"),
        ("size_mismatch", "b:1"),
    ]


def test_on_an_object_store_a_blob_deleted_behind_a_remembered_listing_is_missing_in_deep_mode(
    s3: str, tmp_path: Path
) -> None:
    """Issue 12's case: the listing verify takes makes s3fs remember sizes; another client then deletes the object."""
    import fsspec

    from tests.servers import fresh_bucket

    bucket = fresh_bucket()
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=bucket) as reg:
        mv = reg.register("a", {"v": 1}, format="pickle")
        assert reg.verify(deep=True).ok  # lists the bucket: s3fs now remembers what it holds
        other = fsspec.filesystem("s3", skip_instance_cache=True)
        other.rm(str(reg._store.path_of(mv.digest)))
        report = reg.verify(deep=True)
        # (the remembered listing also yields an orphan entry: the cache helper's part of issue 12)
        assert sorted((p.kind, p.ref) for p in report.problems if p.fatal) == [("missing_blob", "a:1")]
