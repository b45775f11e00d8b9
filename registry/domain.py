"""The values modelshelf hands to callers: plain, immutable, stdlib only.

These types are what the catalog returns and what the public API documents;
they carry no database session or file handle, so they can be kept, pickled
and compared freely after the registry that produced them is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CHECKSUM_PREFIX = "sha256:"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: its metadata, never its object.

    >>> mv = reg.register("iris-knn", model, metrics={"accuracy": 0.97})  # doctest: +SKIP
    >>> mv.ref, mv.checksum[:7]                                            # doctest: +SKIP
    ('iris-knn:1', 'sha256:')
    """

    name: str
    version: int
    checksum: str
    size: int
    format: str
    created_at: datetime
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    metrics: dict[str, float] = field(default_factory=dict, hash=False)
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    description: str | None = None
    environment: dict[str, Any] = field(default_factory=dict, hash=False)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The pinned reference of this version, such as ``"iris-knn:3"``."""
        return f"{self.name}:{self.version}"

    @property
    def digest(self) -> str:
        """The bare 64-hex SHA-256 of the artifact (``checksum`` without its prefix)."""
        return self.checksum.removeprefix(CHECKSUM_PREFIX)


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of one metric of one version.

    ``step`` is ``None`` for values given at registration or logged without a
    step; ``timestamp`` is timezone-aware UTC.
    """

    version: int
    key: str
    value: float
    step: int | None
    timestamp: datetime


@dataclass(frozen=True)
class Ref:
    """A parsed reference: a model name and at most one of version or alias.

    ``version=None`` and ``alias=None`` mean the latest live version.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
