"""modelshelf: a versioned model registry (import package ``registry``).

The public API is listed here and nowhere else; everything else is internal.
Every error is exported, and every type a public call returns.

>>> from registry import Registry                                       # doctest: +SKIP
>>> reg = Registry("models")                                            # doctest: +SKIP
>>> reg.register("iris-knn", model, metrics={"accuracy": 0.97}).ref     # doctest: +SKIP
'iris-knn:1'
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from registry.domain import (
    AliasPeriod,
    Event,
    GcReport,
    Imported,
    InputSignature,
    Lineage,
    MetricPoint,
    ModelSummary,
    ModelVersion,
    Problem,
    RepairReport,
    VerifyReport,
    VersionPage,
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
    UnsafeArtifact,
    UntrustedArtifact,
    UntrustedBundle,
    UntrustedTypes,
    VersionNotFound,
)
from registry.facade import Registry
from registry.gates import Verdict, canary_passes, environment_matches, no_regression, signed, tagged
from registry.inputs.validated import ValidatedModel, check_input

try:
    __version__ = _version("modelshelf")
except _PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

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
    "MetricPoint",
    "MissingDependency",
    "ModelNotFound",
    "ModelPortabilityWarning",
    "ModelSummary",
    "ModelVersion",
    "NotFound",
    "NotPortable",
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
