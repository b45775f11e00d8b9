"""A load's catalog lookup (one statement through the SQLite driver) finds what ``get`` finds, and fails as it does.

Real SQLite catalogs in temporary directories; the rows are compared field
by field with ``get``'s, tags, metrics and aliases aside (a load reads none
of them), for versions with every optional part recorded and without.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from registry import Registry
from registry.catalog import lite
from registry.errors import AliasNotFound, CatalogError, ModelNotFound, UntrustedArtifact, VersionNotFound
from registry.formats.joblib_fast import ZERO_COPY_MIN_BYTES, load_joblib_unsafe
from registry.names import resolve_ref
from registry.store.buffer import MAPPED_FROM, VerifiedReader, allocate
from tests.conftest import sql
from tests.sql_trace import traced_statements


def without_details(mv: Any) -> Any:
    return dataclasses.replace(mv, tags={}, metrics={}, aliases=())


def test_pinned_latest_and_alias_find_the_row_get_finds(reg: Registry, iris: tuple[Any, Any], knn: Any) -> None:
    X, y = iris
    first = reg.register("m", knn, metrics={"accuracy": 0.9}, tags={"team": "cv"}, data=(X, y), description="one")
    reg.register("m", {"plain": 1}, format="pickle", parent=first, alias="production")
    reg.register("m", {"plain": 2}, format="pickle")
    for ref in ("m:1", "m:2", "m", "m:latest", "m@production"):
        found = reg._catalog.version_to_load(resolve_ref(ref, None, None))
        assert found == without_details(reg.get(ref))
    assert reg._catalog.version_to_load(resolve_ref("m:1", None, None)).lineage.data is not None
    assert reg._catalog.version_to_load(resolve_ref("m@production", None, None)).lineage.parent == "m:1"
    created = reg._catalog.version_to_load(resolve_ref("m:1", None, None)).created_at
    assert created == reg.get("m:1").created_at and created.tzinfo is not None


@pytest.mark.parametrize(
    ("ref", "error"),
    [("nobody", ModelNotFound), ("m:9", VersionNotFound), ("m@staging", AliasNotFound)],
)
def test_what_finds_nothing_fails_as_get_does(reg: Registry, ref: str, error: type[Exception]) -> None:
    reg.register("m", {"a": 1}, format="pickle")
    with pytest.raises(error) as by_load:
        reg.load(ref)
    with pytest.raises(error) as by_get:
        reg.get(ref)
    assert str(by_load.value) == str(by_get.value)


def test_a_deleted_version_is_not_loaded(reg: Registry) -> None:
    reg.register("m", {"a": 1}, format="pickle")
    reg.register("m", {"a": 2}, format="pickle")
    reg.delete_version("m", 2)
    assert reg.load("m") == {"a": 1}  # latest skips it
    with pytest.raises(VersionNotFound, match="deleted"):
        reg.load("m:2")


def test_a_lookup_sees_what_another_client_committed(home: Path) -> None:
    with Registry(home) as reader, Registry(home) as writer:
        writer.register("m", {"a": 1}, format="pickle")
        assert reader.load("m") == {"a": 1}
        writer.register("m", {"a": 2}, format="pickle")
        assert reader.load("m") == {"a": 2}  # no snapshot is held between lookups


def test_with_a_key_the_seal_is_still_checked(home: Path) -> None:
    with Registry(home, signing_key="k" * 32) as keyed:
        keyed.register("m", {"a": 1}, format="pickle")
        keyed.register("m", {"a": 2}, format="pickle")
    sql(home, "DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")  # the trail no longer meets its seal
    with Registry(home, signing_key="k" * 32) as keyed, pytest.raises(UntrustedArtifact):
        keyed.load("m:1")  # the version itself is intact: only the model's seal check refuses it


def test_a_broken_catalog_is_a_catalog_error(home: Path) -> None:
    with Registry(home) as reg:
        reg.register("m", {"a": 1}, format="pickle")
        sql(home, "ALTER TABLE versions RENAME TO moved")
        with pytest.raises(CatalogError, match="failed"):
            reg.load("m")


def test_the_reader_runs_the_statements_sqlalchemy_compiles_for_the_lookups() -> None:
    from sqlalchemy.dialects import sqlite

    from registry.catalog.reads import _LOOKUPS

    parameters = {"pinned": ["name", "version"], "alias": ["name", "alias"], "latest": ["name", "param_1", "param_2"]}
    for kind, statement in _LOOKUPS.items():
        compiled = statement.compile(dialect=sqlite.dialect())
        assert lite.SQL[kind] == compiled.string, kind
        assert list(compiled.positiontup or []) == parameters[kind]
    assert _LOOKUPS["latest"].compile(dialect=sqlite.dialect()).construct_params({"name": "m"}) == {
        "name": "m",
        "param_1": 1,
        "param_2": 0,
    }


def test_the_reader_decodes_each_column_as_its_type_does() -> None:
    from sqlalchemy import JSON, Boolean

    from registry.catalog.schema import UTCDateTime
    from registry.catalog.version_rows import VERSION_COLUMNS

    assert [key for _, key, _ in lite._COLUMNS] == [column.key for column in VERSION_COLUMNS]
    expected = {JSON: lite._json, UTCDateTime: lite._time, Boolean: lite._bool}
    for (_, key, decode), column in zip(lite._COLUMNS, VERSION_COLUMNS, strict=True):
        # A column selected raw (``decoding.raw``) is typed as text there: its schema column's type says how to decode.
        typed = getattr(getattr(column, "element", None), "clause", column)
        kind = next((decoder for kind, decoder in expected.items() if isinstance(typed.type, kind)), None)
        assert decode is kind, key


def test_the_reader_opens_the_file_as_the_engine_does(tmp_path: Path) -> None:
    from registry.catalog.engine import LOCK_TIMEOUT, read_only_sqlite_url

    assert lite.BUSY_TIMEOUT == LOCK_TIMEOUT
    path = tmp_path / "catalog.db"
    path.touch()
    assert lite._uri(path, read_only=True) == read_only_sqlite_url(path).database
    tmp_path.chmod(0o555)
    try:
        assert lite._uri(path, read_only=True) == read_only_sqlite_url(path).database  # immutable=1 (as root: not)
    finally:
        tmp_path.chmod(0o755)
    assert lite._uri(path, read_only=False).endswith("?mode=rw")  # never created: a missing file is an error


def test_a_registry_opened_to_load_reads_through_the_reader_and_opens_the_catalog_on_demand(home: Path) -> None:
    with Registry(home) as writer:
        writer.register("m", {"a": 1}, format="pickle")
    with Registry(home) as reader:
        assert reader._lite is not None and reader._full is None
        assert reader.load("m") == {"a": 1} and reader._full is None  # no SQLAlchemy catalog was needed
        assert reader.catalog_location == str(home / "catalog.db") == writer.catalog_location
        assert reader.get("m").version == 1 and reader._full is not None  # anything else opens it
        assert reader.load("m") == {"a": 1}


def test_a_registry_made_in_this_process_loads_through_the_reader_once_the_catalog_exists(tmp_path: Path) -> None:
    with Registry(tmp_path / "new") as reg:
        assert reg._lite is None  # nothing to read yet: the full catalog makes the schema
        reg.register("m", {"a": 1}, format="pickle")
        assert reg.load("m") == {"a": 1}
        assert reg._lite is not None
        with traced_statements(reg) as statements:
            assert reg.load("m") == {"a": 1}
        assert len(statements) == 1 and statements[0].startswith("SELECT versions.id")  # one statement, no BEGIN


def test_a_catalog_at_another_revision_is_left_to_the_full_catalog(home: Path) -> None:
    from registry.errors import SchemaVersionError

    with Registry(home) as reg:
        reg.register("m", {"a": 1}, format="pickle")
    sql(home, "UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(SchemaVersionError):
        Registry(home)  # refused at open, as before: the reader declines what is not at this code's head


def test_a_file_that_is_not_a_catalog_is_reported_by_the_full_catalog(tmp_path: Path) -> None:
    (tmp_path / "catalog.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CatalogError, match="not a modelshelf catalog|not a database"):
        Registry(tmp_path, create=False)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_loads_through_its_own_connection(home: Path) -> None:
    with Registry(home) as reg:
        reg.register("m", {"a": 1}, format="pickle")
        reg.register("m", {"a": 2}, format="pickle")
        assert reg.load("m:1") == {"a": 1}  # the parent's connection is open
        assert reg._lite is not None
        inherited = reg._lite._connection
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: load, say what it used, and leave without running the parent's exit handlers
            try:
                answer = json.dumps([reg.load("m"), reg._lite._connection is not inherited])
            except BaseException as exc:
                answer = json.dumps([repr(exc), False])
            os.write(write, answer.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            child = json.loads(pipe.read())
        os.waitpid(pid, 0)
        assert child == [{"a": 2}, True]
        assert reg.load("m") == {"a": 2} and reg._lite._connection is inherited  # the parent's is untouched


# -- the blob side of a small load ---------------------------------------------------------------------------------


def test_small_buffers_are_private_bytearrays_and_large_ones_mappings(tmp_path: Path) -> None:
    small = allocate(MAPPED_FROM - 1, tmp_path, 1 << 30)
    large = allocate(MAPPED_FROM, tmp_path, 1 << 30)
    assert type(small) is bytearray and len(small) == MAPPED_FROM - 1
    assert not isinstance(large, bytearray) and len(large) == MAPPED_FROM
    assert MAPPED_FROM <= ZERO_COPY_MIN_BYTES  # nothing smaller than a mapping is ever viewed in place


@pytest.mark.parametrize("rows", [10, 20_000])
def test_joblib_artifacts_below_and_above_the_view_threshold_load_alike(rows: int) -> None:
    model = {"weights": np.arange(rows, dtype=np.float64), "name": "m"}
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    assert (len(data) < ZERO_COPY_MIN_BYTES) == (rows == 10)
    memory = bytearray(data)
    with VerifiedReader(memory) as reader:
        loaded = load_joblib_unsafe(reader)
    assert loaded["name"] == "m" and np.array_equal(loaded["weights"], model["weights"])
    assert loaded["weights"].flags.writeable
    viewed = np.shares_memory(loaded["weights"], np.frombuffer(memory, dtype=np.uint8))
    assert viewed == (rows != 10)  # only the large array is a view of the verified bytes


def test_a_small_load_is_of_the_verified_bytes_even_if_the_file_changes_after(reg: Registry) -> None:
    mv = reg.register("m", {"weights": list(range(5))})
    path = Path(reg.store_location) / "blobs" / "sha256" / mv.digest[:2] / mv.digest[2:]
    with reg._store.open_verified(mv.digest, mv.size) as reader:
        os.chmod(path, 0o644)
        path.write_bytes(b"\x00" * mv.size)  # a rewrite after the hash reaches nothing
        assert load_joblib_unsafe(reader) == {"weights": [0, 1, 2, 3, 4]}
