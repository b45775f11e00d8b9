"""Exported versions that anyone can verify without modelshelf: the OpenSSF model-signing format.

A modelshelf bundle is checked by the modelshelf that imports it. A serving
platform, an auditor or a supply-chain scanner rarely runs modelshelf, but
may run the OpenSSF ``model_signing`` tool. For them each version is
written as a directory that tool signs and verifies::

    DIR/churn-3/model.joblib      the artifact, byte for byte as registered (verified on the way out)
    DIR/churn-3/modelshelf.json   name, version, checksum, format, creation time, params
    DIR/churn-3/model.sig         a Sigstore bundle over both files, signed with an elliptic-curve key

and then, with nothing of modelshelf installed::

    model_signing verify key DIR/churn-3 --signature DIR/churn-3/model.sig --public_key KEY.pub

The signature is made through the ``model_signing`` package's own API
(install ``modelshelf[model-signing]``) with its "key" method, which takes
ECDSA keys on P-256, P-384 or P-521, not Ed25519: make one with
``modelshelf keys generate --algorithm ecdsa-p256``. No transparency log or
network is involved. Each directory is written under a temporary name and
renamed into place once signed, so a directory of that name is either
complete or absent; an existing one is never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import InvalidArgument, InvalidKey, RegistryError
from registry.facade import Registry

SIGNATURE_FILE = "model.sig"
METADATA_FILE = "modelshelf.json"
_EXTENSIONS = {"joblib": ".joblib", "pickle": ".pkl", "skops": ".skops"}


@dataclass(frozen=True)
class SignedModel:
    """One version written for model-signing: its ref, its directory and the signature file in it."""

    ref: str
    directory: Path
    signature: Path


def _model_signing() -> tuple[Any, Any]:
    try:
        from model_signing import hashing, signing
    except ImportError as exc:
        raise RegistryError(
            f"the model-signing package is not usable here ({exc}); install it with "
            "`pip install 'modelshelf[model-signing]'`"
        ) from None
    return hashing, signing


def export_model_signed(
    reg: Registry, refs: list[str], directory: str | os.PathLike[str], key: str | os.PathLike[str]
) -> list[SignedModel]:
    """Write each version ``refs`` designate to ``directory/NAME-VERSION/``, signed with the EC ``key`` file.

    See the module docstring for the layout and how to verify it.
    """
    if not refs:
        raise InvalidArgument("name at least one version to export (for example 'iris-knn:3')")
    hashing, signing = _model_signing()
    key_path = Path(os.fspath(key))
    _check_ec_key(key_path)
    folder = Path(os.fspath(directory))
    folder.mkdir(parents=True, exist_ok=True)
    versions = list({mv.ref: mv for mv in (reg.get(ref) for ref in refs)}.values())
    for mv in versions:
        final = folder / f"{mv.name}-{mv.version}"
        if final.exists() or final.is_symlink():
            raise RegistryError(f"{final} already exists; remove it or export into another directory")
    written = []
    for mv in versions:
        final = folder / f"{mv.name}-{mv.version}"
        temp = folder / f".{final.name}.{os.getpid()}.tmp"
        try:
            temp.mkdir()
            reg.fetch(mv.ref, temp / f"model{_EXTENSIONS.get(mv.format, '.bin')}")  # hashed while copied
            metadata = {
                "name": mv.name,
                "version": mv.version,
                "checksum": mv.checksum,
                "format": mv.format,
                "created_at": mv.created_at.isoformat(),
                "params": mv.params,
            }
            (temp / METADATA_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True) + "\n")
            config = hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=False)
            signer = signing.Config().use_elliptic_key_signer(private_key=key_path)
            signer.set_hashing_config(config).sign(temp, temp / SIGNATURE_FILE)
            temp.rename(final)
        finally:
            if temp.exists():
                shutil.rmtree(temp)
        written.append(SignedModel(mv.ref, final, final / SIGNATURE_FILE))
    return written


def _check_ec_key(path: Path) -> None:
    """Refuse an Ed25519 (or any non-EC) key up front, with what to make instead."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, TypeError, ValueError) as exc:
        raise InvalidKey(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        kind = type(key).__name__.removesuffix("PrivateKey")
        raise InvalidKey(
            f"{path} holds a {kind} key; model-signing signs with ECDSA P-256/384/521 keys: make one with "
            "`modelshelf keys generate --algorithm ecdsa-p256`"
        )
