"""Signed bundles: who exported a bundle is checked by the registry that imports it.

Each attack plays someone who can rewrite a bundle on its way between two
registries (a shared drive, a USB stick, a mirror) but holds no key the
target trusts. Every refusal must leave the target as it was: no version,
no audit event, no blob in its store.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import io
import json
import pickle
import shutil
import socket
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import InvalidKey, Registry, UntrustedBundle
from registry.cli import cli
from registry.locations import CATALOG_FILE_NAME
from registry.trust.keys import KeyPair, fingerprint, generate_key_pair, load_private_key, sign_manifest
from tests.cli_helpers import run_cli
from tests.cli_helpers import run_cli_strict as _run
from tests.conftest import blob_files, temp_files

HMAC_KEY = "target-registry-hmac-secret"
WHO = f"{getpass.getuser()}@{socket.gethostname()}"


class Payload:
    """An artifact that runs code when unpickled: it would write ``path`` if it ever were."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.path, "pwned"))


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    return folder


@pytest.fixture
def exporter(keys_dir: Path) -> KeyPair:
    return generate_key_pair(keys_dir, "exporter")


@pytest.fixture
def source(tmp_path: Path, template_home: Path, exporter: KeyPair) -> Path:
    home = _fresh(tmp_path / "source", template_home)
    with Registry(home, bundle_key=exporter.private_path) as reg:
        reg.register("churn", {"weights": [1, 2, 3]}, format="pickle", metrics={"auc": 0.9}, tags={"team": "ds"})
        reg.register("churn", {"weights": [4, 5, 6]}, format="pickle", metrics={"auc": 0.95})
    return home


@pytest.fixture
def signed(source: Path, tmp_path: Path, exporter: KeyPair) -> Path:
    path = tmp_path / "signed.tar"
    with Registry(source, bundle_key=exporter.private_path) as reg:
        reg.export_bundle(["churn:1", "churn:2"], path)
    return path


@pytest.fixture
def unsigned(source: Path, tmp_path: Path) -> Path:
    path = tmp_path / "unsigned.tar"
    with Registry(source) as reg:
        reg.export_bundle(["churn:1", "churn:2"], path)
    return path


@pytest.fixture
def target(tmp_path: Path, template_home: Path) -> Path:
    return _fresh(tmp_path / "target", template_home)


def _fresh(home: Path, template_home: Path) -> Path:
    home.mkdir()
    shutil.copyfile(template_home / CATALOG_FILE_NAME, home / CATALOG_FILE_NAME)
    return home


def _rewrite(
    bundle: Path,
    out: Path,
    change: Callable[[str, bytes], bytes | None] = lambda name, data: data,
    extra: tuple[tuple[str, bytes], ...] = (),
    rename: dict[str, str] | None = None,
) -> Path:
    """Copy a bundle member by member through ``change`` (``None`` drops the member), then append ``extra``."""
    with tarfile.open(bundle) as old, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as new:
        for member in old.getmembers():
            data = change(member.name, old.extractfile(member).read())
            if data is not None:
                info = tarfile.TarInfo((rename or {}).get(member.name, member.name))
                info.size = len(data)
                new.addfile(info, io.BytesIO(data))
        for name, data in extra:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    return out


def _swap_blob(bundle: Path, out: Path, payload: bytes, *, keep_signature: bool = True) -> Path:
    """Attack 6: replace the first version's blob and write its new SHA-256 and size into the manifest.

    The result is consistent in itself (every blob hashes to what the
    manifest says): only a signature can tell.
    """
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    entry = manifest["versions"][0]
    old_digest = entry["checksum"].removeprefix("sha256:")
    new_digest = hashlib.sha256(payload).hexdigest()
    entry["checksum"], entry["size"] = f"sha256:{new_digest}", len(payload)
    edited = json.dumps(manifest, indent=1).encode()

    def change(name: str, data: bytes) -> bytes | None:
        if name == "manifest.json":
            return edited
        if name == "manifest.sig" and not keep_signature:
            return None
        return payload if name == f"blobs/{old_digest}" else data

    return _rewrite(bundle, out, change, rename={f"blobs/{old_digest}": f"blobs/{new_digest}"})


def _assert_untouched(home: Path) -> None:
    with Registry(home) as reg:
        assert reg.models() == [] and reg.events() == []
    assert blob_files(home) == [] and temp_files(home) == []


# -- the legitimate path -------------------------------------------------------


def test_a_signed_bundle_imports_with_the_trusted_key_and_the_signer_is_recorded(
    signed: Path, target: Path, exporter: KeyPair
) -> None:
    with Registry(target, signing_key=HMAC_KEY) as reg:
        results = reg.import_bundle(signed, trusted_keys=[exporter.public_path])
        assert [(r.target, r.created, r.signer, r.verified) for r in results] == [
            ("churn:1", True, exporter.fingerprint, True),
            ("churn:2", True, exporter.fingerprint, True),
        ]
        assert reg.load("churn:2") == {"weights": [4, 5, 6]}  # signed by the target's HMAC key: it loads
        events = reg.events("churn")
        assert [e.new["bundle"] for e in events] == [{"signer": exporter.fingerprint}] * 2
        assert all(e.new["checksum"].startswith("sha256:") for e in events)
        again = reg.import_bundle(signed, trusted_keys=[exporter.public_path])
        assert [r.created for r in again] == [False, False] and len(reg.events()) == 2


def test_trusted_keys_come_from_a_directory_or_the_environment(
    signed: Path, target: Path, exporter: KeyPair, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trust_dir = keys_dir.parent / "trusted"
    trust_dir.mkdir()
    shutil.copy(exporter.public_path, trust_dir / "exporter.pub")
    (trust_dir / "README").write_text("keys of the teams we take models from\n")  # not a key file: ignored
    with Registry(target) as reg:
        monkeypatch.setenv("MODELSHELF_TRUSTED_KEYS", str(trust_dir))
        assert [r.verified for r in reg.import_bundle(signed)] == [True, True]
        monkeypatch.setenv("MODELSHELF_TRUSTED_KEYS", str(keys_dir / "nothing-here.pub"))
        with pytest.raises(InvalidKey, match="does not exist"):
            reg.import_bundle(signed)


def test_the_cli_signs_with_a_key_from_the_environment_and_imports_with_trust(
    source: Path, target: Path, exporter: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "cli.tar"
    monkeypatch.setenv("MODELSHELF_BUNDLE_KEY", str(exporter.private_path))
    result = _run(source, "export", "churn:1", "-o", str(bundle))
    assert result.exit_code == 0 and f"signed by {exporter.fingerprint}" in result.output
    monkeypatch.delenv("MODELSHELF_BUNDLE_KEY")
    result = _run(target, "import", str(bundle), "--trust", str(exporter.public_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"source": "churn:1", "target": "churn:1", "created": True, "signer": exporter.fingerprint, "verified": True}
    ]
    log = _run(target, "log", "churn")
    assert f"bundle signed by {exporter.fingerprint[:19]}" in log.output


def test_an_explicit_key_wins_over_the_registrys(
    source: Path, tmp_path: Path, exporter: KeyPair, keys_dir: Path
) -> None:
    other = generate_key_pair(keys_dir, "other")
    with Registry(source, bundle_key=exporter.private_path) as reg:
        reg.export_bundle(["churn:1"], tmp_path / "b.tar", sign_with=Ed25519PrivateKey.from_private_bytes(bytes(32)))
        reg.export_bundle(["churn:1"], tmp_path / "c.tar", sign_with=other.private_path)
    with tarfile.open(tmp_path / "b.tar") as tar:
        signature = json.loads(tar.extractfile("manifest.sig").read())
    assert signature["signer"] == fingerprint(Ed25519PrivateKey.from_private_bytes(bytes(32)))
    assert set(signature) == {"kind", "version", "algorithm", "signer", "public_key", "signature"}
    with tarfile.open(tmp_path / "c.tar") as tar:
        assert json.loads(tar.extractfile("manifest.sig").read())["signer"] == other.fingerprint


# -- attacks: the bundle is rewritten on its way --------------------------------


def test_attack_6_a_swapped_blob_with_its_digest_in_the_manifest_is_refused_by_the_cli(
    unsigned: Path, target: Path, tmp_path: Path
) -> None:
    """The issue's attack 6 as it was tried: an unsigned bundle, blob and manifest digest replaced together."""
    marker = tmp_path / "ran"
    evil = _swap_blob(unsigned, tmp_path / "evil.tar", pickle.dumps(Payload(marker)))
    result = CliRunner(env={"MODELSHELF_SIGNING_KEY": HMAC_KEY}).invoke(
        cli, ["--home", str(target), "import", str(evil)], catch_exceptions=False
    )
    assert result.exit_code == 3, result.output
    assert "unsigned" in result.output and "--allow-unsigned" in result.output
    assert len(result.output.strip().splitlines()) == 1
    _assert_untouched(target)
    assert not marker.exists()


@pytest.mark.parametrize("keep_signature", [True, False], ids=["signature-kept", "signature-removed"])
def test_attack_6_on_a_signed_bundle_is_refused_with_or_without_its_signature(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair, keep_signature: bool
) -> None:
    marker = tmp_path / "ran"
    evil = _swap_blob(signed, tmp_path / "evil.tar", pickle.dumps(Payload(marker)), keep_signature=keep_signature)
    with Registry(target, signing_key=HMAC_KEY) as reg:
        with pytest.raises(UntrustedBundle, match="altered after it was signed" if keep_signature else "unsigned"):
            reg.import_bundle(evil, trusted_keys=[exporter.public_path])
    _assert_untouched(target)
    assert not marker.exists()


def test_an_edited_manifest_breaks_the_signature_even_with_allow_unsigned(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair
) -> None:
    def promote(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["versions"][0]["tags"]["approved"] = "yes"  # metadata only: no blob changes
        manifest["versions"][0]["imports"] = []  # and the inventory emptied
        return json.dumps(manifest, indent=1).encode()

    edited = _rewrite(signed, tmp_path / "edited.tar", promote)
    with Registry(target) as reg:
        for allow in (False, True):
            with pytest.raises(UntrustedBundle, match="altered after it was signed") as caught:
                reg.import_bundle(edited, trusted_keys=[exporter.public_path], allow_unsigned=allow)
            assert caught.value.signer == exporter.fingerprint
    _assert_untouched(target)
    assert _run(target, "import", str(edited), "--trust", str(exporter.public_path)).exit_code == 3


def test_a_bundle_re_signed_by_another_key_names_that_signer_and_is_refused(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair, keys_dir: Path
) -> None:
    """The attacker swaps the blob and signs the new manifest with a key of their own."""
    intruder = generate_key_pair(keys_dir, "intruder")
    evil = _swap_blob(signed, tmp_path / "evil.tar", pickle.dumps({"weights": "theirs"}))

    def resign(name: str, data: bytes) -> bytes:
        return sign_manifest(load_private_key(intruder.private_path), manifest) if name == "manifest.sig" else data

    with tarfile.open(evil) as tar:
        manifest = tar.extractfile("manifest.json").read()
    resigned = _rewrite(evil, tmp_path / "resigned.tar", resign)
    with Registry(target, signing_key=HMAC_KEY) as reg:
        with pytest.raises(UntrustedBundle, match=intruder.fingerprint) as caught:
            reg.import_bundle(resigned, trusted_keys=[exporter.public_path])
        assert caught.value.signer == intruder.fingerprint and "--trust" in str(caught.value)
    _assert_untouched(target)
    result = _run(target, "import", str(resigned), "--trust", str(exporter.public_path))
    assert result.exit_code == 3 and "does not trust" in result.output


def test_a_signature_claiming_the_trusted_signer_but_made_by_another_key_is_refused(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair
) -> None:
    """manifest.sig names the trusted fingerprint but carries (and is made with) the intruder's key."""
    intruder = Ed25519PrivateKey.generate()

    def forge(name: str, data: bytes) -> bytes:
        if name != "manifest.sig":
            return data
        document = json.loads(sign_manifest(intruder, manifest))
        document["signer"] = exporter.fingerprint
        return json.dumps(document).encode()

    with tarfile.open(signed) as tar:
        manifest = tar.extractfile("manifest.json").read()
    forged = _rewrite(signed, tmp_path / "forged.tar", forge)
    with Registry(target) as reg:
        with pytest.raises(UntrustedBundle, match="carries the key"):
            reg.import_bundle(forged, trusted_keys=[exporter.public_path], allow_unsigned=True)
    _assert_untouched(target)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-5] + b"!!!}\n",
        lambda d: json.dumps({**json.loads(d), "signature": base64.b64encode(bytes(64)).decode()}).encode(),
        lambda d: json.dumps({**json.loads(d), "version": 2}).encode(),
        lambda d: json.dumps({**json.loads(d), "public_key": "not base64"}).encode(),
    ],
    ids=["not-json", "zero-signature", "unknown-version", "bad-key"],
)
def test_a_mangled_signature_is_refused_even_with_allow_unsigned(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair, mangle: Callable[[bytes], bytes]
) -> None:
    bad = _rewrite(signed, tmp_path / "bad.tar", lambda name, data: mangle(data) if name == "manifest.sig" else data)
    with Registry(target) as reg:
        with pytest.raises(UntrustedBundle):
            reg.import_bundle(bad, trusted_keys=[exporter.public_path], allow_unsigned=True)
    _assert_untouched(target)


def test_nothing_in_the_manifest_is_believed_before_the_signature(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair, keys_dir: Path
) -> None:
    """A manifest built to trip the parser (a bad digest, a huge entry list) is refused for its signer first."""
    intruder = load_private_key(generate_key_pair(keys_dir, "intruder").private_path)
    hostile = json.dumps({"kind": "modelshelf-bundle", "version": 1, "versions": [{"checksum": "../../etc"}]}).encode()

    def replace(name: str, data: bytes) -> bytes:
        return {"manifest.json": hostile, "manifest.sig": sign_manifest(intruder, hostile)}.get(name, data)

    bad = _rewrite(signed, tmp_path / "hostile.tar", replace)
    with Registry(target) as reg, pytest.raises(UntrustedBundle, match="does not trust"):
        reg.import_bundle(bad, trusted_keys=[exporter.public_path])
    _assert_untouched(target)


def test_an_extra_member_is_refused(signed: Path, target: Path, tmp_path: Path, exporter: KeyPair) -> None:
    extra = _rewrite(signed, tmp_path / "extra.tar", extra=(("blobs/" + "0" * 64, b"smuggled"),))
    with Registry(target) as reg:
        with pytest.raises(UntrustedBundle, match="does not list"):
            reg.import_bundle(extra, trusted_keys=[exporter.public_path])
    _assert_untouched(target)
    assert _run(target, "import", str(extra), "--trust", str(exporter.public_path)).exit_code == 3


def test_a_second_manifest_member_cannot_shadow_the_signed_one(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair
) -> None:
    """tarfile answers a name with its last member: a checker and an importer could read different manifests."""
    with tarfile.open(signed) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    manifest["versions"][0]["description"] = "shadow"
    shadowed = _rewrite(signed, tmp_path / "shadow.tar", extra=(("manifest.json", json.dumps(manifest).encode()),))
    with Registry(target) as reg:
        with pytest.raises(UntrustedBundle, match="two members named 'manifest.json'"):
            reg.import_bundle(shadowed, trusted_keys=[exporter.public_path])
    _assert_untouched(target)


def test_a_blob_of_another_size_than_the_signed_manifest_says_is_refused(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair
) -> None:
    grown = _rewrite(signed, tmp_path / "grown.tar", lambda n, d: d + b"\0" if n.startswith("blobs/") else d)
    with Registry(target) as reg:
        with pytest.raises(Exception, match="altered") as caught:
            reg.import_bundle(grown, trusted_keys=[exporter.public_path])
        assert type(caught.value).__name__ == "CorruptedArtifact"
    _assert_untouched(target)


# -- unsigned bundles: refused unless accepted, and the acceptance is recorded --


def test_an_unsigned_bundle_is_refused_unless_accepted_and_the_acceptance_is_recorded(
    unsigned: Path, target: Path
) -> None:
    with Registry(target, signing_key=HMAC_KEY) as reg:
        with pytest.raises(UntrustedBundle, match="unsigned") as caught:
            reg.import_bundle(unsigned)
        assert caught.value.signer is None
    _assert_untouched(target)
    with Registry(target, signing_key=HMAC_KEY) as reg:
        results = reg.import_bundle(unsigned, allow_unsigned=True)
        assert [(r.created, r.signer, r.verified) for r in results] == [(True, None, False)] * 2
        assert [e.new["bundle"] for e in reg.events("churn")] == [{"signer": None, "accepted_unsigned_by": WHO}] * 2
        assert reg.load("churn:1") == {"weights": [1, 2, 3]}  # accepted explicitly: then signed by the target
    log = _run(target, "log", "churn")
    assert f"unverified bundle accepted by {WHO}" in log.output


def test_an_unknown_signer_can_be_accepted_explicitly_and_is_recorded(
    signed: Path, target: Path, tmp_path: Path, exporter: KeyPair
) -> None:
    result = _run(target, "import", str(signed))
    assert result.exit_code == 3 and exporter.fingerprint in result.output
    _assert_untouched(target)
    result = _run(target, "import", str(signed), "--allow-unsigned", "--json")
    assert result.exit_code == 0, result.output
    assert {(r["signer"], r["verified"]) for r in json.loads(result.output)} == {(exporter.fingerprint, False)}
    with Registry(target) as reg:
        assert reg.events("churn")[0].new["bundle"] == {"signer": exporter.fingerprint, "accepted_unsigned_by": WHO}


# -- keys -----------------------------------------------------------------------


def test_keys_generate_writes_a_private_key_only_its_owner_reads_and_never_overwrites(keys_dir: Path) -> None:
    result = run_cli(None, "keys", "generate", "--out", str(keys_dir), "--name", "team", "--json")
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    private, public = Path(made["private"]), Path(made["public"])
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    kind, blob, comment = public.read_text().split()
    assert (kind, comment) == ("ssh-ed25519", "team")
    raw = base64.b64decode(blob)[-32:]  # OpenSSH wire format: the raw key is its last 32 bytes
    assert made["fingerprint"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    for file in (public, private):
        shown = run_cli(None, "keys", "fingerprint", str(file))
        assert shown.exit_code == 0 and shown.output.strip() == made["fingerprint"]
    before = private.read_bytes()
    again = run_cli(None, "keys", "generate", "--out", str(keys_dir), "--name", "team")
    assert again.exit_code == 2 and "never overwritten" in again.output
    assert private.read_bytes() == before


def test_key_files_of_the_wrong_kind_are_refused_with_what_to_do(
    signed: Path, target: Path, exporter: KeyPair, keys_dir: Path, source: Path, tmp_path: Path
) -> None:
    not_a_key = keys_dir / "notes.pub"
    not_a_key.write_text("hello\n")
    with Registry(target) as reg:
        with pytest.raises(InvalidKey, match="private key; trust its public key"):
            reg.import_bundle(signed, trusted_keys=[exporter.private_path])
        with pytest.raises(InvalidKey, match="not a public key"):
            reg.import_bundle(signed, trusted_keys=[not_a_key])
    with Registry(source) as reg, pytest.raises(InvalidKey, match="not a private key"):
        reg.export_bundle(["churn:1"], tmp_path / "x.tar", sign_with=exporter.public_path)
    assert not (tmp_path / "x.tar").exists()
    _assert_untouched(target)
    assert _run(target, "import", str(signed), "--trust", str(not_a_key)).exit_code == 2


def test_an_accepted_unsigned_bundle_gets_the_inventory_of_its_bytes_not_of_its_manifest(
    unsigned: Path, target: Path, tmp_path: Path
) -> None:
    """The manifest's import list is the exporter's word: the target scans what it stores."""
    marker = tmp_path / "ran"
    evil = _swap_blob(unsigned, tmp_path / "evil.tar", pickle.dumps(Payload(marker)))

    def clean_list(name: str, data: bytes) -> bytes | None:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        for entry in manifest["versions"]:
            entry["imports"] = ["sklearn.neighbors._classification.KNeighborsClassifier"]
        return json.dumps(manifest).encode()

    lying = _rewrite(evil, tmp_path / "lying.tar", clean_list)
    with Registry(target) as reg:
        imported = reg.import_bundle(lying, allow_unsigned=True)
        swapped = reg.get(imported[0].target)
        write_text = f"{Path.write_text.__module__}.{Path.write_text.__qualname__}"
        assert write_text in swapped.imports and swapped.imports_scanned
        assert "sklearn.neighbors._classification.KNeighborsClassifier" not in swapped.imports
        assert reg.versions_importing([write_text]) == [swapped]
    assert not marker.exists()


def test_a_blob_that_breaks_after_its_payload_is_not_imported_without_an_inventory(
    unsigned: Path, target: Path, tmp_path: Path
) -> None:
    """CPython's unpickler runs ``posix.system`` before it meets the bad memo reference; the scanner stops.

    Imported with no inventory, the version would never be listed by
    ``audit --deny posix.system``: the import is refused instead.
    """
    from registry import SerializationError

    payload = (
        pickle.PROTO + b"\x04" + pickle.GLOBAL + b"posix\nsystem\n" + pickle.SHORT_BINUNICODE + b"\x04true"
        + pickle.TUPLE1 + pickle.REDUCE + pickle.POP + pickle.BINGET + b"\xfa" + pickle.STOP
    )  # fmt: skip
    swapped = _swap_blob(unsigned, tmp_path / "broken.tar", payload)
    with Registry(target, signing_key=HMAC_KEY) as reg:
        with pytest.raises(SerializationError, match="nothing was imported"):
            reg.import_bundle(swapped, allow_unsigned=True)
    _assert_untouched(target)


def test_the_module_functions_still_work_and_point_at_the_registry_methods(
    source: Path, target: Path, tmp_path: Path, exporter: KeyPair
) -> None:
    from registry import transfer

    path = tmp_path / "old-way.tar"
    with Registry(source) as reg:
        with pytest.warns(DeprecationWarning, match=r"reg\.export_bundle\(\.\.\.\)"):
            exported = transfer.export_bundle(reg, ["churn:2"], path, sign_with=exporter.private_path)
    assert [mv.ref for mv in exported] == ["churn:2"]
    assert transfer.bundle_signer(path) == exporter.fingerprint
    with Registry(target) as reg:
        with pytest.warns(DeprecationWarning, match=r"reg\.import_bundle\(\.\.\.\)"):
            results = transfer.import_bundle(reg, path, trusted_keys=[exporter.public_path])
        assert results == [transfer.Imported("churn:2", "churn:1", True, exporter.fingerprint, True)]
        with pytest.raises(UntrustedBundle), pytest.warns(DeprecationWarning):
            transfer.import_bundle(reg, path)  # the same errors as the method: no trusted key given
