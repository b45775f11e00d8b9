"""The values modelshelf hands to callers: plain, immutable, stdlib only.

These types are what the catalog returns and what the public API documents;
they carry no database session or file handle, so they can be kept, pickled
and compared freely after the registry that produced them is closed.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from registry.digests import CHECKSUM_PREFIX as CHECKSUM_PREFIX  # where it lived before digests.py
from registry.digests import digest_of


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model: its metadata, never its object.

    ``imports`` lists the globals (``module.name``) the artifact imports when
    unpickled, recorded at registration without unpickling anything, for
    audit; ``None`` for versions registered before modelshelf recorded them.
    ``imports_scanned`` is true when that list was read from the artifact's
    bytes by the scanner (every version registered since the scanner
    exists): only then does ``load(..., safe=True)`` refuse a global the
    list does not name, since older lists missed nested pickles.
    ``hmac`` is the HMAC set when the version was registered with a signing
    key (``None`` without one); it was called ``signature``, a name now kept
    only as a deprecated alias, since "signature" also means the input
    schema (``input_signature``, ``register(signature=…)``). ``lineage`` says where the version came from and
    ``input_signature`` what input it takes; both are ``None`` for versions
    registered before modelshelf recorded them. ``blake3`` is the artifact's
    BLAKE3 (bare hex), its fast verification digest: loads verify it instead
    of the SHA-256 ``checksum``, which stays the artifact's identity; ``None``
    for versions registered before it was recorded.

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
    hmac: str | None = None
    imports_scanned: bool = False
    lineage: Lineage | None = None
    input_signature: InputSignature | None = None
    blake3: str | None = None

    @property
    def ref(self) -> str:
        """The pinned reference of this version, such as ``"iris-knn:3"``."""
        return f"{self.name}:{self.version}"

    @property
    def signature(self) -> str | None:
        """Deprecated: the HMAC, now :attr:`hmac` ("signature" names the input schema elsewhere)."""
        warnings.warn(
            "ModelVersion.signature is deprecated and will be removed in the next release; "
            "read ModelVersion.hmac instead (the same HMAC)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.hmac

    @property
    def digest(self) -> str:
        """The bare 64-hex SHA-256 of the artifact (``checksum`` without its prefix).

        Not checked here: the store checks it before using it as a name.
        """
        return digest_of(self.checksum, check=False)


@dataclass(frozen=True)
class Lineage:
    """Where a version came from, recorded automatically at registration.

    ``git_commit`` and ``git_dirty`` describe the git work tree the
    registering code ran in (``None`` outside one); ``script`` is the script
    or notebook path; ``data`` is the fingerprint (``"sha256:…"``) of the
    training data given as ``register(..., data=…)``, with its shape and
    column names; ``parent`` the version it was derived from (``"name:3"``).

    >>> mv.lineage.git_commit[:7], mv.lineage.parent                  # doctest: +SKIP
    ('3f2a9c1', 'iris-knn:2')
    """

    git_commit: str | None = None
    git_dirty: bool | None = None
    script: str | None = None
    user: str | None = None
    host: str | None = None
    modelshelf_version: str | None = None
    data: str | None = None
    data_shape: tuple[int, ...] | None = None
    data_columns: tuple[str, ...] | None = None
    parent: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form ``--json`` prints and bundles carry (keys are only ever added)."""
        return _json_form(self)


@dataclass(frozen=True)
class InputSignature:
    """What input a model takes, so a caller can check data before predicting.

    ``n_features`` columns, named ``feature_names`` when the model was fitted
    on named columns; ``dtypes`` holds one numpy dtype name per column when
    known (from ``input_example=`` or ``data=``); ``classes`` the labels a
    classifier predicts; ``output`` the kind of output (``"classification"``,
    ``"regression"``, ``"transform"``, ``"clustering"``, ``"outlier"`` or
    ``None``). ``example`` keeps a few rows of the input example, as lists.

    >>> mv.input_signature.n_features, mv.input_signature.classes      # doctest: +SKIP
    (4, (0, 1, 2))
    """

    n_features: int | None = None
    feature_names: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    classes: tuple[Any, ...] | None = None
    output: str | None = None
    example: tuple[tuple[Any, ...], ...] | None = field(default=None, hash=False)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form the catalog stores and ``--json`` prints: tuples become lists, keys only grow.

        >>> InputSignature(n_features=2, classes=(0, 1)).to_json()["classes"]
        [0, 1]
        """
        return _json_form(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> InputSignature | None:
        """The inverse of :meth:`to_json`; keys written by a newer modelshelf are ignored.

        >>> InputSignature.from_json({"n_features": 2, "classes": [0, 1], "added_later": 1}).classes
        (0, 1)
        """
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"a stored input signature must be a JSON object, not {type(data).__name__}")
        return cls(**{f.name: _nested(data.get(f.name), tuple) for f in fields(cls)})


def _json_form(record: Any) -> dict[str, Any]:
    """A dataclass of plain values as JSON: every field, tuples as lists at any depth."""
    return {f.name: _nested(getattr(record, f.name), list) for f in fields(record)}


def _nested(value: Any, container: type) -> Any:
    """Lists and tuples, at any depth (multi-output ``classes``, example rows), as ``container``."""
    if isinstance(value, (list, tuple)):
        return container(_nested(item, container) for item in value)
    return value


#: The actions an :class:`Event` records.
EVENT_ACTIONS = (
    "register",
    "alias.set",
    "alias.move",
    "alias.delete",
    "tags.set",
    "metrics.log",
    "version.delete",
    "version.damage",
    "version.heal",
    "state.seal",
    "alias.promote",
    "alias.refuse",
    "alias.protect",
    "alias.unprotect",
    "serve.swap_refused",
)


@dataclass(frozen=True)
class Event:
    """One entry of the audit trail: a change to the catalog, appended in the change's own transaction.

    ``action`` is one of :data:`EVENT_ACTIONS`; ``old`` and ``new`` are the
    values before and after (a version number for alias moves, a ``{key:
    value}`` dict for tags and metrics, ``None`` where there was nothing).
    Events are never updated or deleted by modelshelf.
    """

    id: int
    at: datetime
    action: str
    model: str
    version: int | None = None
    alias: str | None = None
    old: Any = field(default=None, hash=False)
    new: Any = field(default=None, hash=False)
    user: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class AliasPeriod:
    """A stretch of time during which an alias pointed at one version.

    ``until`` is ``None`` while it still does. ``set_by`` is the user who
    pointed the alias there.
    """

    model: str
    alias: str
    version: int
    since: datetime
    until: datetime | None = None
    set_by: str | None = None

    def covers(self, moment: datetime) -> bool:
        """Whether the alias pointed at this version at ``moment`` (timezone-aware)."""
        return self.since <= moment and (self.until is None or moment < self.until)


@dataclass(frozen=True)
class ModelSummary:
    """One model at a glance: what ``modelshelf models`` lists.

    ``updated_at`` is the time of the model's last change of any kind (a
    version registered or deleted, an alias or tags changed, metrics
    logged): its newest audit event.
    """

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
FATAL_PROBLEMS = frozenset(
    {
        "missing_blob",
        "checksum_mismatch",
        "size_mismatch",
        "invalid_digest",
        "damaged",
        "schema",
        "trail_broken",
        "trail_mismatch",
        "state_unsealed",
        "state_mismatch",
        "rolled_back",
        "signature_mismatch",
        "unsigned",
        "inventory_index",
        "metric_index",
        "symlink",
        "canary_mismatch",
    }
)
PROBLEM_KINDS = FATAL_PROBLEMS | {"orphan_blob", "stale_temp", "legacy_signature"}


@dataclass(frozen=True)
class Problem:
    """One finding of :meth:`Registry.verify`.

    ``kind`` is one of ``missing_blob``, ``checksum_mismatch`` (same size,
    other SHA-256), ``size_mismatch``, ``invalid_digest`` (the catalog row's
    digest is not 64 hex characters), ``damaged`` (marked by ``repair``,
    until healed), ``schema``,
    ``trail_broken`` (the audit trail was edited), ``trail_mismatch`` (an
    alias or deletion the trail does not tell of), ``inventory_index``,
    ``metric_index`` (a metric row's copy of its version's model or number
    disagrees with the version: pages and histories would misorder), and
    with a signing key ``state_unsealed``, ``state_mismatch`` (a model's
    aliases, deletions, latest or metrics are not its sealed state),
    ``rolled_back`` (its sealed state is older than one this client saw),
    ``signature_mismatch``, ``unsigned``, ``canary_mismatch`` (a prediction
    canary without a matching MAC, or unreadable), ``symlink`` (a link where a
    directory or blob of the store belongs; fatal: a version cannot be trusted,
    or the catalog or store is damaged); or ``legacy_signature`` (a v1 signature, which
    does not cover the import inventory), ``orphan_blob``, ``stale_temp``
    (waste that ``gc`` removes). ``ref`` names the version concerned, when one is.
    """

    kind: str
    detail: str
    ref: str | None = None

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_PROBLEMS


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`Registry.verify` found. ``ok`` is true when every live version is intact.

    ``hashed`` lists the digests re-hashed (all of them in a full deep check;
    those of one slice with ``sample=(i, n)``). When ``max_duration`` ran
    out, ``stopped_early`` is true and ``not_reached`` names the versions
    whose bytes were not re-hashed (their presence and size were checked).
    """

    problems: list[Problem]
    versions_checked: int
    deep: bool
    sample: tuple[int, int] | None = None
    hashed: list[str] = field(default_factory=list)
    stopped_early: bool = False
    not_reached: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(problem.fatal for problem in self.problems)


@dataclass(frozen=True)
class GcReport:
    """What :meth:`Registry.gc` removed (or, with ``dry_run``, would remove)."""

    removed: list[str]
    freed_bytes: int
    dry_run: bool
    #: ``(item, why it was kept)`` for waste left in place, e.g. younger than ``min_age``.
    kept: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RepairReport:
    """What :meth:`Registry.repair` did (or, with ``dry_run``, would do).

    ``quarantined`` is ``(digest, where its bytes were moved)`` ("" for a
    missing blob, which has nothing to move); ``marked`` and ``healed`` are
    ``(ref, detail)`` of the versions marked damaged and healed;
    ``unhealed`` those still damaged after the run, with why.
    """

    dry_run: bool
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    marked: list[tuple[str, str]] = field(default_factory=list)
    healed: list[tuple[str, str]] = field(default_factory=list)
    unhealed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every live version is intact after the run (nothing left damaged)."""
        return not self.unhealed


@dataclass(frozen=True)
class Imported:
    """What :meth:`Registry.import_bundle` did with one version of a bundle: its origin and its ref here."""

    source: str
    target: str
    created: bool
    #: The fingerprint of the key that signed the bundle (``None`` for an unsigned one).
    signer: str | None = None
    #: Whether that key is one the import trusted (``False`` for a bundle accepted with ``allow_unsigned``).
    verified: bool = False


@dataclass(frozen=True)
class Draft:
    """A version about to be recorded, every field already validated; only its bytes are missing.

    Every way a version comes in builds one (:mod:`registry.drafting`); the
    catalog records it as a ``NewVersion``, which is a draft plus the content
    address of its bytes, so a field added here reaches the catalog as is.

    >>> Draft(name="iris-knn", format="joblib", metrics={"accuracy": 0.97})   # doctest: +SKIP
    """

    name: str
    format: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    alias: str | None = None
    #: The globals the artifact imports, as scanned from its bytes (``None``: not a pickle, or not scanned).
    imports: tuple[str, ...] | None = None
    lineage: Lineage | None = None
    input_signature: InputSignature | None = None
    #: A full metric history to record instead of ``metrics`` (an imported version keeps its own).
    history: tuple[MetricPoint, ...] | None = None
    #: Facts about how the version arrived (e.g. who signed the bundle it came in), kept in its register event.
    provenance: dict[str, Any] | None = None
    #: Input rows and the model's outputs for them, re-run by ``check`` (``None``: no input was at hand).
    canary: Canary | None = None


@dataclass(frozen=True)
class VersionPage:
    """One page of a model's versions, as :meth:`Registry.versions_page` returns it.

    ``total`` counts every version matching the filter, not only this page,
    so a caller can draw "page 3 of 200" without reading the other pages.
    ``next_cursor`` continues right after this page (``versions_page(...,
    after=page.next_cursor)``), at the cost of the first page however deep
    it is; ``None`` on the last page. ``offset`` is what was asked for: 0 for
    a page found by cursor.

    >>> page = reg.versions_page("iris-knn", order_by="metrics.accuracy desc", limit=20)  # doctest: +SKIP
    >>> len(page.versions), page.total, page.offset                                       # doctest: +SKIP
    (20, 10000, 0)
    >>> following = reg.versions_page("iris-knn", order_by="metrics.accuracy desc", limit=20,
    ...                               after=page.next_cursor)                             # doctest: +SKIP
    """

    versions: list[ModelVersion]
    total: int
    offset: int
    limit: int
    next_cursor: str | None = None


@dataclass(frozen=True)
class Canary:
    """A few input rows and what the model answered for them at registration, kept as JSON beside the version.

    ``inputs`` and ``outputs`` are the JSON forms :mod:`registry.inputs.canary`
    writes (rows, column names and dtypes; one array per method such as
    ``predict`` or ``predict_proba``); no pickle, so reading a canary runs no
    code. ``hmac`` binds them to the version's name and checksum under the
    signing key (``None`` without one), so a canary edited by SQL is refused
    rather than compared.
    """

    inputs: dict[str, Any] = field(hash=False)
    outputs: dict[str, Any] = field(hash=False)
    rows: int
    hmac: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What the HMAC covers and ``--json`` shows: rows, inputs and outputs (not the HMAC itself)."""
        return {"rows": self.rows, "inputs": self.inputs, "outputs": self.outputs}


#: What :meth:`Registry.check` can find: every output as recorded, close enough, not, or nothing to compare.
CHECK_STATUSES = ("equal", "within tolerance", "changed", "no canary")


@dataclass(frozen=True)
class CellChange:
    """One output cell that differs from the canary: where, what was recorded, what came now, and by how much.

    ``column`` is ``None`` for a one-dimensional output (``predict`` of one
    target); ``abs_diff`` and ``rel_diff`` are ``None`` for labels (strings,
    or values compared exactly).
    """

    method: str
    row: int
    column: int | None
    expected: Any
    actual: Any
    abs_diff: float | None = None
    rel_diff: float | None = None


@dataclass(frozen=True)
class MethodCheck:
    """How one method's output compared with its canary.

    ``status`` is ``"equal"``, ``"within tolerance"`` or ``"changed"``;
    ``changed_cells`` counts the cells outside the tolerance, ``changes``
    shows the first of them; ``detail`` says why a whole output changed (a
    different shape, the method raised, or is gone).
    """

    method: str
    status: str
    shape: tuple[int, ...]
    dtype: str
    changed_cells: int = 0
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    changes: tuple[CellChange, ...] = ()
    detail: str | None = None


@dataclass(frozen=True)
class CheckReport:
    """What :meth:`Registry.check` found when it re-ran a version's canary.

    ``status`` is the worst of its methods' (``"changed"`` beats
    ``"within tolerance"`` beats ``"equal"``), or ``"no canary"`` for a
    version registered without one (before canaries existed, with
    ``canary=False``, or with no input at hand). ``environment`` lists what
    differs from the environment the version was registered in.

    >>> report = reg.check("iris-knn@production")                      # doctest: +SKIP
    >>> report.status, report.rows, report.changed_rows                 # doctest: +SKIP
    ('equal', 64, ())
    """

    ref: str
    status: str
    rows: int = 0
    rtol: float = 0.0
    atol: float = 0.0
    methods: tuple[MethodCheck, ...] = ()
    environment: tuple[str, ...] = ()
    note: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every output came back as recorded or within tolerance (``False`` with no canary)."""
        return self.status in ("equal", "within tolerance")

    @property
    def changed(self) -> bool:
        """Whether some output is not what the model gave at registration."""
        return self.status == "changed"

    @property
    def changed_rows(self) -> tuple[int, ...]:
        """The canary rows with a changed cell in any method (of those listed in ``changes``), sorted."""
        return tuple(sorted({change.row for method in self.methods for change in method.changes}))

    @property
    def summary(self) -> str:
        """What became of the canary, in words that follow "the canary of REF" (promotion gates quote it).

        >>> CheckReport("m:1", "equal", rows=64).summary
        'still passes: 64 rows predicted as recorded'
        """
        if self.status == "no canary":
            return f"is missing ({self.note})" if self.note else "is missing"
        if self.passed:
            how = "as recorded" if self.status == "equal" else f"within rtol={self.rtol:g}, atol={self.atol:g}"
            return f"still passes: {self.rows} rows predicted {how}"
        parts = []
        for check in self.methods:
            if check.status != "changed":
                continue
            if check.detail and not check.changes:
                parts.append(f"{check.method}: {check.detail}")
                continue
            rows = sorted({change.row for change in check.changes})
            shown = ", ".join(str(row) for row in rows[:10]) + (" …" if len(rows) > 10 else "")
            largest = f", max abs diff {check.max_abs_diff:.3g}" if check.max_abs_diff is not None else ""
            parts.append(f"{check.method}: {check.changed_cells} cells changed in rows {shown}{largest}")
        return f"CHANGED ({self.rows} rows): " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form ``modelshelf check --json`` prints (keys are only ever added)."""
        data: dict[str, Any] = _plain(asdict(self))
        data["passed"] = self.passed
        data["summary"] = self.summary
        return data


def _plain(value: Any) -> Any:
    """Dicts, lists and tuples at any depth, tuples as lists: what ``json.dumps`` writes the same way back."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@dataclass(frozen=True)
class PreflightResult:
    """What became of one version in another interpreter (:meth:`Registry.preflight`).

    ``status``: ``"loads"`` (cleanly), ``"warns"`` (loads, with
    ``warnings``), ``"fails"`` (``error`` says why) or ``"changed"`` (loads,
    but its canary's outputs differ: ``report`` says where). ``canary`` is
    the report's status, ``"no canary"``, or ``"not run"`` (it did not load,
    or its rows need a package the interpreter lacks: ``canary_note``).
    ``environment`` lists how the interpreter differs from the registration's.
    """

    ref: str
    aliases: tuple[str, ...]
    status: str
    canary: str
    warnings: tuple[str, ...] = ()
    error: str | None = None
    report: CheckReport | None = None
    environment: tuple[str, ...] = ()
    canary_note: str | None = None

    @property
    def breaks(self) -> bool:
        """Whether serving this version from that interpreter would fail or predict otherwise."""
        return self.status in ("fails", "changed")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _plain(asdict(self))
        data["report"] = None if self.report is None else self.report.to_json()
        data["breaks"] = self.breaks
        return data


@dataclass(frozen=True)
class PreflightReport:
    """The answer to "can we upgrade the serving image?": each version, loaded and checked by another interpreter.

    >>> report = reg.preflight("/opt/next/bin/python")                 # doctest: +SKIP
    >>> [(r.ref, r.status) for r in report.results]                    # doctest: +SKIP
    [('iris-knn:3', 'loads'), ('churn-hgb:7', 'fails')]
    """

    python: str
    environment: dict[str, str | None]
    results: tuple[PreflightResult, ...]

    @property
    def breaking(self) -> tuple[PreflightResult, ...]:
        """The versions that would fail to load or predict otherwise there."""
        return tuple(result for result in self.results if result.breaks)

    @property
    def aliased_breaking(self) -> tuple[PreflightResult, ...]:
        """Those of :attr:`breaking` that an alias points at: what an upgrade would break in service."""
        return tuple(result for result in self.breaking if result.aliases)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form ``modelshelf preflight --json`` prints (keys are only ever added)."""
        return {
            "python": self.python,
            "environment": dict(self.environment),
            "results": [result.to_json() for result in self.results],
            "breaking": [result.ref for result in self.breaking],
            "aliased_breaking": [result.ref for result in self.aliased_breaking],
        }
