"""modelshelf: a versioned model registry (import package ``registry``).

The public API is listed here and nowhere else; everything else is internal.

>>> from registry import Registry                                       # doctest: +SKIP
>>> reg = Registry("models")                                            # doctest: +SKIP
>>> reg.register("iris-knn", model, metrics={"accuracy": 0.97}).ref     # doctest: +SKIP
'iris-knn:1'
"""

from __future__ import annotations

from registry.domain import (
    AliasPeriod,
    Event,
    GcReport,
    InputSignature,
    Lineage,
    MetricPoint,
    ModelVersion,
    Problem,
    RepairReport,
    VerifyReport,
)
from registry.errors import (
    AliasNotFound,
    ArtifactTooLarge,
    CatalogError,
    CommitOutcomeUnknown,
    CorruptedArtifact,
    DamagedVersion,
    EnvironmentMismatch,
    EnvironmentMismatchWarning,
    InvalidBundle,
    InvalidKey,
    InvalidName,
    InvalidQuery,
    InvalidReference,
    ModelNotFound,
    RegistryError,
    SchemaVersionError,
    SerializationError,
    SignatureMismatch,
    SignatureNotFound,
    StoreError,
    UnsafeArtifact,
    UntrustedArtifact,
    UntrustedBundle,
    UntrustedTypes,
    VersionNotFound,
)
from registry.facade import Registry
from registry.inputs.validated import ValidatedModel, check_input

__all__ = [
    "AliasNotFound",
    "AliasPeriod",
    "ArtifactTooLarge",
    "CatalogError",
    "CommitOutcomeUnknown",
    "CorruptedArtifact",
    "DamagedVersion",
    "EnvironmentMismatch",
    "EnvironmentMismatchWarning",
    "Event",
    "GcReport",
    "InputSignature",
    "InvalidBundle",
    "InvalidKey",
    "InvalidName",
    "InvalidQuery",
    "InvalidReference",
    "Lineage",
    "MetricPoint",
    "ModelNotFound",
    "ModelVersion",
    "Problem",
    "Registry",
    "RegistryError",
    "RepairReport",
    "SchemaVersionError",
    "SerializationError",
    "SignatureMismatch",
    "SignatureNotFound",
    "StoreError",
    "UnsafeArtifact",
    "UntrustedArtifact",
    "UntrustedBundle",
    "UntrustedTypes",
    "ValidatedModel",
    "VerifyReport",
    "VersionNotFound",
    "check_input",
]
