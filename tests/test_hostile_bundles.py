"""Hostile bundles: each is one clear error, bounded memory and disk, and nothing recorded or stored.

The files are built by :mod:`tests.hostile_bundles` (real tars, sparse
members written by hand). Each is imported with ``allow_unsigned`` — the
path where an attacker's manifest is parsed at all — into a fresh registry
that must be left exactly as it was: no version, no audit event, no blob,
no temporary file.
"""

from __future__ import annotations

import shutil
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry import CorruptedArtifact, Registry, UntrustedBundle
from registry.bundles import checks as bundle_checks
from registry.bundles.checks import MAX_MANIFEST
from registry.errors import InvalidBundle
from registry.locations import CATALOG_FILE_NAME
from tests import hostile_bundles as hb
from tests.cli_helpers import run_cli
from tests.conftest import blob_files, temp_files
from tests.servers import fresh_database

GIB = 2**30


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, template_home: Path) -> Path:
    """An unsigned bundle of two versions, the second with a logged metric history.

    Exported once for the module: every test only reads it (a hostile variant is written to a file of its own).
    """
    folder = tmp_path_factory.mktemp("good")
    home = _fresh(folder / "source", template_home)
    with Registry(home) as reg:
        reg.register("churn", {"w": [1, 2, 3]}, format="pickle", metrics={"auc": 0.9}, tags={"team": "ds"})
        reg.register("churn", {"w": [4, 5, 6]}, format="pickle", metrics={"auc": 0.95})
        reg.log_metrics("churn", 2, {"auc": 0.96}, step=7)
        reg.export_bundle(["churn:1", "churn:2"], folder / "good.tar")
    return folder / "good.tar"


@pytest.fixture
def target(tmp_path: Path, template_home: Path) -> Path:
    return _fresh(tmp_path / "target", template_home)


def _fresh(home: Path, template_home: Path) -> Path:
    home.mkdir()
    shutil.copyfile(template_home / CATALOG_FILE_NAME, home / CATALOG_FILE_NAME)
    return home


def _assert_untouched(home: Path) -> None:
    with Registry(home) as reg:
        assert reg.models() == [] and reg.events() == []
    assert blob_files(home) == [] and temp_files(home) == []


def _entry(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """A manifest edit applied to the first version's entry."""
    return lambda manifest: change(manifest["versions"][0])


def _point(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return _entry(lambda entry: entry["history"][0].update(fields))


def _cut_inside_first_blob(good: Path, out: Path) -> Path:
    with tarfile.open(good) as tar:
        blob = next(m for m in tar.getmembers() if m.name.startswith("blobs/"))
    return hb.truncated(good, out, blob.offset_data + blob.size // 2)


def _cut_inside_a_header(good: Path, out: Path) -> Path:
    with tarfile.open(good) as tar:
        blob = next(m for m in tar.getmembers() if m.name.startswith("blobs/"))
    return hb.truncated(good, out, blob.offset + 100)


def _duplicate(manifest: dict[str, Any]) -> None:
    manifest["versions"].append(dict(manifest["versions"][0]))


#: name → (build the file from the good bundle into ``out``, the error, a fragment of its message)
CASES: dict[str, tuple[Callable[[Path, Path], Path], type[Exception], str]] = {
    "empty file": (lambda g, o: hb.text_file(o, b""), InvalidBundle, "not a modelshelf bundle .it is empty"),
    "not a tar": (lambda g, o: hb.text_file(o), InvalidBundle, "not a modelshelf bundle .not a tar"),
    "gzip": (lambda g, o: hb.gzipped(g, o), InvalidBundle, "compressed bundles are not supported: .*gunzip"),
    "cut in a blob": (_cut_inside_first_blob, InvalidBundle, "not a modelshelf bundle .it is truncated"),
    "cut in a header": (_cut_inside_a_header, InvalidBundle, "not a modelshelf bundle .it is truncated"),
    "symlink member": (lambda g, o: hb.with_link(g, o, tarfile.SYMTYPE), UntrustedBundle, "not a regular file"),
    "hardlink member": (lambda g, o: hb.with_link(g, o, tarfile.LNKTYPE), UntrustedBundle, "not a regular file"),
    "step 2**70": (lambda g, o: hb.rewritten(g, o, _point(step=2**70)), InvalidBundle, "step must be"),
    "step true": (lambda g, o: hb.rewritten(g, o, _point(step=True)), InvalidBundle, "step must be"),
    "naive timestamp": (
        lambda g, o: hb.rewritten(g, o, _point(timestamp="2026-01-01T00:00:00")),
        InvalidBundle,
        "timestamp .* UTC offset",
    ),
    "timestamp before year 1": (
        lambda g, o: hb.rewritten(g, o, _point(timestamp="0001-01-01T00:00:00+05:00")),
        InvalidBundle,
        "years 1 to 9999",
    ),
    "metric value text": (lambda g, o: hb.rewritten(g, o, _point(value="high")), InvalidBundle, "real numbers"),
    "size as text": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(size=str(e["size"])))),
        InvalidBundle,
        "size '.*' is not a number of bytes",
    ),
    "size 2**64": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(size=2**64))),
        InvalidBundle,
        "is not a number of bytes",
    ),
    "size other than the member's": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(size=e["size"] + 1))),
        CorruptedArtifact,
        "bytes, the manifest says",
    ),
    "environment a list": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(environment=[1, 2]))),
        InvalidBundle,
        "environment is not an object",
    ),
    "environment nested": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(environment={"python": {"x": [1]}}))),
        InvalidBundle,
        "not a version string",
    ),
    "created_at of 100 KB": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(created_at="2026" * 25_000))),
        InvalidBundle,
        "created_at .* not an ISO-8601",
    ),
    "created_at naive": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(created_at="2026-01-01T00:00:00"))),
        InvalidBundle,
        "created_at .* UTC offset",
    ),
    "created_at with NUL": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(created_at="2026-01-01T00:00:00+00:00\x00"))),
        InvalidBundle,
        "created_at",
    ),
    "version 2**70": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(version=2**70))),
        InvalidBundle,
        "invalid version",
    ),
    "name with a slash": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(name="../x"))),
        InvalidBundle,
        "invalid model name",
    ),
    "checksum in capitals": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(checksum=e["checksum"].upper()))),
        InvalidBundle,
        "checksum",
    ),
    "tag with NUL": (
        lambda g, o: hb.rewritten(g, o, _entry(lambda e: e.update(tags={"team": "d\x00s"}))),
        InvalidBundle,
        "tag 'team'",
    ),
    "one version twice": (lambda g, o: hb.rewritten(g, o, _duplicate), InvalidBundle, "lists churn:1 twice"),
    "JSON nested 200,000 deep": (
        lambda g, o: hb.write_tar(o, [hb._regular("manifest.json", b"[" * 200_000 + b"]" * 200_000)]),
        InvalidBundle,
        "nested too deeply",
    ),
    "manifest over the cap": (
        lambda g, o: hb.write_tar(o, [hb._regular("manifest.json", b" " * MAX_MANIFEST + b"{}")]),
        InvalidBundle,
        "manifest.json declares .* bytes, more than",
    ),
    "sparse manifest of 1 GiB": (lambda g, o: hb.sparse_manifest(o, GIB), InvalidBundle, "sparse"),
    "sparse manifest of 64 GiB": (lambda g, o: hb.sparse_manifest(o, 64 * GIB), InvalidBundle, "sparse"),
    "sparse blob of 4 GiB": (lambda g, o: hb.sparse_blob(g, o, 4 * GIB), InvalidBundle, "sparse"),
    "pax header of 2 MiB": (
        lambda g, o: hb.with_pax_header(o, hb.pax_records({f"k{i:07d}": "" for i in range(150_000)})),
        InvalidBundle,
        "an extended tar header of .* bytes at byte 0, more than",
    ),
    "global pax header": (
        lambda g, o: hb.with_pax_header(o, hb.pax_records({"comment": "x"}), tarfile.XGLTYPE),
        InvalidBundle,
        "a global pax header",
    ),
    "pax size with a sign": (
        lambda g, o: hb.with_pax_header(o, hb.pax_records({"size": "+2"})),
        InvalidBundle,
        "a pax size that is not a number",
    ),
    "pax sparse member": (
        lambda g, o: hb.with_pax_header(o, hb.pax_records({"GNU.sparse.size": str(GIB)})),
        InvalidBundle,
        "sparse member",
    ),
    "negative size": (lambda g, o: hb.negative_size(o), InvalidBundle, "negative size"),
    "blob header claiming 4 GiB": (
        lambda g, o: hb.huge_declared_blob(g, o, 4 * GIB),
        InvalidBundle,
        "it is truncated: 'blobs/.*' declares 4294967296 bytes",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_bundle_is_one_clear_error_and_nothing_is_recorded(
    case: str, good: Path, target: Path, tmp_path: Path
) -> None:
    build, error, message = CASES[case]
    bundle = build(good, tmp_path / "hostile.tar")
    with Registry(target) as reg, pytest.raises(error, match=message) as raised:
        reg.import_bundle(bundle, allow_unsigned=True)
    assert "\n" not in str(raised.value)
    assert str(bundle) in str(raised.value)
    _assert_untouched(target)


@pytest.mark.parametrize("declared", [200 * 2**20, GIB, 64 * GIB], ids=["200MiB", "1GiB", "64GiB"])
def test_a_sparse_manifest_is_refused_before_it_is_read(declared: int, target: Path, tmp_path: Path) -> None:
    """A 2 KiB tar whose manifest reads back as ``declared`` bytes: the import holds a few MiB at most."""
    bundle = hb.sparse_manifest(tmp_path / "sparse.tar", declared)
    assert bundle.stat().st_size < 4096
    with Registry(target) as reg:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidBundle, match="sparse member"):
                reg.import_bundle(bundle, allow_unsigned=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * 2**20, f"the import held {peak / 2**20:.0f} MiB"
    _assert_untouched(target)


def test_a_sparse_blob_is_refused_before_a_byte_is_staged(good: Path, target: Path, tmp_path: Path) -> None:
    """A 4 GiB blob in 4 KiB: refused from its header, so neither memory nor ``tmp/`` ever holds it."""
    bundle = hb.sparse_blob(good, tmp_path / "sparse.tar", 4 * GIB)
    with Registry(target) as reg:
        staged: list[str] = []
        stage = reg._store.stage
        reg._store.stage = lambda *a, **k: staged.append("staged") or stage(*a, **k)  # type: ignore[method-assign]
        tracemalloc.start()
        try:
            with pytest.raises(InvalidBundle, match="sparse member"):
                reg.import_bundle(bundle, allow_unsigned=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert staged == [] and peak < 8 * 2**20
    _assert_untouched(target)


def test_a_large_pax_header_is_refused_before_tarfile_parses_it(target: Path, tmp_path: Path) -> None:
    """``tarfile`` turns a pax header into a dict of its records: 2 MiB of short ones held some 40 MiB."""
    bundle = hb.with_pax_header(tmp_path / "pax.tar", hb.pax_records({f"k{i:07d}": "" for i in range(150_000)}))
    with Registry(target) as reg:
        tracemalloc.start()
        try:
            with pytest.raises(InvalidBundle, match="extended tar header"):
                reg.import_bundle(bundle, allow_unsigned=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 4 * 2**20, f"the import held {peak / 2**20:.0f} MiB"
    _assert_untouched(target)


def test_more_members_than_any_bundle_holds_are_refused_from_their_headers(
    target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_checks, "MAX_MEMBERS", 10)  # the real bound is 100,000: a 50 MB file to build
    bundle = hb.many_members(tmp_path / "many.tar", 11)
    with Registry(target) as reg, pytest.raises(InvalidBundle, match="more than 10 members"):
        reg.import_bundle(bundle, allow_unsigned=True)
    _assert_untouched(target)


def test_a_valid_bundle_still_imports_once_with_its_history(good: Path, target: Path) -> None:
    with Registry(target) as reg:
        first = reg.import_bundle(good, allow_unsigned=True)
        again = reg.import_bundle(good, allow_unsigned=True)
        assert [r.created for r in first] == [True, True] and [r.created for r in again] == [False, False]
        history = [(p.version, p.value, p.step) for p in reg.metrics_history("churn")]
        assert history == [(1, 0.9, None), (2, 0.95, None), (2, 0.96, 7)]
        assert reg.load("churn:2") == {"w": [4, 5, 6]}
        assert all(p.timestamp.utcoffset() is not None for p in reg.metrics_history("churn"))


def test_sizes_given_in_pax_headers_are_followed_as_tarfile_follows_them(
    good: Path, target: Path, tmp_path: Path
) -> None:
    """An export of a blob past 8 GiB puts its size in a pax header: the header walk must not lose its place."""
    bundle = hb.sizes_in_pax_headers(good, tmp_path / "pax-sizes.tar")
    with tarfile.open(bundle) as tar:
        assert [m.size for m in tar.getmembers()] == [m.size for m, _ in hb.members(good)]
    with Registry(target) as reg:
        assert [r.created for r in reg.import_bundle(bundle, allow_unsigned=True)] == [True, True]
        assert reg.load("churn:1") == {"w": [1, 2, 3]}


@pytest.mark.parametrize("case", ["empty file", "gzip", "cut in a blob", "step 2**70", "sparse blob of 4 GiB"])
def test_the_cli_refuses_a_hostile_bundle_in_one_line_with_exit_3(
    case: str, good: Path, target: Path, tmp_path: Path
) -> None:
    bundle = CASES[case][0](good, tmp_path / "hostile.tar")
    result = run_cli(target, "import", str(bundle), "--allow-unsigned")
    assert result.exit_code == 3, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    _assert_untouched(target)


@pytest.mark.parametrize(
    "case", ["step 2**70", "naive timestamp", "version 2**70", "tag with NUL", "created_at with NUL"]
)
def test_fields_the_server_would_refuse_are_refused_before_it_on_postgresql(
    case: str, good: Path, tmp_path: Path
) -> None:
    """psycopg fails otherwise than SQLite ("out of range", NUL in text): the checks come first on both."""
    bundle = CASES[case][0](good, tmp_path / "hostile.tar")
    for url in fresh_database("postgresql"):
        with Registry(catalog=url, store=str(tmp_path / "store")) as reg:
            with pytest.raises(InvalidBundle, match=CASES[case][2]):
                reg.import_bundle(bundle, allow_unsigned=True)
            assert reg.models() == [] and reg.events() == []
        assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
