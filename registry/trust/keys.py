"""Ed25519 key pairs that say who wrote a bundle, checked by the registry that imports it.

The HMAC of :mod:`registry.trust.signing` proves a version to whoever holds the
same secret, so it cannot cross from one registry to another without
handing the secret over. A bundle travels between parties who share
nothing but a public key: the exporting registry signs the manifest with
its private key, the importing one checks the signature against the public
keys it was told to trust.

What is signed is the exact bytes of ``manifest.json``, after a domain
prefix (so a signature made here can never be replayed as one over some
other kind of message). The manifest lists every blob's SHA-256 and size,
so no byte of a bundle can change without the signature failing. The
signature travels as the member ``manifest.sig``, JSON::

    {"kind": "modelshelf-bundle-signature", "version": 1, "algorithm": "ed25519",
     "signer": "sha256:<hex>", "public_key": "<base64 of 32 bytes>", "signature": "<base64 of 64 bytes>"}

``signer`` is a key's fingerprint: the SHA-256 of its 32 raw public bytes.
The public key itself is carried so that a signature can be checked for
what it is even when its signer is not trusted (a mangled signature is a
tampered bundle, never merely an unknown one); trust is decided by the
fingerprint alone, against keys the importer holds.

Keys are files: the private key as PKCS8 PEM (mode 0600, written once and
never overwritten), the public key in OpenSSH's one-line form (PEM is
accepted as well), so ``ssh-keygen -lf`` and this module read the same file.
:func:`generate_key_pair` also makes ECDSA P-256 pairs (public key in PEM),
the kind the OpenSSF model-signing tool signs with (:mod:`registry.openssf`);
bundles are signed with Ed25519 only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from registry.digests import checksum_of
from registry.errors import InvalidKey, UntrustedBundle

BUNDLE_KEY_VARIABLE = "MODELSHELF_BUNDLE_KEY"
TRUSTED_KEYS_VARIABLE = "MODELSHELF_TRUSTED_KEYS"
SIGNATURE_KIND = "modelshelf-bundle-signature"
SIGNATURE_VERSION = 1
DEFAULT_KEY_NAME = "modelshelf-bundle"
_DOMAIN = b"modelshelf-bundle-signature-v1\n"
_MAX_KEY_FILE = 64 * 1024
_MAX_SIGNATURE_FILE = 64 * 1024
_PUBLIC_SUFFIXES = (".pub", ".pem")
#: The kinds of key pair :func:`generate_key_pair` makes: Ed25519 signs bundles, P-256 model-signing signatures.
ALGORITHMS = ("ed25519", "ecdsa-p256")

PrivateKeySource = str | os.PathLike[str] | Ed25519PrivateKey
PublicKeySource = str | os.PathLike[str] | Ed25519PublicKey


@dataclass(frozen=True)
class KeyPair:
    """Where :func:`generate_key_pair` wrote a key pair, and the public key's fingerprint."""

    private_path: Path
    public_path: Path
    fingerprint: str


AnyKey = Ed25519PublicKey | Ed25519PrivateKey | ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey


def fingerprint(key: AnyKey) -> str:
    """The ``"sha256:<hex>"`` name of a key: the SHA-256 of its raw public bytes.

    For Ed25519 those are its 32 bytes; for an elliptic-curve key, its
    uncompressed point.

    Names the signer in messages and in the audit trail without printing the key.

    >>> fingerprint(Ed25519PrivateKey.from_private_bytes(bytes(32)))[:15]
    'sha256:139e3940'
    """
    public = key.public_key() if isinstance(key, (Ed25519PrivateKey, ec.EllipticCurvePrivateKey)) else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        raw = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    else:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return checksum_of(hashlib.sha256(raw).hexdigest())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (no moment of wider permissions), refusing to replace it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def generate_key_pair(
    directory: str | os.PathLike[str] = ".", name: str = DEFAULT_KEY_NAME, algorithm: str = "ed25519"
) -> KeyPair:
    """Create ``NAME.pem`` (private, 0600) and ``NAME.pub`` (public) in ``directory``.

    ``algorithm`` is ``"ed25519"`` (public key in OpenSSH form; signs
    bundles) or ``"ecdsa-p256"`` (public key in PEM; for model-signing).

    An existing file of either name is never overwritten (a key that signed
    bundles is an identity; losing it silently would orphan every trust
    given to it): :class:`InvalidKey` says which file is in the way.
    """
    if algorithm not in ALGORITHMS:
        raise InvalidKey(f"unknown key algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if not isinstance(name, str) or not name or "/" in name or name.startswith(".") or "\x00" in name:
        raise InvalidKey(f"key name {name!r} must be a plain file name such as {DEFAULT_KEY_NAME!r}")
    folder = Path(os.fspath(directory))
    if not folder.is_dir():
        raise InvalidKey(f"{folder} is not a directory; create it or give another --out")
    private_path, public_path = folder / f"{name}.pem", folder / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise InvalidKey(f"{path} already exists; keys are never overwritten: give another --name or --out")
    key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "ed25519":
        key = Ed25519PrivateKey.generate()
        ssh = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        public = ssh + f" {name}\n".encode()
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_new(private_path, private, 0o600)
    try:
        _write_new(public_path, public, 0o644)
    except BaseException:
        private_path.unlink()
        raise
    return KeyPair(private_path, public_path, fingerprint(key))


def _read_key_file(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise InvalidKey(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    if len(data) > _MAX_KEY_FILE:
        raise InvalidKey(f"{path} is larger than any key file ({_MAX_KEY_FILE} bytes); is it the right file?")
    return data


def load_private_key(source: PrivateKeySource) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM (PKCS8 or OpenSSH) file, or the key object itself."""
    if isinstance(source, Ed25519PrivateKey):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidKey(f"a bundle key is the path of a private key file, not {type(source).__name__}")
    path = Path(os.fspath(source))
    data = _read_key_file(path)
    key: PrivateKeyTypes
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InvalidKey(f"{path} is encrypted; modelshelf reads unencrypted keys (keep the file mode 0600)") from None
    except (ValueError, binascii.Error) as exc:
        raise InvalidKey(f"{path} is not a private key ({exc}); make one with `modelshelf keys generate`") from None
    except Exception as exc:  # cryptography raises its own UnsupportedAlgorithm for unknown key types
        raise InvalidKey(f"{path} is not a usable private key ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidKey(f"{path} holds a {type(key).__name__}; bundles are signed with Ed25519 keys only")
    return key


def bundle_signing_key(source: PrivateKeySource | None) -> Ed25519PrivateKey | None:
    """The key exports are signed with: ``source``, else the file ``$MODELSHELF_BUNDLE_KEY`` names, else none."""
    if source is None:
        source = os.environ.get(BUNDLE_KEY_VARIABLE) or None
    return None if source is None else load_private_key(source)


def load_public_key(source: PublicKeySource) -> Ed25519PublicKey:
    """The Ed25519 public key in a file (OpenSSH one-line or PEM), or the key object itself.

    A private key file is refused rather than quietly reduced to its public
    half: it should not be lying where trusted keys are kept.
    """
    if isinstance(source, Ed25519PublicKey):
        return source
    if isinstance(source, Ed25519PrivateKey):
        raise InvalidKey("trust a public key, not a private one: give key.public_key() or the .pub file")
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidKey(f"a trusted key is the path of a public key file, not {type(source).__name__}")
    path = Path(os.fspath(source))
    data = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        raise InvalidKey(f"{path} is a private key; trust its public key (the .pub file) and keep this one secret")
    key: PublicKeyTypes
    try:
        if data.lstrip().startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, binascii.Error) as exc:
        raise InvalidKey(
            f"{path} is not a public key ({exc}); give the .pub file `modelshelf keys generate` wrote"
        ) from None
    except Exception as exc:
        raise InvalidKey(f"{path} is not a usable public key ({type(exc).__name__}: {exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKey(f"{path} holds a {type(key).__name__}; bundles are signed with Ed25519 keys only")
    return key


def key_file_fingerprint(path: str | os.PathLike[str]) -> str:
    """The fingerprint of the public key in, or of, a key file: public or private, Ed25519 or elliptic-curve.

    What `modelshelf keys fingerprint` prints, to compare over another channel.
    """
    source = Path(os.fspath(path))
    data = _read_key_file(source)
    key: PublicKeyTypes | PrivateKeyTypes
    try:
        if data.lstrip().startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(data.strip())
        elif b"BEGIN OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        elif b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_pem_public_key(data)
    except TypeError:
        raise InvalidKey(f"{source} is encrypted; modelshelf reads unencrypted keys") from None
    except Exception as exc:  # ValueError, binascii.Error or cryptography's UnsupportedAlgorithm
        raise InvalidKey(f"{source} is not a key file ({type(exc).__name__}: {exc})") from None
    if not isinstance(
        key, (Ed25519PublicKey, Ed25519PrivateKey, ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)
    ):
        raise InvalidKey(f"{source} holds a {type(key).__name__}; modelshelf uses Ed25519 and ECDSA keys")
    return fingerprint(key)


def _key_files(path: Path) -> list[Path]:
    """The public key files a trusted-keys entry names: the file itself, or a directory's .pub and .pem files."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in _PUBLIC_SUFFIXES and p.is_file())
    if not path.exists():
        raise InvalidKey(f"the trusted key {path} does not exist")
    return [path]


def trusted_public_keys(sources: Iterable[PublicKeySource] | None) -> dict[str, Ed25519PublicKey]:
    """The keys an import trusts, by fingerprint: ``sources``, else ``$MODELSHELF_TRUSTED_KEYS``, else none.

    The variable holds directories or files separated by ``os.pathsep``; a
    directory contributes each of its ``*.pub`` and ``*.pem`` files. Every
    file named must be a public key: one that is not is an error, never
    skipped, so a misplaced file cannot change what is trusted unnoticed.
    """
    if sources is None:
        listed = os.environ.get(TRUSTED_KEYS_VARIABLE) or ""
        sources = [Path(part) for part in listed.split(os.pathsep) if part]
    elif isinstance(sources, (str, os.PathLike, Ed25519PublicKey)):
        sources = [sources]
    trusted: dict[str, Ed25519PublicKey] = {}
    for source in sources:
        if isinstance(source, (str, os.PathLike)):
            files: list[PublicKeySource] = list(_key_files(Path(os.fspath(source))))
        else:
            files = [source]
        for item in files:
            key = load_public_key(item)
            trusted[fingerprint(key)] = key
    return trusted


def _message(manifest: bytes) -> bytes:
    return _DOMAIN + manifest


def sign_manifest(key: Ed25519PrivateKey, manifest: bytes) -> bytes:
    """The ``manifest.sig`` member for the exact ``manifest`` bytes (see the module docstring)."""
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    document = {
        "kind": SIGNATURE_KIND,
        "version": SIGNATURE_VERSION,
        "algorithm": "ed25519",
        "signer": fingerprint(key),
        "public_key": base64.b64encode(public).decode(),
        "signature": base64.b64encode(key.sign(_message(manifest))).decode(),
    }
    return json.dumps(document, indent=1).encode() + b"\n"


def _decode(document: dict[str, object], field: str, length: int) -> bytes:
    value = document.get(field)
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != length:
        raise ValueError(f"its {field} is not {length} bytes of base64")
    return raw


def check_signature(signature_file: bytes, manifest: bytes, where: str = "the bundle") -> str:
    """The fingerprint of the key that signed ``manifest``, after checking the signature against it.

    Proves only that the manifest is intact under *some* key; whether that
    key is trusted is the caller's decision (:func:`trusted_public_keys`).
    A signature that cannot be read or does not match raises
    :class:`UntrustedBundle`: the bundle was altered after it was signed.
    """
    if len(signature_file) > _MAX_SIGNATURE_FILE:
        raise UntrustedBundle(f"{where}: manifest.sig is {len(signature_file)} bytes, too large for a signature")
    claimed = None
    try:
        document = json.loads(signature_file)
        if not isinstance(document, dict) or document.get("kind") != SIGNATURE_KIND:
            raise ValueError(f"it is not a {SIGNATURE_KIND}")
        claimed = document.get("signer") if isinstance(document.get("signer"), str) else None
        if document.get("version") != SIGNATURE_VERSION or document.get("algorithm") != "ed25519":
            raise ValueError(
                f"it is version {document.get('version')!r} with {document.get('algorithm')!r}; this modelshelf "
                f"reads version {SIGNATURE_VERSION} with ed25519 (upgrade modelshelf if the bundle is newer)"
            )
        public = Ed25519PublicKey.from_public_bytes(_decode(document, "public_key", 32))
        signature = _decode(document, "signature", 64)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UntrustedBundle(
            f"{where} has a manifest.sig that cannot be read ({exc}); nothing was imported. Ask the "
            "exporter for a new bundle",
            signer=claimed,
        ) from None
    signer = fingerprint(public)
    if claimed != signer:
        raise UntrustedBundle(
            f"{where}: manifest.sig names the signer {claimed} but carries the key {signer}; it was altered, "
            "nothing was imported",
            signer=claimed,
        )
    try:
        public.verify(signature, _message(manifest))
    except InvalidSignature:
        raise UntrustedBundle(
            f"{where} was altered after it was signed: the signature of {signer} does not match its manifest; "
            "nothing was imported. Ask the exporter for a new bundle",
            signer=signer,
        ) from None
    return signer
