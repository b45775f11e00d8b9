"""modelshelf: a versioned model registry (import package ``registry``).

The public API is listed here and nowhere else; everything else is internal.
Every error is exported, and every type a public call returns.

>>> from registry import Registry                                       # doctest: +SKIP
>>> reg = Registry("models")                                            # doctest: +SKIP
>>> reg.register("iris-knn", model, metrics={"accuracy": 0.97}).ref     # doctest: +SKIP
'iris-knn:1'
"""

from __future__ import annotations

import typing as _typing

from registry.domain import (
    AliasPeriod,
    CellChange,
    CheckReport,
    Event,
    GcReport,
    Imported,
    InputSignature,
    Lineage,
    MethodCheck,
    MetricPoint,
    ModelSummary,
    ModelVersion,
    PreflightReport,
    PreflightResult,
    Problem,
    RepairReport,
    VerifyReport,
    VersionPage,
)
from registry.errors import (
    AliasNotFound,
    ArtifactTooLarge,
    CanaryMismatch,
    CanaryNotFound,
    CanaryWarning,
    CatalogError,
    CommitOutcomeUnknown,
    CorruptedArtifact,
    DamagedVersion,
    EnvironmentMismatch,
    EnvironmentMismatchWarning,
    InvalidArgument,
    InvalidBundle,
    InvalidCatalogURL,
    InvalidData,
    InvalidFormat,
    InvalidInput,
    InvalidInputSignature,
    InvalidKey,
    InvalidMetric,
    InvalidName,
    InvalidParam,
    InvalidPath,
    InvalidQuery,
    InvalidReference,
    InvalidStep,
    InvalidTag,
    InvalidType,
    MissingDependency,
    ModelNotFound,
    ModelPortabilityWarning,
    NotFound,
    NotPortable,
    PromotionRefused,
    ReadOnlyRegistry,
    RegistryError,
    RegistryNotFound,
    SchemaVersionError,
    SerializationError,
    SignatureMismatch,
    SignatureNotFound,
    StoreError,
    TrustError,
    UnmappableBlob,
    UnsafeArtifact,
    UntrustedArtifact,
    UntrustedBundle,
    UntrustedTypes,
    VersionNotFound,
)
from registry.facade import Registry

if _typing.TYPE_CHECKING:
    from registry.gates import Verdict, canary_passes, environment_matches, no_regression, signed, tagged
    from registry.inputs.validated import ValidatedModel, check_input

    __version__: str

#: Public names whose modules a process that only opens a registry and loads a version does not need:
#: imported on first use (PEP 562), so a cold load pays for neither them nor their imports.
_LAZY = {
    "Verdict": "registry.gates",
    "canary_passes": "registry.gates",
    "environment_matches": "registry.gates",
    "no_regression": "registry.gates",
    "signed": "registry.gates",
    "tagged": "registry.gates",
    "ValidatedModel": "registry.inputs.validated",
    "check_input": "registry.inputs.validated",
}


def __getattr__(name: str) -> _typing.Any:
    import importlib

    if name == "__version__":
        from registry.provenance.environment import package_version

        value: _typing.Any = package_version("modelshelf") or "0+unknown"  # a source tree that was never installed
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | {"__version__"})


__all__ = [
    "AliasNotFound",
    "AliasPeriod",
    "ArtifactTooLarge",
    "CanaryMismatch",
    "CanaryNotFound",
    "CanaryWarning",
    "CatalogError",
    "CellChange",
    "CheckReport",
    "CommitOutcomeUnknown",
    "CorruptedArtifact",
    "DamagedVersion",
    "EnvironmentMismatch",
    "EnvironmentMismatchWarning",
    "Event",
    "GcReport",
    "Imported",
    "InputSignature",
    "InvalidArgument",
    "InvalidBundle",
    "InvalidCatalogURL",
    "InvalidData",
    "InvalidFormat",
    "InvalidInput",
    "InvalidInputSignature",
    "InvalidKey",
    "InvalidMetric",
    "InvalidName",
    "InvalidParam",
    "InvalidPath",
    "InvalidQuery",
    "InvalidReference",
    "InvalidStep",
    "InvalidTag",
    "InvalidType",
    "Lineage",
    "MethodCheck",
    "MetricPoint",
    "MissingDependency",
    "ModelNotFound",
    "ModelPortabilityWarning",
    "ModelSummary",
    "ModelVersion",
    "NotFound",
    "NotPortable",
    "PreflightReport",
    "PreflightResult",
    "Problem",
    "PromotionRefused",
    "ReadOnlyRegistry",
    "Registry",
    "RegistryError",
    "RegistryNotFound",
    "RepairReport",
    "SchemaVersionError",
    "SerializationError",
    "SignatureMismatch",
    "SignatureNotFound",
    "StoreError",
    "TrustError",
    "UnmappableBlob",
    "UnsafeArtifact",
    "UntrustedArtifact",
    "UntrustedBundle",
    "UntrustedTypes",
    "ValidatedModel",
    "Verdict",
    "VerifyReport",
    "VersionNotFound",
    "VersionPage",
    "canary_passes",
    "check_input",
    "environment_matches",
    "no_regression",
    "signed",
    "tagged",
]
