"""The bottom layer's names: the HMAC is ``mv.hmac``; checksums and digests convert in registry.digests."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import cli
from registry.digests import checksum_of, digest_of, is_checksum, is_digest
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
        KEY.encode(),
        mv.name,
        mv.version,
        mv.format,
        mv.checksum,
        mv.size,
        mv.imports,
        mv.params,
        environment=mv.environment,
        input_signature=None,
        blake3=mv.blake3,
    )
    assert mv.hmac == expected and mv.hmac.startswith("v4:")
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


# -- checksums and digests -------------------------------------------------------

DIGEST = "0123456789abcdef" * 4


def test_checksum_of_and_digest_of_round_trip() -> None:
    assert checksum_of(DIGEST) == "sha256:" + DIGEST
    assert digest_of(checksum_of(DIGEST)) == DIGEST
    assert is_checksum(checksum_of(DIGEST)) and not is_checksum(DIGEST)
    assert is_digest(DIGEST) and not is_digest(checksum_of(DIGEST)) and not is_digest(DIGEST.upper())
    assert not is_digest(DIGEST[:-1]) and not is_digest(DIGEST + "0") and not is_digest(None)


@pytest.mark.parametrize(
    "bad",
    [DIGEST, "sha256:" + DIGEST.upper(), "sha256:" + DIGEST[:-1], "sha256:" + DIGEST + "\n", "md5:" + DIGEST, ""],
)
def test_digest_of_refuses_what_is_not_a_checksum_and_says_what_it_expected(bad: str) -> None:
    assert not is_checksum(bad)
    with pytest.raises(ValueError, match="is not a checksum: expected 'sha256:' and 64 lowercase hex digits"):
        digest_of(bad)


def test_a_version_shows_its_checksum_and_its_store_digest_as_one_pair(keyed: Registry) -> None:
    mv = keyed.get("m:1")
    assert mv.checksum == checksum_of(mv.digest) and digest_of(mv.checksum) == mv.digest
    assert keyed.verify().ok  # the store finds the blob under the bare digest


def test_digest_of_without_the_check_only_strips_the_prefix() -> None:
    """For catalog values the store checks itself: a tampered one must reach that check unchanged."""
    assert digest_of("sha256:../etc/passwd", check=False) == "../etc/passwd"
    assert digest_of(DIGEST, check=False) == DIGEST
