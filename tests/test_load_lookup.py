"""A load's catalog lookup (one statement through the SQLite driver) finds what ``get`` finds, and fails as it does.

Real SQLite catalogs in temporary directories; the rows are compared field
by field with ``get``'s, tags, metrics and aliases aside (a load reads none
of them), for versions with every optional part recorded and without.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sqlalchemy import select

from registry import Registry
from registry.catalog.prepared import PreparedSelect
from registry.catalog.schema import ModelRow
from registry.errors import AliasNotFound, CatalogError, ModelNotFound, UntrustedArtifact, VersionNotFound
from registry.formats.joblib_fast import ZERO_COPY_MIN_BYTES, load_joblib_unsafe
from registry.names import resolve_ref
from registry.store.buffer import MAPPED_FROM, VerifiedReader, allocate
from tests.conftest import sql


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


def test_a_prepared_select_reads_rows_as_sqlalchemy_does(reg: Registry) -> None:
    reg.register("m", {"a": 1}, format="pickle")
    statement = select(ModelRow.id, ModelRow.name, ModelRow.created_at).where(ModelRow.name == "m").limit(1)
    prepared = PreparedSelect(statement, reg._catalog.engine)
    with reg._catalog.engine.connect() as connection:
        expected = connection.execute(statement).one()
    row = prepared.first()
    assert row is not None and (row.id, row.name, row.created_at) == tuple(expected)
    assert PreparedSelect(statement.where(ModelRow.name == "none"), reg._catalog.engine).first() is None


def test_a_prepared_select_refuses_a_server_dialect() -> None:
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(ValueError, match="SQLite only"):
        PreparedSelect(select(ModelRow.id), engine)


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
