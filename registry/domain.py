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

    ``imports`` lists the globals (``module.name``) the artifact imports when
    unpickled, recorded at registration without unpickling anything, for
    audit; ``None`` for versions registered before modelshelf recorded them.
    ``signature`` is set when the version was registered with a signing key.

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
    imports: tuple[str, ...] | None = None
    signature: str | None = None

    @property
    def ref(self) -> str:
        """The pinned reference of this version, such as ``"iris-knn:3"``."""
        return f"{self.name}:{self.version}"

    @property
    def digest(self) -> str:
        """The bare 64-hex SHA-256 of the artifact (``checksum`` without its prefix)."""
        return self.checksum.removeprefix(CHECKSUM_PREFIX)


@dataclass(frozen=True)
class ModelSummary:
    """One model at a glance: what ``modelshelf models`` lists."""

    name: str
    latest_version: int
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict, hash=False)
    updated_at: datetime | None = None


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


#: Problem kinds that mean a version cannot be trusted or loaded; the others are only waste.
FATAL_PROBLEMS = frozenset({"missing_blob", "checksum_mismatch", "schema"})
PROBLEM_KINDS = FATAL_PROBLEMS | {"orphan_blob", "stale_temp"}


@dataclass(frozen=True)
class Problem:
    """One finding of :meth:`Registry.verify`.

    ``kind`` is one of ``missing_blob``, ``checksum_mismatch``, ``schema``
    (fatal: a version cannot be trusted, or the catalog is damaged) or
    ``orphan_blob``, ``stale_temp`` (waste that ``gc`` removes). ``ref`` names
    the version concerned, when one is.
    """

    kind: str
    detail: str
    ref: str | None = None

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_PROBLEMS


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Registry.verify` found. ``ok`` is true when every live version is intact."""

    problems: list[Problem]
    versions_checked: int
    deep: bool

    @property
    def ok(self) -> bool:
        return not any(problem.fatal for problem in self.problems)


@dataclass(frozen=True)
class GcReport:
    """What :meth:`Registry.gc` removed (or, with ``dry_run``, would remove)."""

    removed: list[str]
    freed_bytes: int
    dry_run: bool
