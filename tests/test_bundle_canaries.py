"""Prediction canaries travel with bundles: exported as JSON, checked on import, MACed under the importer's key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

from registry import Registry
from registry.errors import InvalidBundle
from tests import hostile_bundles as hb

KEY = "bundle-canary-signing-key-32bytes!"


@pytest.fixture
def bundle(tmp_path: Path, iris: tuple[Any, Any]) -> Path:
    """An unsigned bundle of a model with a canary (``lr:1``) and one without (``lr:2``)."""
    X, y = iris
    with Registry(tmp_path / "source") as reg:
        reg.register("lr", LogisticRegression(max_iter=500).fit(X, y), data=(X, y))
        reg.register("lr", LogisticRegression(max_iter=500).fit(X, y), canary=False)
        reg.export_bundle(["lr:1", "lr:2"], tmp_path / "lr.tar")
    return tmp_path / "lr.tar"


def test_an_imported_version_keeps_its_canary_under_the_importers_key(bundle: Path, tmp_path: Path) -> None:
    with Registry(tmp_path / "source") as source:
        recorded = source.canary("lr:1")
    assert recorded is not None
    with Registry(tmp_path / "target", signing_key=KEY) as reg:
        reg.import_bundle(bundle, allow_unsigned=True)
        imported = reg.canary("lr:1")  # with a key: its MAC is checked, so it was MACed on import
        assert imported is not None and imported.to_json() == recorded.to_json() and imported.hmac is not None
        assert reg.check("lr:1").status == "equal"
        assert reg.canary("lr:2") is None and reg.check("lr:2").status == "no canary"
        assert reg.verify(deep=True).ok


def _canary_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda manifest: change(manifest["versions"][0]["canary"])


def _huge_strings(canary: dict[str, Any]) -> None:
    canary["outputs"]["predict"] = {"shape": [1], "dtype": "<U100000000", "values": ["x"]}


def _wide_empty_strings(canary: dict[str, Any]) -> None:
    # Each value short, the dtype as wide as a canary ever allows: 80,000 of them would take 80 GB decoded.
    count = 80_000
    canary["outputs"]["predict"] = {"shape": [count], "dtype": "<U262144", "values": [""] * count}


def _rows_beyond(canary: dict[str, Any]) -> None:
    canary["inputs"]["shape"][0] = canary["rows"] + 1


HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "many values of the widest strings": (_canary_edit(_wide_empty_strings), "more than a canary ever keeps"),
    "an integer beyond int64": (
        _canary_edit(lambda c: c["outputs"]["predict"].update(values=[2**70] * len(c["outputs"]["predict"]["values"]))),
        "OverflowError",
    ),
    "inputs with more rows than it says": (_canary_edit(_rows_beyond), "canary inputs do not hold the 64 rows"),
    "no rows": (_canary_edit(lambda c: c.update(rows=0)), "canary rows 0 is not a count"),
    "a billion rows": (_canary_edit(lambda c: c.update(rows=10**9)), "canary rows 1000000000 is not a count"),
    "a method to call": (
        _canary_edit(lambda c: c["outputs"].update(__reduce__=c["outputs"]["predict"])),
        "canary outputs name methods other than",
    ),
    "an extra field": (_canary_edit(lambda c: c.update(hmac="0" * 64)), "canary is not an object of rows"),
    "not an object": (lambda m: m["versions"][0].update(canary=[1, 2]), "canary is not an object of rows"),
    "400 MB strings": (_canary_edit(_huge_strings), "holds strings longer than a canary ever keeps"),
    "over 256 KiB": (
        _canary_edit(lambda c: c["outputs"]["predict"].update(values=list(range(100_000)))),
        "canary is over 256 KiB",
    ),
    "values that do not decode": (
        _canary_edit(lambda c: c["outputs"]["predict"].update(dtype="complex128")),
        "is not one a canary stores",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_canary_in_a_manifest_is_refused_and_nothing_is_imported(
    case: str, bundle: Path, tmp_path: Path
) -> None:
    edit, said = HOSTILE[case]
    hostile = hb.rewritten(bundle, tmp_path / "hostile.tar", edit)
    with Registry(tmp_path / "target") as reg:
        with pytest.raises(InvalidBundle, match=said):
            reg.import_bundle(hostile, allow_unsigned=True)
        assert reg.models() == []


def test_a_bundle_from_before_canaries_imports_without_one(bundle: Path, tmp_path: Path) -> None:
    older = hb.rewritten(bundle, tmp_path / "older.tar", lambda m: [v.pop("canary") for v in m["versions"]])
    with Registry(tmp_path / "target") as reg:
        reg.import_bundle(older, allow_unsigned=True)
        assert reg.canary("lr:1") is None and [mv.ref for mv in reg.versions("lr")] == ["lr:1", "lr:2"]
