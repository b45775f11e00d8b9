"""modelshelf: a versioned model registry (import package ``registry``).

The public API is listed here and nowhere else; everything else is internal.

>>> from registry import Registry                                       # doctest: +SKIP
>>> reg = Registry("models")                                            # doctest: +SKIP
>>> reg.register("iris-knn", model, metrics={"accuracy": 0.97}).ref     # doctest: +SKIP
'iris-knn:1'
"""

from __future__ import annotations

from registry.domain import GcReport, MetricPoint, ModelVersion, Problem, VerifyReport
from registry.errors import (
    AliasNotFound,
    CatalogError,
    CorruptedArtifact,
    EnvironmentMismatch,
    EnvironmentMismatchWarning,
    InvalidName,
    InvalidReference,
    ModelNotFound,
    RegistryError,
    SchemaVersionError,
    SerializationError,
    StoreError,
    UnsafeArtifact,
    UntrustedArtifact,
    UntrustedTypes,
    VersionNotFound,
)
from registry.facade import Registry

__all__ = [
    "AliasNotFound",
    "CatalogError",
    "CorruptedArtifact",
    "EnvironmentMismatch",
    "EnvironmentMismatchWarning",
    "GcReport",
    "InvalidName",
    "InvalidReference",
    "MetricPoint",
    "ModelNotFound",
    "ModelVersion",
    "Problem",
    "Registry",
    "RegistryError",
    "SchemaVersionError",
    "SerializationError",
    "StoreError",
    "UnsafeArtifact",
    "UntrustedArtifact",
    "UntrustedTypes",
    "VerifyReport",
    "VersionNotFound",
]
