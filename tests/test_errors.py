"""The error families: every refusal a caller meets is a RegistryError, and its family's builtin too.

A caller writing ``except RegistryError`` must catch a bad metric, one
writing ``except ValueError`` must keep catching it, and the CLI's exit
code comes from the family, not from a list of individual errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import registry
from registry import (
    CorruptedArtifact,
    InvalidArgument,
    InvalidFormat,
    InvalidInput,
    InvalidMetric,
    InvalidParam,
    InvalidStep,
    InvalidTag,
    NotFound,
    Registry,
    RegistryError,
    TrustError,
    UnsafeArtifact,
    UntrustedArtifact,
)
from registry.cli import EXIT_INTEGRITY, EXIT_NOT_FOUND, EXIT_USAGE, cli
from tests.conftest import blob_files

#: One bad call per kind of input, and the precise class it must raise.
BAD_CALLS: dict[str, tuple[Callable[[Registry], Any], type[InvalidInput], str]] = {
    "metric": (lambda r: r.register("m", [1], format="pickle", metrics={"acc": float("nan")}), InvalidMetric, "finite"),
    "metric key": (lambda r: r.register("m", [1], format="pickle", metrics={"": 1.0}), InvalidMetric, "keys are 1-"),
    "param": (lambda r: r.register("m", [1], format="pickle", params={"k": 2**64}), InvalidParam, "64 bits"),
    "tag": (lambda r: r.register("m", [1], format="pickle", tags={"team": 3}), InvalidTag, "tag values are strings"),
    "step": (lambda r: r.log_metrics("m", 1, {"acc": 0.5}, step=2**63), InvalidStep, "64-bit integer"),
    "format": (lambda r: r.register("m", [1], format="onnx"), InvalidFormat, "unknown format"),
    "limit": (lambda r: r.search("m", limit=0), InvalidArgument, "limit must be None"),
    "mode": (lambda r: r.best("m", "acc", mode="top"), InvalidArgument, "'max' or 'min'"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CALLS))
def test_bad_input_is_invalid_input_a_value_error_and_a_registry_error(reg: Registry, kind: str) -> None:
    reg.register("m", [0], format="pickle", metrics={"acc": 0.1})
    call, precise, message = BAD_CALLS[kind]
    with pytest.raises(precise, match=message) as caught:
        call(reg)
    assert isinstance(caught.value, InvalidInput) and isinstance(caught.value, ValueError)
    try:
        call(reg)
    except RegistryError as exc:  # what errors.py promises a caller: one except for everything modelshelf refuses
        assert type(exc) is precise
    else:
        pytest.fail(f"a bad {kind} was not refused")
    assert [mv.version for mv in reg.versions("m")] == [1]  # refused before anything was written


def test_a_wrong_argument_type_stays_a_type_error() -> None:
    from registry import InvalidType, ValidatedModel

    with pytest.raises(TypeError, match="InputSignature") as caught:
        ValidatedModel(object(), {"n_features": 2}, "m:1")  # type: ignore[arg-type]
    assert isinstance(caught.value, InvalidType) and isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    ("ref", "precise"),
    [("nothing", registry.ModelNotFound), ("m:9", registry.VersionNotFound), ("m@production", registry.AliasNotFound)],
)
def test_lookups_raise_not_found_and_lookup_error(reg: Registry, ref: str, precise: type[NotFound]) -> None:
    reg.register("m", [1], format="pickle")
    with pytest.raises(precise) as caught:
        reg.get(ref)
    assert isinstance(caught.value, NotFound) and isinstance(caught.value, LookupError)
    with pytest.raises(LookupError):
        reg.load(ref)


def test_a_version_without_an_input_signature_is_not_found(reg: Registry) -> None:
    mv = reg.register("m", [1], format="pickle")
    with pytest.raises(registry.SignatureNotFound) as caught:
        registry.check_input(mv, [[1.0]])
    assert isinstance(caught.value, NotFound) and isinstance(caught.value, LookupError)


def test_corrupted_bytes_are_a_trust_error(reg: Registry, home: Path) -> None:
    reg.register("m", [1, 2, 3], format="pickle")
    (blob,) = blob_files(home)
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes() + b"\x00")
    with pytest.raises(TrustError) as caught:
        reg.load("m")
    assert isinstance(caught.value, CorruptedArtifact) and not isinstance(caught.value, ValueError)


def test_an_unsafe_artifact_is_a_trust_error(reg: Registry) -> None:
    reg.register("evil", {"hook": os.system}, format="pickle")
    with pytest.raises(TrustError, match="system") as caught:
        reg.load("evil", safe=True)
    assert isinstance(caught.value, UnsafeArtifact)


def test_a_version_unsigned_under_a_signing_key_is_a_trust_error(home: Path) -> None:
    with Registry(home) as plain:
        plain.register("m", [1], format="pickle")
    with Registry(home, signing_key="k" * 32) as keyed, pytest.raises(TrustError) as caught:
        keyed.load("m")
    assert isinstance(caught.value, UntrustedArtifact)


def test_the_families_are_exported_and_hold_their_members() -> None:
    members = {
        registry.NotFound: (
            registry.ModelNotFound,
            registry.VersionNotFound,
            registry.AliasNotFound,
            registry.RegistryNotFound,
            registry.CanaryNotFound,
        ),
        registry.InvalidInput: (
            registry.InvalidName,
            registry.InvalidReference,
            registry.InvalidQuery,
            registry.InvalidKey,
            registry.InvalidBundle,
            registry.InvalidCatalogURL,
            registry.SignatureMismatch,
            InvalidMetric,
            InvalidParam,
            InvalidTag,
            InvalidStep,
            InvalidFormat,
            InvalidArgument,
        ),
        registry.TrustError: (
            registry.CorruptedArtifact,
            registry.DamagedVersion,
            registry.UnsafeArtifact,
            registry.ArtifactTooLarge,
            registry.UntrustedTypes,
            registry.UntrustedArtifact,
            registry.UntrustedBundle,
            registry.CanaryMismatch,
        ),
    }
    for family, classes in members.items():
        assert family.__name__ in registry.__all__
        for cls in classes:
            assert issubclass(cls, family), (cls, family)
            assert cls.__name__ in registry.__all__
    assert issubclass(registry.InvalidCatalogURL, registry.CatalogError)  # both families: a URL is input and catalog
    assert not issubclass(registry.TrustError, ValueError)  # a tampered blob is not a bad argument
    assert issubclass(registry.ReadOnlyRegistry, PermissionError)  # a refused write, not a bad argument
    assert not issubclass(registry.ReadOnlyRegistry, registry.InvalidInput)
    assert issubclass(registry.PromotionRefused, PermissionError)  # a policy refusal, not a bad argument
    assert not issubclass(registry.PromotionRefused, registry.InvalidInput)


# One command per family, and the code README's "Command line" section documents for it.
CLI_CASES = [
    pytest.param(["show", "nothing"], EXIT_NOT_FOUND, "not in this registry", id="NotFound"),
    pytest.param(["show", "m:0"], EXIT_USAGE, "invalid reference", id="InvalidReference"),
    pytest.param(["tag", "m:1", "team=a", "--rm", "team"], EXIT_USAGE, "both set and removed", id="InvalidTag"),
    pytest.param(["search", "metrics.acc >"], EXIT_USAGE, "invalid filter", id="InvalidQuery"),
    pytest.param(["fetch", "m:1", "-o", "{out}"], EXIT_INTEGRITY, "failed verification", id="TrustError"),
    pytest.param(["import", "{junk}"], EXIT_INTEGRITY, "not a", id="InvalidBundle"),
]


@pytest.mark.parametrize(("args", "code", "message"), CLI_CASES)
def test_cli_exit_codes_come_from_the_family(
    home: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    with Registry(home) as reg:
        reg.register("m", [1, 2, 3], format="pickle")
    (blob,) = blob_files(home)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered")  # only `fetch` reads it
    (tmp_path / "junk.tar").write_text("not a bundle")
    filled = [arg.format(out=tmp_path / "out.pkl", junk=tmp_path / "junk.tar") for arg in args]
    result = CliRunner().invoke(cli, ["--home", str(home), *filled])
    assert result.exit_code == code, result.output
    assert result.output.startswith("error: ") and message in result.output


def test_every_cli_exit_code_is_keyed_by_a_family() -> None:
    from registry.cli import EXIT_CODES

    keys = [kind for kind, _ in EXIT_CODES]
    assert keys.index(registry.InvalidBundle) < keys.index(registry.InvalidInput)  # most specific first
    assert dict(EXIT_CODES)[registry.TrustError] == EXIT_INTEGRITY
    assert dict(EXIT_CODES)[registry.NotFound] == EXIT_NOT_FOUND
    assert dict(EXIT_CODES)[registry.InvalidInput] == EXIT_USAGE
    assert dict(EXIT_CODES)[registry.PromotionRefused] == 4  # a PermissionError: it must come before OSError
    assert keys.index(registry.PromotionRefused) < keys.index(OSError)
    assert keys[-1] is RegistryError  # the catch-all comes last


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert registry.__version__ == version("modelshelf")
    assert (Path(registry.__file__).parent / "py.typed").is_file()


def test_the_storage_limits_are_one_set_of_numbers_for_schema_and_checks() -> None:
    from registry import limits
    from registry.catalog import schema
    from registry.names import validate_version
    from registry.query import parse_filter
    from registry.validation import validate_metrics, validate_step

    for table in ("tags", "metrics", "latest_metrics"):
        assert schema.Base.metadata.tables[table].columns["key"].type.length == limits.MAX_KEY_LENGTH, table
    assert schema.Base.metadata.tables["models"].columns["name"].type.length == limits.MAX_NAME_LENGTH
    key = "k" * limits.MAX_KEY_LENGTH
    assert validate_metrics({key: 1.0}) == {key: 1.0} and parse_filter(f"metrics.{key} > 0") is not None
    with pytest.raises(InvalidMetric):
        validate_metrics({key + "k": 1.0})
    with pytest.raises(registry.InvalidQuery):
        parse_filter(f"metrics.{key}k > 0")
    assert validate_step(limits.MAX_STEP) == limits.MAX_STEP and validate_version(limits.MAX_VERSION)
    with pytest.raises(InvalidStep):
        validate_step(limits.MAX_STEP + 1)
    with pytest.raises(registry.InvalidReference):
        validate_version(limits.MAX_VERSION + 1)


@pytest.mark.parametrize(
    ("arguments", "expected", "message"),
    [
        ({"name": "bad name!", "check": "bogus"}, registry.InvalidName, "bad name"),
        ({"format": "onnx", "check": "bogus"}, registry.InvalidFormat, "unknown format"),
        ({"metrics": {"accuracy": float("nan")}}, registry.InvalidPath, "is not a file"),
    ],
)
def test_register_file_checks_its_arguments_in_the_order_callers_have_always_met(
    reg: Registry, tmp_path: Path, arguments: dict[str, Any], expected: type[Exception], message: str
) -> None:
    """Two wrong arguments at once: the error is about the one checked first, as before the write pipeline."""
    call = {"name": "m", "path": tmp_path / "missing.joblib", **arguments}
    with pytest.raises(expected, match=message):
        reg.register_file(**call)
    assert reg.models() == []


@pytest.mark.parametrize("stored", ["[1, 2]", '"text"', '{"n_features": 2, "unknown_field_as_key": 1, "classes": 3}'])
def test_a_stored_input_signature_rewritten_by_sql_is_a_registry_error(reg: Registry, home: Path, stored: str) -> None:
    """Raw SQL on the catalog must not turn a lookup into a bare ``ValueError`` or ``TypeError``."""
    import sqlite3

    reg.register("m", {"w": 1}, format="pickle")
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("UPDATE versions SET input_signature = ?", (stored,))
    db.close()
    try:
        mv = reg.get("m:1")
    except RegistryError as error:
        assert "edited outside modelshelf" in str(error)
    else:  # a JSON object is read field by field; what it holds is only ever shown, never run
        assert mv.input_signature is not None and stored.startswith("{")
