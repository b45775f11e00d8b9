"""Versions exported for the OpenSSF model-signing tool verify with the real package, without modelshelf."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import InvalidKey, Registry
from registry.cli import cli
from registry.openssf import export_model_signed
from registry.trust.keys import KeyPair, generate_key_pair

verifying = pytest.importorskip("model_signing.verifying")  # in the test extra: a skip here is an install bug


@pytest.fixture
def ec_key(tmp_path: Path) -> KeyPair:
    return generate_key_pair(tmp_path, "ec", "ecdsa-p256")


def _verify(directory: Path, public_key: Path) -> None:
    config = verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    config.verify(directory, directory / "model.sig")


def test_an_exported_version_verifies_with_model_signing_and_tampering_is_caught(
    reg: Registry, knn, tmp_path: Path, ec_key: KeyPair
) -> None:
    mv = reg.register("iris", knn, params={"k": 3})
    [signed] = export_model_signed(reg, ["iris:1", "iris"], tmp_path / "out", ec_key.private_path)
    assert signed.directory == tmp_path / "out" / "iris-1" and signed.ref == "iris:1"
    artifact = signed.directory / "model.joblib"
    assert "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest() == mv.checksum  # byte for byte
    metadata = json.loads((signed.directory / "modelshelf.json").read_text())
    assert (metadata["name"], metadata["version"], metadata["checksum"]) == ("iris", 1, mv.checksum)
    _verify(signed.directory, ec_key.public_path)

    original = artifact.read_bytes()
    artifact.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(ValueError, match="model.joblib"):
        _verify(signed.directory, ec_key.public_path)
    artifact.write_bytes(original)
    (signed.directory / "modelshelf.json").write_text(json.dumps({**metadata, "version": 2}))
    with pytest.raises(ValueError, match="modelshelf.json"):
        _verify(signed.directory, ec_key.public_path)
    other = generate_key_pair(tmp_path, "other", "ecdsa-p256")
    (signed.directory / "modelshelf.json").write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
    _verify(signed.directory, ec_key.public_path)
    with pytest.raises(Exception):  # noqa: B017  (model-signing reports a foreign key by its crypto library's error)
        _verify(signed.directory, other.public_path)


def test_the_cli_writes_model_signing_directories_and_refuses_an_ed25519_key(
    home: Path, tmp_path: Path, ec_key: KeyPair
) -> None:
    with Registry(home) as reg:
        reg.register("m", {"a": 1}, format="pickle")
    out = tmp_path / "out"
    run = CliRunner().invoke
    result = run(
        cli,
        [
            "--home",
            str(home),
            "export",
            "m:1",
            "--model-signing",
            str(out),
            "--model-signing-key",
            str(ec_key.private_path),
        ],
    )
    assert result.exit_code == 0, result.output
    _verify(out / "m-1", ec_key.public_path)
    again = run(
        cli,
        [
            "--home",
            str(home),
            "export",
            "m:1",
            "--model-signing",
            str(out),
            "--model-signing-key",
            str(ec_key.private_path),
        ],
    )
    assert again.exit_code == 1 and "already exists" in again.output
    ed = generate_key_pair(tmp_path, "ed")
    with Registry(home) as reg, pytest.raises(InvalidKey, match="ecdsa-p256"):
        export_model_signed(reg, ["m:1"], tmp_path / "ed-out", ed.private_path)
    assert not (tmp_path / "ed-out").exists()
    assert run(cli, ["--home", str(home), "export", "m:1", "--model-signing", str(out)]).exit_code == 2
