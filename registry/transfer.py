"""Deprecated: bundle export and import are :class:`~registry.facade.Registry` methods now.

``export_bundle(reg, ...)`` and ``import_bundle(reg, ...)`` keep working for
one release and warn :class:`DeprecationWarning`; call
``reg.export_bundle(...)`` and ``reg.import_bundle(...)`` instead. The
format itself is described in :mod:`registry.bundles`; ``Imported`` lives in
:mod:`registry.domain` and ``bundle_signer`` in
:mod:`registry.bundles.checks` (both still importable from here).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from registry.bundles.checks import bundle_signer as bundle_signer
from registry.domain import Imported as Imported
from registry.domain import ModelVersion
from registry.facade import Registry

if TYPE_CHECKING:
    from registry.trust.keys import PrivateKeySource, PublicKeySource


def _deprecated(name: str) -> None:
    warnings.warn(
        f"registry.transfer.{name}(reg, ...) is deprecated and will be removed in the next release; "
        f"call reg.{name}(...) on the Registry instead",
        DeprecationWarning,
        stacklevel=3,
    )


def export_bundle(
    reg: Registry,
    refs: list[str],
    path: str | os.PathLike[str],
    *,
    sign_with: PrivateKeySource | None = None,
) -> list[ModelVersion]:
    """Deprecated: :meth:`Registry.export_bundle` (same arguments, same result and errors)."""
    _deprecated("export_bundle")
    return reg.export_bundle(refs, path, sign_with=sign_with)


def import_bundle(
    reg: Registry,
    path: str | os.PathLike[str],
    *,
    trusted_keys: Iterable[PublicKeySource] | None = None,
    allow_unsigned: bool = False,
) -> list[Imported]:
    """Deprecated: :meth:`Registry.import_bundle` (same arguments, same result and errors)."""
    _deprecated("import_bundle")
    return reg.import_bundle(path, trusted_keys=trusted_keys, allow_unsigned=allow_unsigned)
