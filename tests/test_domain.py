"""The domain types' names: the HMAC is ``mv.hmac``, and checksums and digests convert in one place."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import cli
from registry.trust import signing

KEY = "domain-names-signing-key-of-32-bytes"


@pytest.fixture
def keyed(home: Path) -> Registry:
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle", params={"k": 1})
        yield reg


def test_hmac_holds_the_version_hmac_the_catalog_stores(keyed: Registry, home: Path) -> None:
    mv = keyed.get("m:1")
    expected = signing.sign_version(
        KEY.encode(), mv.name, mv.version, mv.format, mv.checksum, mv.size, mv.imports, mv.params
    )
    assert mv.hmac == expected and mv.hmac.startswith("v2:")
    with sqlite3.connect(home / "catalog.db") as db:
        (stored,) = db.execute("SELECT signature FROM versions WHERE version = 1").fetchone()
    assert stored == mv.hmac  # the column keeps its old name
    assert keyed.versions("m")[0].hmac == mv.hmac


def test_signature_is_a_deprecated_alias_of_hmac(keyed: Registry) -> None:
    mv = keyed.get("m:1")
    with pytest.warns(DeprecationWarning, match=r"ModelVersion\.signature is deprecated.*ModelVersion\.hmac"):
        old = mv.signature
    assert old == mv.hmac and old is not None


def test_without_a_key_hmac_is_none_and_the_alias_warns_all_the_same(home: Path) -> None:
    with Registry(home) as reg:
        mv = reg.register("m", {"v": 1}, format="pickle")
    assert mv.hmac is None
    with pytest.warns(DeprecationWarning):
        assert mv.signature is None


def test_no_library_path_reads_the_deprecated_name(keyed: Registry, home: Path) -> None:
    """Every reader of the HMAC (load, listings, verify, the CLI's show) uses ``hmac``: none warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert keyed.load("m:1") == {"v": 1}
        assert keyed.load("m:1", safe=True) == {"v": 1}
        assert [mv.ref for mv in keyed.versions("m")] == ["m:1"]
        assert keyed.verify().ok
        result = CliRunner().invoke(
            cli, ["--home", str(home), "show", "m:1", "--json"], env={signing.KEY_VARIABLE: KEY}
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["signed"] is True
