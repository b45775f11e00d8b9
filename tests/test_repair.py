"""repair sets damaged bytes aside, marks their versions, and heals them when the same bytes come back."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import CorruptedArtifact, DamagedVersion, Registry
from registry.cli import cli
from tests.cli_helpers import run_cli
from tests.sql_trace import traced_statements

KEY = "repair-test-signing-key-0123456789"
OBJECT = {"weights": list(range(50))}


@pytest.fixture
def shared(reg: Registry) -> Registry:
    """a:1 and b:1 share their bytes; c:1 has its own."""
    reg.register("a", OBJECT, format="pickle")
    reg.register("b", OBJECT, format="pickle")
    reg.register("c", {"other": True}, format="pickle")
    return reg


def flip(reg: Registry, digest: str) -> bytes:
    path = reg._store.path_of(digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    return bytes(data)


def quarantine_files(home: Path) -> list[Path]:
    folder = home / "quarantine"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_damaged_blob_is_quarantined_its_versions_marked_and_a_re_register_heals_them(
    shared: Registry, home: Path
) -> None:
    digest = shared.get("a").digest
    damaged = flip(shared, digest)
    assert shared.verify().problems[0].kind == "checksum_mismatch"

    report = shared.repair()
    assert [blob for blob, _ in report.quarantined] == [f"sha256:{digest}"]
    assert [ref for ref, _ in report.marked] == ["a:1", "b:1"] and not report.ok
    assert "hashes to sha256:" in report.marked[0][1]
    [kept] = quarantine_files(home)
    assert kept.read_bytes() == damaged and kept.name.startswith(digest)  # nothing is deleted
    assert not shared._store.path_of(digest).exists()

    with pytest.raises(DamagedVersion, match=r"a:1 is marked damaged.*repair --from OTHER_STORE") as caught:
        shared.load("a")
    assert isinstance(caught.value, CorruptedArtifact) and caught.value.ref == "a:1"
    assert shared.load("c") == {"other": True}  # the others are untouched
    verdict = shared.verify()
    assert not verdict.ok and sorted((p.kind, p.ref) for p in verdict.problems) == [
        ("damaged", "a:1"),
        ("damaged", "b:1"),
    ]
    assert [e.action for e in shared.events("a")][-1] == "version.damage"

    assert shared.register("d", OBJECT, format="pickle").digest == digest  # the same bytes come back
    assert shared.load("a") == OBJECT and shared.load("b") == OBJECT
    assert shared.verify().ok and shared._catalog.damaged_blobs() == []
    assert shared.repair().marked == [] and quarantine_files(home) == [kept]  # repair again: nothing to do


def test_dry_run_lists_and_changes_nothing(shared: Registry, home: Path) -> None:
    digest = shared.get("c").digest
    path = shared._store.path_of(digest)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1])
    report = shared.repair(dry_run=True)
    assert report.dry_run and [blob for blob, _ in report.quarantined] == [f"sha256:{digest}"]
    assert report.marked == [
        ("c:1", f"blob sha256:{digest} has {path.stat().st_size} bytes, expected {path.stat().st_size + 1}")
    ]
    assert path.exists() and quarantine_files(home) == [] and shared._catalog.damaged_blobs() == []
    assert [e.action for e in shared.events("c")] == ["register"]


def test_a_missing_blob_is_marked_and_healed_from_another_store(shared: Registry, home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    with Registry(other) as backup:
        backup.register("copy", OBJECT, format="pickle")
    digest = shared.get("a").digest
    shared._store.path_of(digest).unlink()
    report = shared.repair()
    assert report.quarantined == [] and [ref for ref, _ in report.marked] == ["a:1", "b:1"]
    assert report.marked[0][1].endswith("is missing")
    with pytest.raises(DamagedVersion, match="is missing"):
        shared.load("b")

    preview = shared.repair(dry_run=True, source=other)
    assert [ref for ref, _ in preview.healed] == ["a:1", "b:1"] and shared._catalog.damaged_blobs() != []
    healed = shared.repair(source=other)
    assert [ref for ref, _ in healed.healed] == ["a:1", "b:1"] and healed.ok
    assert "verified" in healed.healed[0][1]
    assert shared.load("a") == OBJECT and shared.verify().ok
    assert [e.action for e in shared.events("b")][-2:] == ["version.damage", "version.heal"]
    log = run_cli(home, "log", "b").output.splitlines()
    assert "version.damage" in log[-2] and f"sha256:{digest[:12]} is missing" in log[-2]
    assert "version.heal" in log[-1] and "healed" in log[-1]


def test_a_store_without_the_bytes_leaves_the_mark_and_says_so(shared: Registry, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "blobs").mkdir(parents=True)
    shared._store.path_of(shared.get("c").digest).unlink()
    report = shared.repair(source=empty)
    assert not report.ok and [ref for ref, _ in report.unhealed] == ["c:1"]
    assert f"not found intact in {empty}" in report.unhealed[0][1]
    with pytest.raises(DamagedVersion):
        shared.load("c")


def test_a_source_that_is_not_a_store_is_a_clear_error_and_changes_nothing(shared: Registry, tmp_path: Path) -> None:
    shared._store.path_of(shared.get("c").digest).unlink()
    with pytest.raises(ValueError, match="no blob store there"):
        shared.repair(source=tmp_path / "typo")
    assert shared._catalog.damaged_blobs() == []
    result = run_cli(shared._store.root, "repair", "--from", str(tmp_path / "typo"))
    assert result.exit_code == 2 and "no blob store there" in result.output


def test_bytes_restored_in_place_heal_on_the_next_repair(shared: Registry, home: Path) -> None:
    digest = shared.get("c").digest
    path = shared._store.path_of(digest)
    good = path.read_bytes()
    path.unlink()
    shared.repair()
    path.write_bytes(good)  # restored from a backup by hand
    report = shared.repair()
    assert report.healed == [("c:1", "its bytes are back in the store")] and report.ok
    assert shared.verify().ok


def test_other_bad_bytes_under_a_marked_blob_are_quarantined_too_before_a_heal(
    shared: Registry, home: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    with Registry(other) as backup:
        backup.register("copy", OBJECT, format="pickle")
    digest = shared.get("a").digest
    path = shared._store.path_of(digest)
    path.unlink()
    shared.repair()  # marked missing
    path.write_bytes(b"something else entirely")  # then other bytes turn up under its name
    report = shared.repair(source=other)
    assert [blob for blob, _ in report.quarantined] == [f"sha256:{digest}"]
    [kept] = quarantine_files(home)
    assert kept.read_bytes() == b"something else entirely"  # set aside, never overwritten
    assert [ref for ref, _ in report.healed] == ["a:1", "b:1"] and report.ok
    assert shared.load("a") == OBJECT and shared.verify().ok


def test_a_symlink_under_a_blob_name_is_quarantined_as_a_link_and_its_target_untouched(
    shared: Registry, home: Path, tmp_path: Path
) -> None:
    digest = shared.get("c").digest
    path = shared._store.path_of(digest)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(outside)
    report = shared.repair()
    assert report.marked == [("c:1", f"blob sha256:{digest} is not a regular file (a link, a directory or a device)")]
    [moved] = quarantine_files(home)
    assert moved.is_symlink() and outside.exists() and not os.path.lexists(path)


def test_a_missing_blob_that_was_never_marked_keeps_the_plain_error(shared: Registry) -> None:
    shared._store.path_of(shared.get("c").digest).unlink()
    with pytest.raises(CorruptedArtifact, match="restore the store from a backup") as caught:
        shared.load("c")
    assert not isinstance(caught.value, DamagedVersion)


def test_importing_a_bundle_with_the_bytes_heals(shared: Registry, tmp_path: Path) -> None:
    with Registry(tmp_path / "elsewhere") as elsewhere:
        elsewhere.register("same", OBJECT, format="pickle")
        elsewhere.export_bundle(["same:1"], tmp_path / "b.tar")
    shared._store.path_of(shared.get("a").digest).unlink()
    shared.repair()
    shared.import_bundle(tmp_path / "b.tar", allow_unsigned=True)
    assert shared.load("a") == OBJECT and shared.verify().ok


def test_with_a_signing_key_the_trail_and_seals_keep_verifying(tmp_path: Path) -> None:
    home = tmp_path / "keyed"
    with Registry(home, signing_key=KEY) as reg:
        reg.register("a", OBJECT, format="pickle", alias="production")
        reg.register("b", {"x": 1}, format="pickle")
        reg.seal("a")
        digest = reg.get("a").digest
        flip(reg, digest)
        assert [ref for ref, _ in reg.repair().marked] == ["a:1"]
        assert sorted(p.kind for p in reg.verify().problems) == ["damaged"]
        other = tmp_path / "other"
        with Registry(other) as backup:
            backup.register("copy", OBJECT, format="pickle")
        assert reg.repair(source=other).ok
        report = reg.verify()
        assert report.ok and report.problems == [], report.problems
        assert reg.load("a@production") == OBJECT


def test_gc_never_collects_quarantined_files_and_says_what_it_kept(shared: Registry, home: Path) -> None:
    flip(shared, shared.get("c").digest)
    shared.repair()
    [moved] = quarantine_files(home)
    then = time.time() - 10 * 86400
    os.utime(moved, (then, then), follow_symlinks=False)
    shared.delete_version("c", 1)  # its blob is gone already; nothing else to free
    young = home / "tmp" / "1-young.tmp"
    young.write_bytes(b"x")
    report = shared.gc(dry_run=False, min_age=3600)
    assert moved.exists() and str(moved) not in report.removed
    assert (str(young), report.kept[-1][1]) == report.kept[-1]
    assert report.kept[-1][1].startswith("younger than min_age (60 min): ") and report.kept[-1][1].endswith("s old")


def test_the_repair_command_text_json_and_exit_codes(shared: Registry, home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    digest = shared.get("a").digest
    flip(shared, digest)
    result = runner.invoke(cli, ["--home", str(home), "repair", "--dry-run"])
    assert result.exit_code == 3, result.output
    assert "dry run: 1 blob quarantined, 2 versions marked, 0 healed, 2 still damaged" in result.output
    assert quarantine_files(home) == []
    result = runner.invoke(cli, ["--home", str(home), "--json", "repair"])
    assert result.exit_code == 3
    found = json.loads(result.stdout)
    assert found["ok"] is False and found["quarantined"][0]["blob"] == f"sha256:{digest}"
    assert [m["ref"] for m in found["marked"]] == ["a:1", "b:1"]
    result = runner.invoke(cli, ["--home", str(home), "fetch", "a", "-o", str(tmp_path / "a.pkl")])
    assert result.exit_code == 3 and "a:1 is marked damaged" in result.output and not (tmp_path / "a.pkl").exists()
    result = runner.invoke(cli, ["--home", str(home), "verify", "--json"])
    assert result.exit_code == 3 and {p["kind"] for p in json.loads(result.stdout)["problems"]} == {"damaged"}
    other = tmp_path / "other"
    with Registry(other) as backup:
        backup.register("copy", OBJECT, format="pickle")
    result = runner.invoke(cli, ["--home", str(home), "repair", "--from", str(other)])
    assert result.exit_code == 0, result.output
    assert (
        "healed a:1" in result.output
        and "0 blobs quarantined, 0 versions marked, 2 healed, 0 still damaged" in result.output
    )
    assert runner.invoke(cli, ["--home", str(home), "verify"]).exit_code == 0


def test_gc_prints_what_it_kept(shared: Registry, home: Path) -> None:
    young = home / "tmp" / "2-young.tmp"
    young.write_bytes(b"xy")
    result = run_cli(home, "gc", "--dry-run")
    assert result.exit_code == 0 and f"kept {young}: younger than min_age (60 min)" in result.output
    result = run_cli(home, "gc", "--dry-run", "--json")
    assert json.loads(result.stdout)["kept"][0]["item"] == str(young)


def test_on_an_object_store_damage_is_copied_to_a_quarantine_key_and_healed_from_a_second_bucket(
    s3: str, tmp_path: Path
) -> None:
    from tests.servers import fresh_bucket

    bucket, spare = fresh_bucket(), fresh_bucket()
    with Registry(catalog=f"sqlite:///{tmp_path / 'spare.db'}", store=spare) as backup:
        backup.register("copy", OBJECT, format="pickle")
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=bucket) as reg:
        mv = reg.register("a", OBJECT, format="pickle")
        store = reg._store
        key = str(store.path_of(mv.digest))
        data = bytearray(store._fs.cat(key))
        data[-3] ^= 1
        store._fs.pipe(key, bytes(data))
        store.cache.delete(mv.digest)  # another machine: no verified copy of its own to heal from
        report = reg.repair()
        [(blob, where)] = report.quarantined
        assert blob == f"sha256:{mv.digest}" and where.startswith(f"{bucket}/quarantine/{mv.digest}.")
        assert report.healed == [] and not report.ok
        store._fs.invalidate_cache()
        assert store._fs.cat(where.removeprefix("s3://")) == bytes(data) and not store._fs.exists(key)
        with pytest.raises(DamagedVersion):
            reg.load("a")
        assert reg.repair(source=spare).ok
        store._fs.invalidate_cache()
        assert reg.load("a") == OBJECT and reg.verify().ok


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_marks_and_heals_on_server_catalogs_with_a_key(kind: str, tmp_path: Path) -> None:
    from tests.servers import fresh_database

    for url in fresh_database(kind):
        with Registry(catalog=url, store=tmp_path / "store", signing_key=KEY) as reg:
            reg.register("a", OBJECT, format="pickle", alias="production")
            reg.register("b", OBJECT, format="pickle")
            digest = reg.get("a").digest
            reg._store.path_of(digest).unlink()
            assert [ref for ref, _ in reg.repair().marked] == ["a:1", "b:1"]
            with pytest.raises(DamagedVersion):
                reg.load("a@production")
            assert {p.kind for p in reg.verify().problems} == {"damaged"}
            reg.register("c", OBJECT, format="pickle")
            assert reg.load("a@production") == OBJECT
            report = reg.verify()
            assert report.ok and report.problems == [], report.problems


def test_an_object_store_is_healed_from_the_machines_verified_cache(s3: str, tmp_path: Path) -> None:
    from tests.servers import fresh_bucket

    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=fresh_bucket()) as reg:
        mv = reg.register("a", OBJECT, format="pickle")  # the registering machine keeps a verified copy
        store = reg._store
        key = str(store.path_of(mv.digest))
        store._fs.rm(key)
        store._fs.invalidate_cache()
        report = reg.repair()
        assert report.marked == [("a:1", f"blob sha256:{mv.digest} is missing")]
        assert report.healed == [("a:1", f"copied from {store.cache.location}, verified")] and report.ok
        store._fs.invalidate_cache()
        assert store._fs.exists(key) and reg.verify().ok
        cached = store.cache.path_of(mv.digest)  # a rotten cached copy is never what heals
        cached.chmod(0o644)
        cached.write_bytes(cached.read_bytes()[:-1] + b"\0")
        store._fs.rm(key)
        store._fs.invalidate_cache()
        assert not reg.repair().ok


def test_a_healthy_load_asks_the_catalog_nothing_about_damage(shared: Registry) -> None:
    with traced_statements(shared) as statements:
        assert shared.load("a") == OBJECT
        assert statements and not [s for s in statements if "damage" in s]
        shared._store.path_of(shared.get("c").digest).unlink()
        with pytest.raises(CorruptedArtifact):
            shared.load("c")
        assert [s for s in statements if "damage" in s]  # only a failed read asks, to word its error
