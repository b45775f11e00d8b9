"""The ``Registry``: the public face that ties names, values, store and catalog together.

Write path (``register``)::

    validate everything → serialize into a temporary blob, hashing as it is
    written → fsync → push the blob (an object store: copy it to its content
    address; a local store: nothing) → one catalog transaction: allocate the
    version, lock the blob's row, publish the blob (a local store: rename; an
    object store: ask the server it is still there, upload it again if a
    concurrent delete freed it), insert the version → commit

``register``, ``register_file`` and ``import_bundle`` differ only in where
the bytes and fields come from: each drafts its versions and commits them
through the one pipeline of :mod:`registry.drafting`.

So a version row never points at a missing or partial blob, and a failure
at any step leaves at most a temporary file that is removed on the way out,
or a pushed blob with no row that ``gc`` removes after its grace period.
Pushing before the transaction means an object store that stalls holds up
only the writer using it, never the others waiting on the model's row lock.
A transaction whose connection to a server catalog dies before it commits
is run again (see :mod:`registry.catalog.engine`): the staged blob is
reused and the version number is allocated inside it, so nothing doubles.

Each register also records the version's lineage (git commit, script, user,
host, training-data fingerprint, parent) and input signature, and every
change appends to the audit trail in its own transaction.

Read path (``load``): with a signing key, the model's sealed state checked
against its rows and against the newest state this client has seen → catalog
row → its signature → digest and size → the blob read once into private
memory and hashed there → compared with the catalog → environment check →
deserialize that memory. Every load goes through
:meth:`Registry._load_version`; nothing is unpickled before its checksum
has been verified, and nothing is read from the store after it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, overload

# Only what opening a registry and loading a version need is imported here: the catalog (SQLAlchemy), the write
# pipeline, gates, queries, bundles and maintenance are imported in the methods that use them, so a process that
# only loads pays for none of them (tests/test_cold_start.py holds this).
from registry import formats
from registry.digests import checksum_of
from registry.domain import (
    EVENT_ACTIONS,
    AliasPeriod,
    Canary,
    CheckReport,
    Draft,
    Event,
    GcReport,
    Imported,
    InputSignature,
    Lineage,
    MetricPoint,
    ModelSummary,
    ModelVersion,
    PreflightReport,
    RepairReport,
    VerifyReport,
    VersionPage,
)
from registry.errors import (
    CanaryMismatch,
    CanaryNotFound,
    CanaryWarning,
    CorruptedArtifact,
    DamagedVersion,
    EnvironmentMismatch,
    EnvironmentMismatchWarning,
    InvalidArgument,
    InvalidBundle,
    InvalidMetric,
    InvalidPath,
    InvalidReference,
    InvalidTag,
    ModelPortabilityWarning,
    NotFound,
    NotPortable,
    PromotionRefused,
    ReadOnlyRegistry,
    RegistryError,
    SerializationError,
    SignatureNotFound,
    StoreError,
    TrustError,
    UntrustedArtifact,
    VersionNotFound,
)
from registry.formats import filecheck, portability
from registry.limits import GC_MIN_AGE, MAX_INT64
from registry.locations import resolve
from registry.names import resolve_ref, validate_alias, validate_model_name, validate_version
from registry.provenance.environment import environment_differences
from registry.store import BlobStore, MappableStore, ProgressReporter, StagedBlob, default_cache_dir, open_store
from registry.trust import signing
from registry.validation import (
    capture_params,
    validate_limit,
    validate_metrics,
    validate_moment,
    validate_params,
    validate_step,
    validate_tags,
)

if TYPE_CHECKING:
    from registry import gates
    from registry.bundles.manifest import BundleEntry
    from registry.catalog import Catalog
    from registry.catalog.lite import LiteReader
    from registry.catalog.notices import AliasNotice, AliasWatch
    from registry.catalog.protection import AliasDecision, AliasFacts
    from registry.frames import DataFrame  # pandas', named where pandas may be imported
    from registry.query import Node
    from registry.trust.keys import PrivateKeySource, PublicKeySource


class Registry:
    """A model registry: a catalog of versions and a store of their artifacts.

    >>> with Registry("models") as reg:                                   # doctest: +SKIP
    ...     mv = reg.register("iris-knn", model, metrics={"accuracy": 0.97})
    ...     same = reg.load("iris-knn:1")

    ``home`` is a directory holding a SQLite catalog and the blobs, created on
    first use; without it, ``$MODELSHELF_HOME``, else ``./.modelshelf``.
    ``catalog`` (any SQLAlchemy URL) and ``store`` (a directory or URL)
    override the parts of ``home``; ``store`` may also be a store object
    implementing :class:`~registry.store.BlobStore`, such as
    ``registry.store.MemoryStore()`` for tests. ``progress``, a
    :data:`~registry.store.ProgressReporter`, is told about large transfers
    to and from an object store (the command line draws bars with it). An older catalog schema is only migrated when
    ``upgrade=True`` (otherwise :class:`~registry.errors.SchemaVersionError`
    says what to run). With ``signing_key`` (or ``$MODELSHELF_SIGNING_KEY``)
    new versions are signed and ``load`` refuses unsigned or forged ones;
    every change also seals the model's state (aliases, deletions, latest,
    metrics, audit trail), and every lookup refuses a model whose rows no
    longer match their seal, or whose seal is older than one this client has
    seen (a catalog rolled back): see :meth:`seal` and :meth:`verify`.
    With ``bundle_key`` (an Ed25519 private key or the path of its PEM file;
    else ``$MODELSHELF_BUNDLE_KEY``) the bundles it exports are signed, so
    another registry can check who wrote them (:meth:`export_bundle`, :meth:`import_bundle`).

    ``create=False`` is for code that must never make a registry by accident
    (a mistyped path): a location with no registry raises
    :class:`~registry.errors.RegistryNotFound` and nothing at all is created
    there, neither the directory nor the catalog. ``read_only=True`` (also
    implied by a SQLite ``mode=ro`` or ``immutable=1`` URI) is for serving
    from a registry on a read-only mount: every read works, every write
    (register, aliases, tags, metrics, delete, import, gc, repair, seal)
    raises :class:`~registry.errors.ReadOnlyRegistry` before touching
    anything, and it never creates a registry either. A keyed registry still
    remembers the newest sealed state it has seen in its cache directory
    (``$MODELSHELF_CACHE``), which is the client's, not the registry's; where
    that cannot be written it warns and serves on.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        catalog: str | None = None,
        store: str | os.PathLike[str] | BlobStore | None = None,
        upgrade: bool = False,
        signing_key: str | bytes | None = None,
        bundle_key: PrivateKeySource | None = None,
        progress: ProgressReporter | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self._signing_key = signing.signing_key(signing_key)
        self._bundle_key = bundle_key  # read when a bundle is exported: cryptography is not loaded before
        self._store: BlobStore
        if isinstance(store, BlobStore):  # a store object (a MemoryStore in tests): used as given
            if progress is not None:
                raise InvalidArgument(
                    "progress= is handed to the store modelshelf opens; a store object given as store= was opened "
                    "by you: give it its reporter (open_store(..., progress=...)) and drop progress= here"
                )
            locations = resolve(home, catalog, None)
            self._store = store
        else:
            locations = resolve(home, catalog, store)
            self._store = open_store(locations.store, progress=progress)
        self._open_args = (locations.catalog, bool(upgrade), bool(create), bool(read_only))
        self._full: Catalog | None = None
        self._opening = threading.Lock()
        # A SQLite file without a key may be read for loads alone (registry.catalog.lite): the full catalog, and
        # SQLAlchemy with it, is then opened on first use of anything else.
        self._lite_path = (
            locations.catalog if self._signing_key is None and isinstance(locations.catalog, Path) else None
        )
        self._lite: LiteReader | None = None
        self._lite_tried = False  # once the full catalog is open: it has made or migrated the schema by then
        if self._lite_path is not None:
            from registry.catalog.lite import LiteReader

            self._lite = LiteReader.open(self._lite_path, read_only=bool(read_only))
        if self._lite is None:
            self._read_only = self._catalog.read_only  # a SQLite mode=ro / immutable=1 URL implies it
        else:
            self._read_only = bool(read_only)

    @property
    def _catalog(self) -> Catalog:
        """The full catalog, opened on first use when the registry was opened by its SQLite reader."""
        found = self._full
        if found is None:
            with self._opening:
                found = self._full
                if found is None:
                    found = self._full = self._open_catalog()
        return found

    def _open_catalog(self) -> Catalog:
        from registry.catalog import Actor, open_catalog
        from registry.provenance import lineage

        location, upgrade, create, read_only = self._open_args
        opened = open_catalog(location, upgrade=upgrade, create=create, read_only=read_only)
        opened.actor = Actor(*lineage.identity())
        # With a key, the catalog seals every change and checks the seal of every model it resolves.
        opened.key = self._signing_key
        if self._signing_key is not None:
            from registry.trust.freshness import StateMemory

            opened.state_seen = StateMemory(default_cache_dir()).observe
        return opened

    def _open_lite(self) -> LiteReader | None:
        """The SQLite reader of loads, where the catalog allows one.

        A registry opened on a new directory has no catalog file for the
        reader to open at first: once the full catalog has made the schema,
        the reader is asked for once more (it checks the revision).
        """
        if self._lite is None and not self._lite_tried and self._lite_path is not None and self._full is not None:
            from registry.catalog.lite import LiteReader

            self._lite_tried = True
            self._lite = LiteReader.open(self._lite_path, read_only=self._open_args[3])
        return self._lite

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Release the catalog's database connections. Safe to call twice."""
        if self._lite is not None:
            self._lite.close()
        if self._full is not None:
            self._full.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry(catalog={self.catalog_location!r}, store={self.store_location!r})"

    @property
    def read_only(self) -> bool:
        """Whether this registry was opened read-only (``read_only=True``, or a SQLite ``mode=ro`` URI)."""
        return self._read_only

    def _refuse_if_read_only(self, operation: str) -> None:
        if self._read_only:
            raise ReadOnlyRegistry(
                f"{operation} changes the registry, and the registry at {self.catalog_location} was opened "
                "read-only: nothing was changed; to write, open it without read_only=True (--read-only) and without "
                "mode=ro or immutable=1 in its catalog URL",
                operation=operation,
            )

    @property
    def catalog_location(self) -> str:
        """The catalog's file or URL (password hidden)."""
        if self._full is None and self._lite is not None:
            return self._lite.location
        return self._catalog.location

    @property
    def store_location(self) -> str:
        """The blob store's directory or URL."""
        return self._store.location

    # -- writing -----------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        format: str = formats.DEFAULT_FORMAT,
        alias: str | None = None,
        *,
        data: Any = None,
        parent: str | ModelVersion | None = None,
        signature: InputSignature | Mapping[str, Any] | None = None,
        input_example: Any = None,
        strict: bool = False,
        canary: bool = True,
        compress: bool | int | str | tuple[str, int] = 0,
    ) -> ModelVersion:
        """Store ``model`` as the next version of ``name`` and return its metadata.

        With ``params=None`` an object with ``get_params()`` (any scikit-learn
        estimator) has its hyperparameters captured. Invalid input raises
        before anything is written: ``InvalidName``, ``ValueError`` naming the
        bad key, or ``SerializationError`` if the object cannot be pickled.

        Lineage is recorded with no effort: the git commit, script, user and
        host, plus a fingerprint of ``data`` (the training ``X`` or ``(X, y)``)
        so that ``search(where="lineage.data = 'sha256:…'")`` finds every
        version trained on the same data, and ``parent`` (a reference or a
        ``ModelVersion``) for a model derived from another. A fitted
        scikit-learn estimator gets an input signature automatically;
        ``signature=`` gives one explicitly, and ``input_example=`` (a few rows
        of input) adds column dtypes and is kept with the version.

        An artifact that imports a class or function of the running script
        (``__main__.Foo``) or one defined inside a function registers with a
        :class:`~registry.errors.ModelPortabilityWarning`: no other process
        could load it. ``strict=True`` raises
        :class:`~registry.errors.NotPortable` instead, and nothing is written.

        With an input at hand (``input_example``, else the ``X`` of ``data``)
        a *prediction canary* is kept too: at most 64 evenly spaced rows and
        the model's ``predict`` (and ``predict_proba``, ``decision_function``,
        ``transform`` where it has them) on them, as JSON, which
        :meth:`check` re-runs after an upgrade. A model whose ``predict``
        fails on those rows is refused with
        :class:`~registry.errors.InvalidData` and nothing is written; input
        a canary cannot keep exactly (sparse, time zones) gives a
        :class:`~registry.errors.CanaryWarning` and no canary.
        ``canary=False`` skips it.

        ``compress`` takes joblib's values (``joblib.dump(compress=…)``):
        ``0`` (the default, none), ``True`` (zlib, level 3), a level 1–9, a
        method or a ``(method, level)`` pair of ``zlib``, ``gzip``, ``bz2``,
        ``lzma``, ``xz`` or (with the ``lz4`` package) ``lz4``. The bytes
        stored are what ``joblib.dump`` would write, and the checksum is
        theirs. Only the joblib format compresses; an unknown method, a level
        out of range or another format raises
        :class:`~registry.errors.InvalidArgument` before anything is written.
        A compressed artifact loads as any other, but cannot be memory-mapped
        (``load(..., mmap=True)``), and an lz4 one not loaded with ``safe=True``.
        """
        from registry import drafting
        from registry.formats import compression as compressions
        from registry.provenance import fingerprint

        self._refuse_if_read_only("register")
        draft = drafting.draft_from_input(name, format, alias=alias)
        compressed = compressions.normalize(compress, draft.format)
        draft = drafting.with_values(draft, metrics=metrics, tags=tags, description=description)
        fmt = formats.get_format(draft.format)
        checked_params = capture_params(model) if params is None else validate_params(params)
        finish_lineage = self._start_lineage(data, parent)
        from registry.inputs import signature as signatures  # numpy: loaded when a model is registered, not on import

        input_signature: InputSignature | None
        if signature is not None:
            if input_example is not None:
                raise InvalidArgument("give signature= or input_example= (from which one is inferred), not both")
            given = signatures.coerce_signature(signature)
            signatures.check_agrees(model, given)
            input_signature = given
        else:
            input_signature = signatures.infer_signature(
                model, input_example=input_example, data=fingerprint.split_pair(data)[0]
            )
        model_canary = _make_canary(model, input_example, data) if canary else None
        imports: list[str] = []

        def write(file: IO[bytes]) -> None:
            imports.extend(formats.dump(fmt, model, file, compressed))

        def written() -> dict[str, Any]:
            _check_portable(draft.name, imports, strict=strict)  # after the dump: the inventory is what it names
            return {"imports": tuple(imports), "lineage": finish_lineage()}

        draft = replace(draft, params=checked_params, input_signature=input_signature, canary=model_canary)
        return self._commit_one(draft, write, written)

    def _start_lineage(self, data: Any, parent: str | ModelVersion | None) -> Callable[[], Lineage]:
        """Check the parent and fingerprint the data now; git is asked on a helper thread meanwhile.

        Returns the function that gives the version's lineage once the
        artifact is written (the thread's wait overlaps the serialization).
        """
        from registry.provenance import fingerprint, lineage

        parent_ref = None
        if parent is not None:
            if isinstance(parent, ModelVersion):
                parent = parent.ref
            if not isinstance(parent, str):
                raise InvalidReference(
                    f"parent must be a reference such as 'iris-knn:3' or a ModelVersion, not {parent!r}"
                )
            parent_ref = self.get(parent).ref  # pinned now: an alias may move later, the lineage must not
        data_print = None if data is None else fingerprint.fingerprint_data(data)
        pending = lineage.start_capture()

        def finish() -> Lineage:
            return Lineage(
                **pending(),
                data=None if data_print is None else data_print.digest,
                data_shape=None if data_print is None else data_print.shape,
                data_columns=None if data_print is None else data_print.columns,
                parent=parent_ref,
            )

        return finish

    def _commit_one(
        self, draft: Draft, write: Callable[[IO[bytes]], None], written: Callable[[], dict[str, Any]]
    ) -> ModelVersion:
        """Stage the bytes ``write`` produces and record them as the next version of ``draft.name``.

        ``written()`` gives the fields known only once the bytes are written
        (the import inventory a dump traced, the lineage whose git query ran
        meanwhile); they complete the draft before it is committed.
        """
        with self._store.stage(write) as staged:
            return self._commit_all([(replace(draft, **written()), staged)])[0]

    def _commit_all(self, batch: list[tuple[Draft, StagedBlob]]) -> list[ModelVersion]:
        """Record staged drafts as versions in one catalog transaction, signed with this registry's key."""
        from registry import drafting

        return drafting.commit(self._catalog, self._signing_key, batch)

    def register_file(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        format: str = formats.DEFAULT_FORMAT,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        alias: str | None = None,
        check: bool | str = True,
        parent: str | ModelVersion | None = None,
        trusted: Iterable[str] | None = None,
    ) -> ModelVersion:
        """Register an artifact file made elsewhere, byte for byte, as the next version of ``name``.

        ``check`` says how the file proves it is usable before anything is
        recorded: ``"safe"`` loads it with the safe unpickler (no code from the
        file runs; a global outside the safe-loading policy or ``trusted``
        raises :class:`~registry.errors.UnsafeArtifact`); ``True`` (the
        default, kept for compatibility) or ``"unsafe"`` loads it with the
        format's own loader, which runs the pickle's code, so only for files
        you trust; ``False`` stores the bytes unloaded. A checked file has its
        hyperparameters and input signature recorded as for :meth:`register`.

        The file is read once, and the bytes checked, scanned and stored are
        that one copy. In every mode the import inventory is read from them by
        a scanner that runs nothing (``None`` only for an unchecked file that
        is not a pickle). ``parent`` is recorded in the lineage as for
        :meth:`register`.
        """
        from registry import drafting

        self._refuse_if_read_only("register_file")
        # The order of the checks is the one callers have always met: name, alias, format, check mode, file, values.
        draft = drafting.draft_from_input(name, format, alias=alias)
        fmt = formats.get_format(draft.format)
        mode = filecheck.check_mode(check)
        trusted_names = filecheck.trusted_names(trusted)
        source = Path(os.fspath(path))
        if not source.is_file():
            raise InvalidPath(f"{source} is not a file; give the path of a {fmt.name} artifact")
        draft = drafting.with_values(draft, metrics=metrics, tags=tags, description=description)
        checked_params = validate_params(params) if params is not None else {}
        finish_lineage = self._start_lineage(None, parent)
        try:
            content = source.read_bytes()  # read once: the bytes checked and scanned are the bytes stored
        except OSError as exc:
            raise InvalidPath(f"cannot read {source}: {exc.strerror or exc}") from exc
        imports = filecheck.scanned_imports(fmt, content, source, required=mode is not None)
        input_signature = None
        if mode is not None:
            obj = filecheck.check_file(fmt, content, source, mode, trusted_names, imports)
            if params is None:
                checked_params = capture_params(obj)
            from registry.inputs.signature import infer_signature

            input_signature = infer_signature(obj)

        def write(file: IO[bytes]) -> None:
            file.write(content)

        draft = replace(draft, params=checked_params, imports=imports, input_signature=input_signature)
        return self._commit_one(draft, write, lambda: {"lineage": finish_lineage()})

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` of ``name``, moving it atomically if it pointed elsewhere.

        On a protected alias (:meth:`protect_alias`) its stored gates decide,
        as :meth:`promote` would: a failing gate raises
        :class:`~registry.errors.PromotionRefused` and nothing moves.
        """
        self._refuse_if_read_only("set_alias")
        return self._move_alias(name, alias, version, None, None, via="set_alias")

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove ``alias`` from ``name`` and return the version it pointed at; ``AliasNotFound`` if it is not set.

        A protected alias is not removed (:class:`~registry.errors.PromotionRefused`,
        recorded in the trail): unprotect it first, which is itself audited.
        """
        from registry import gates

        self._refuse_if_read_only("delete_alias")
        name, alias = validate_model_name(name), validate_alias(alias)
        version, protection = self._catalog.delete_alias(name, alias)
        if protection is not None:
            specs = ", ".join(gates.gate_from_json(gate).spec for gate in protection)
            raise PromotionRefused(
                f"alias {alias!r} of {name!r} is protected (by {specs}), so it cannot be removed: unprotect it first "
                f"(`modelshelf alias unprotect {name} {alias} --reason ...`); nothing was removed",
                name=name,
                alias=alias,
                version=None,
            )
        return version

    def record_refused_swap(
        self, name: str, version: int, *, alias: str | None, served: int, reason: str, kind: str
    ) -> bool:
        """Record in the audit trail that a prediction server refused to serve ``version`` (``serve.swap_refused``).

        ``modelshelf serve`` calls it when the alias it follows moved to a
        version that failed to load, its canary, or the served version's
        signature, so the trail shows why ``production`` moved but its
        predictions did not. ``served`` is the version still served,
        ``kind`` what failed (``load``, ``canary``, ``signature``…).
        Returns ``False`` without writing when the model is sealed and this
        registry has no signing key: the write would unseal the model for
        every keyed client. ``ReadOnlyRegistry`` when opened read-only.
        """
        self._refuse_if_read_only("record_refused_swap")
        name, version, served = validate_model_name(name), validate_version(version), validate_version(served)
        alias = None if alias is None else validate_alias(alias)
        for label, text in (("reason", reason), ("kind", kind)):
            if not isinstance(text, str) or not text.strip() or len(text) > 4096:
                raise InvalidArgument(f"{label} must be a non-empty text of at most 4096 characters, not {text!r:.60}")
        detail = {"served": served, "kind": kind, "reason": reason}
        return self._catalog.record_refused_swap(name, version, alias, detail)

    def watch_aliases(
        self,
        wake: Callable[[AliasNotice], None],
        on_state: Callable[[str, str | None], None] = lambda state, error: None,
    ) -> AliasWatch | None:
        """Be told as aliases move: a started watch calling ``wake(notice)``, or ``None`` where the catalog cannot.

        On a PostgreSQL catalog (psycopg driver) every alias set, move or
        delete sends a notification when its transaction commits, and the
        watch's thread calls ``wake`` with the model and alias it names (and
        once after every reconnection, naming nothing). A notice is a hint,
        which any client of the database can forge: read the alias again on
        it (``get(name, alias=...)``), never act on what it names. SQLite and
        MariaDB catalogs give ``None``: poll them. Call ``stop()`` on the
        watch when done.
        """
        if self._lite_path is not None:  # a SQLite file: no notifications, and no reason to open the full catalog
            return None
        return self._catalog.watch_aliases(wake, on_state)

    def promote(
        self,
        name: str,
        version: int,
        alias: str,
        require: Iterable[gates.BuiltinGate | str | Callable[[ModelVersion, ModelVersion | None], Any]] | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` only if every gate passes; return the version.

        ``require`` lists gates (:mod:`registry.gates`: ``no_regression``,
        ``canary_passes``, ``environment_matches``, ``signed``, ``tagged``,
        their specs such as ``"no_regression:accuracy:0.005"``, or any callable
        ``(candidate, current) -> Verdict``); a protected alias's stored
        gates apply as well. They are evaluated inside the transaction that
        moves the alias, on the rows it reads, so ``no_regression`` compares
        with the version the alias points at *at the moment it moves*, not
        a moment before. If one fails, :class:`~registry.errors.PromotionRefused`
        names each failed gate with its numbers and nothing moves. The
        promotion or refusal, with its verdicts and ``reason``, is in the
        audit trail (``modelshelf log NAME --alias ALIAS``).

        >>> reg.promote("iris-knn", 3, "production", require=[no_regression("accuracy", 0.005)])  # doctest: +SKIP
        """
        self._refuse_if_read_only("promote")
        return self._move_alias(name, alias, version, require, reason, via="promote")

    def protect_alias(
        self, name: str, alias: str, require: Iterable[gates.BuiltinGate | str]
    ) -> list[gates.BuiltinGate]:
        """Store gates for ``alias``: from now on every move (``set_alias``, ``promote``, the CLI) must pass them.

        The gates are stored as data (built-in gates by name and arguments),
        so every process enforces the same rules; a callable cannot be stored
        (:class:`~registry.errors.InvalidArgument`). Protecting again replaces
        the gates. The alias need not be set yet. Audited as ``alias.protect``.
        """
        from registry import gates

        self._refuse_if_read_only("protect_alias")
        name, alias = validate_model_name(name), validate_alias(alias)
        chosen = gates.as_gates(require)
        if not chosen:
            raise InvalidArgument(
                "protect_alias needs at least one gate (require=[...]); to lift a protection use unprotect_alias"
            )
        stored = gates.storable(chosen)
        self._catalog.protect_alias(name, alias, stored, [gate.spec for gate in chosen])
        return [gates.gate_from_json(gate) for gate in stored]

    def unprotect_alias(self, name: str, alias: str, reason: str | None = None) -> list[gates.BuiltinGate]:
        """Lift ``alias``'s protection, recording who and ``reason`` (``alias.unprotect``); return its old gates.

        This is the one way to override a protection: its event says who
        lifted which gates and why. An alias that is not protected is an
        :class:`~registry.errors.InvalidArgument`.
        """
        from registry import gates

        self._refuse_if_read_only("unprotect_alias")
        name, alias = validate_model_name(name), validate_alias(alias)
        dropped = self._catalog.unprotect_alias(name, alias, gates.validate_reason(reason))
        return [gates.gate_from_json(gate) for gate in dropped]

    def alias_protections(self, name: str) -> dict[str, list[gates.BuiltinGate]]:
        """Every protected alias of ``name`` and its gates, by alias (empty when none is protected)."""
        from registry import gates

        found = self._catalog.alias_protections(validate_model_name(name))
        return {alias: [gates.gate_from_json(gate) for gate in stored] for alias, stored in found.items()}

    def _move_alias(
        self,
        name: str,
        alias: str,
        version: int,
        require: Iterable[Any] | None,
        reason: str | None,
        *,
        via: Literal["promote", "set_alias"],
    ) -> ModelVersion:
        """Move an alias through its gates: the canary first (it loads the model), the rest in the transaction."""
        from registry import gates
        from registry.catalog.protection import AliasDecision

        name, alias, version = validate_model_name(name), validate_alias(alias), validate_version(version)
        asked = gates.as_gates(require)
        reason = gates.validate_reason(reason)
        # The canary loads the model: too slow for the write lock, and independent of where the alias points,
        # so it runs before the transaction. When only the alias's stored gates ask for it (known only under
        # the lock), the transaction is abandoned unrecorded, the canary runs, and the decision is taken again.
        canary: tuple[gates.Verdict, str] | None = None
        if any(isinstance(gate, gates.CanaryPasses) for gate in asked):
            canary = self._run_canary(name, version)
        key = self._signing_key
        needs_canary: list[bool] = []

        def signature_state(mv: ModelVersion) -> str:
            assert key is not None
            return signing.check_model_version(key, mv)

        def environment_signed(mv: ModelVersion) -> bool:
            return signature_state(mv) == "valid" and signing.covers_environment(mv.hmac)

        def decide(facts: AliasFacts) -> AliasDecision:  # only called for promote or a protected alias
            if key is not None and signature_state(facts.candidate) == "invalid":
                self._check_hmac(facts.candidate)  # raises: no gate can vouch for a record edited outside modelshelf
            stored: list[gates.Gate] = [gates.gate_from_json(gate) for gate in facts.protection or []]
            chosen = gates.as_gates([*stored, *asked])
            if canary is None and any(isinstance(gate, gates.CanaryPasses) for gate in chosen):
                needs_canary.append(True)
                return AliasDecision(False)  # abandoned: nothing recorded, nothing moved
            verdict, checksum = canary if canary is not None else (None, None)
            evidence = gates.Evidence(
                verdict,
                checksum,
                facts.damage,
                signature_state if key else None,
                environment_signed if key else None,
            )
            verdicts = gates.evaluate(chosen, facts.candidate, facts.current, evidence)
            record = {
                "via": via,
                "reason": reason,
                "protected": facts.protection is not None,
                "verdicts": [verdict.to_json() for verdict in verdicts],
            }
            return AliasDecision(all(verdict.passed for verdict in verdicts), record)

        mv, decision = self._catalog.set_alias(name, alias, version, decide, promote=via == "promote")
        if needs_canary and canary is None:
            canary = self._run_canary(name, version)
            mv, decision = self._catalog.set_alias(name, alias, version, decide, promote=via == "promote")
        if not decision.allowed:
            verdicts = tuple(gates.Verdict(**_verdict_fields(v)) for v in (decision.record or {}).get("verdicts", []))
            failed = "; ".join(f"{v.gate} failed: {v.reason}" for v in verdicts if not v.passed)
            raise PromotionRefused(
                f"refused to point {name}@{alias} at {name}:{version}: {failed or 'the alias is protected'}. "
                f"Nothing moved; the refusal is in the audit trail (`modelshelf log {name} --alias {alias}`)",
                name=name,
                alias=alias,
                version=version,
                verdicts=verdicts,
            )
        return mv

    def _run_canary(self, name: str, version: int) -> tuple[gates.Verdict, str]:
        """The canary's verdict on a version, and the checksum of the bytes it ran on."""
        candidate = self.get(name, version=version)
        return self._canary_verdict(candidate), candidate.checksum

    def _canary_verdict(self, mv: ModelVersion) -> gates.Verdict:
        """``canary_passes``: load the candidate, verified, and re-run its prediction canary (:meth:`check`).

        Run before the moving transaction (it unpickles and predicts: far
        too long to hold the model's lock), on the candidate alone, whose
        result does not depend on where the alias points; the transaction
        then re-checks that the candidate's bytes are still the ones checked.
        A version without a canary fails the gate: nothing vouches for it.
        """
        from registry import gates

        try:
            report = self.check(mv.ref)
        except RegistryError as exc:
            return gates.Verdict(False, f"the canary of {mv.ref} could not run: {exc}")
        return gates.Verdict(report.passed, f"the canary of {mv.ref} {report.summary}")

    def log_metrics(self, name: str, version: int, metrics: dict[str, float], step: int | None = None) -> None:
        """Append values to a version's metric history (for example an evaluation on new data).

        The version's ``metrics`` then show these values: ``mv.metrics`` holds
        the most recently logged value of each key.
        """
        self._refuse_if_read_only("log_metrics")
        name = validate_model_name(name)
        version = validate_version(version)
        checked = validate_metrics(metrics)
        if not checked:
            raise InvalidMetric("metrics is empty: give at least one {name: value}")
        self._catalog.log_metrics(name, version, checked, validate_step(step))

    def set_tags(
        self, name: str, version: int, tags: dict[str, str] | None = None, *, remove: Iterable[str] = ()
    ) -> ModelVersion:
        """Add or overwrite tags of a version, and remove the keys in ``remove``; return the version.

        Tags are the one part of a version that may change after registration
        (its artifact, params and metrics history never do).
        """
        self._refuse_if_read_only("set_tags")
        checked = validate_tags(tags)
        if isinstance(remove, str):
            raise InvalidTag("remove must be a list of tag keys, not a single string")
        removed = tuple(validate_tags({key: "" for key in remove}))
        if not checked and not removed:
            raise InvalidTag("give tags to set or keys to remove")
        both = sorted(set(checked) & set(removed))
        if both:
            raise InvalidTag(f"tag keys {both} are both set and removed; give each key once")
        return self._catalog.set_tags(validate_model_name(name), validate_version(version), checked, removed)

    def model_summaries(self) -> list[ModelSummary]:
        """Every model with a live version: latest version, number of versions, aliases, last registration."""
        return self._catalog.model_summaries()

    def delete_version(self, name: str, version: int) -> None:
        """Remove a version from every lookup; its number is never reused.

        Its aliases are dropped with it, and its blob is deleted when no other
        live version has the same bytes.
        """
        self._refuse_if_read_only("delete_version")
        digest, size = self._catalog.delete_version(validate_model_name(name), validate_version(version))
        try:
            self._catalog.free_blob_if_unreferenced(digest, size, self._store.delete)
        except StoreError as exc:  # the version is deleted; its bytes are only waste now
            warnings.warn(
                f"{name}:{version} was deleted but its blob could not be removed ({exc}); "
                "`modelshelf gc` will remove it later",
                stacklevel=2,
            )

    # -- bundles -----------------------------------------------------------

    def export_bundle(
        self, refs: list[str], path: str | os.PathLike[str], *, sign_with: PrivateKeySource | None = None
    ) -> list[ModelVersion]:
        """Write the versions ``refs`` designate, with their artifacts, to the tar file ``path``.

        >>> reg.export_bundle(["iris-knn:3", "iris-knn@production"], "iris.tar")   # doctest: +SKIP

        The bundle is signed with ``sign_with`` (an Ed25519 private key or the
        path of its PEM file), else with the registry's ``bundle_key``, else
        with the key file ``$MODELSHELF_BUNDLE_KEY`` names; with none of them it
        is unsigned, and an import refuses it unless told ``allow_unsigned``.
        The format is described in :mod:`registry.bundles`.
        """
        from registry.bundles import archive

        if not refs:
            raise InvalidArgument("name at least one version to export (for example 'iris-knn:3')")
        from registry.trust.keys import bundle_signing_key, sign_manifest  # cryptography: loaded only when bundles move

        key = bundle_signing_key(sign_with if sign_with is not None else self._bundle_key)
        versions = list({mv.ref: mv for mv in (self.get(ref) for ref in refs)}.values())
        histories = {name: self.metrics_history(name) for name in {mv.name for mv in versions}}  # one query a model
        entries = [
            archive.manifest_entry(mv, [p for p in histories[mv.name] if p.version == mv.version], self._canary_of(mv))
            for mv in versions
        ]
        manifest = archive.manifest_bytes(entries)
        signature = None if key is None else sign_manifest(key, manifest)
        archive.write_bundle(Path(os.fspath(path)), manifest, signature, versions, self.open_artifact)
        return versions

    def import_bundle(
        self,
        path: str | os.PathLike[str],
        *,
        trusted_keys: Iterable[PublicKeySource] | None = None,
        allow_unsigned: bool = False,
    ) -> list[Imported]:
        """Add the versions of the bundle at ``path``, all or none; return what became of each.

        >>> reg.import_bundle("iris.tar", trusted_keys=["keys/team-a.pub"])   # doctest: +SKIP

        ``trusted_keys`` are the public keys (files, directories of ``*.pub``
        files, or key objects) whose signatures are accepted; without them,
        those ``$MODELSHELF_TRUSTED_KEYS`` names. An unsigned bundle, or one
        signed by another key, raises :class:`~registry.errors.UntrustedBundle`
        unless ``allow_unsigned``; a signature that does not match always does.
        A file that is not a bundle, or one that is damaged or malformed, raises
        :class:`~registry.errors.InvalidBundle`; in every case nothing is
        recorded or stored. Versions get new numbers here, keep their history
        and tags, and are tagged ``modelshelf.imported-from`` with their
        origin, so importing the same bundle again records nothing twice
        (see :mod:`registry.bundles`).
        """
        from registry import drafting
        from registry.bundles import archive
        from registry.bundles.checks import check_bundle, open_bundle

        self._refuse_if_read_only("import_bundle")
        source = Path(os.fspath(path))
        if not source.is_file():
            raise InvalidBundle(f"{source} is not a file; give the path of a bundle written by `modelshelf export`")
        results: list[Imported] = []
        actor = self._catalog.actor
        who = "@".join(part for part in (actor.user, actor.host) if part) or "unknown"
        with open_bundle(source) as tar, contextlib.ExitStack() as staged_blobs:
            bundle = check_bundle(
                tar, source, trusted_keys=trusted_keys, allow_unsigned=bool(allow_unsigned), accepted_by=who
            )
            signer, verified = bundle.signer, bundle.verified
            staged: dict[str, StagedBlob] = {}
            inventories: dict[str, tuple[str, ...] | None] = {}
            batch = []
            pending = []
            present: dict[str, list[ModelVersion]] = {}  # each model's versions here, listed once per import
            for entry in bundle.entries:  # every field of every entry was checked: only the bytes are left
                if entry.name not in present:
                    present[entry.name] = self._live_versions(entry.name)
                existing = _already_imported(entry, present[entry.name])
                if existing is not None:
                    results.append(Imported(entry.source, existing.ref, False, signer, verified))
                    continue
                if entry.digest not in staged:
                    member = bundle.blobs[entry.digest]
                    content = io.BytesIO()
                    write = functools.partial(archive.copy_blob, tar, member, content=content, source=source)
                    blob = staged_blobs.enter_context(self._store.stage(write))
                    if blob.digest != entry.digest:
                        raise CorruptedArtifact(
                            f"{source} was altered: the blob of {entry.source} hashes to "
                            f"{checksum_of(blob.digest)}, the manifest says {entry.checksum}; nothing was imported",
                            expected=entry.checksum,
                            actual=checksum_of(blob.digest),
                        )
                    staged[entry.digest] = blob
                    inventories[entry.digest] = archive.scanned_imports(entry, content)
                blob = staged[entry.digest]
                batch.append((drafting.draft_from_entry(entry, bundle.provenance, inventories[blob.digest]), blob))
                pending.append(entry)
            committed = self._commit_all(batch)  # one transaction
            for entry, mv in zip(pending, committed, strict=True):
                results.append(Imported(entry.source, mv.ref, True, signer, verified))
        return results

    def _live_versions(self, name: str) -> list[ModelVersion]:
        """Every live version of ``name``, or none when no such model was ever registered."""
        try:
            return self.versions(name)
        except NotFound:
            return []

    # -- maintenance -------------------------------------------------------

    def verify(
        self, deep: bool = True, *, sample: tuple[int, int] | None = None, max_duration: float | None = None
    ) -> VerifyReport:
        """Check that every live version's artifact is present and intact, and the catalog schema.

        ``deep=True`` re-hashes every blob; ``deep=False`` only checks presence
        and sizes, which is fast on thousands of versions. ``report.ok`` is
        false when any version is missing, damaged or marked damaged by
        :meth:`repair`; unreferenced blobs and stale temporary files are
        listed too, as waste for :meth:`gc`.

        ``sample=(i, n)`` re-hashes only the i-th of n fixed slices of the
        blobs, so a nightly ``verify`` scrubs everything over n nights;
        ``max_duration`` stops re-hashing after that many seconds (after at
        least one blob) and the report's ``not_reached`` names the rest.

        The catalog's trust is checked too: every audit-trail chain, and with
        a signing key every model's sealed state (aliases, deletions, latest,
        metrics) and every version's signature.
        """
        from registry import maintenance

        if sample is not None:
            sample = maintenance.check_sample(sample)
            if not deep:
                raise InvalidArgument("sample=(i, n) picks the blobs to re-hash: it needs deep=True")
        if max_duration is not None and (
            isinstance(max_duration, bool) or not isinstance(max_duration, (int, float)) or not max_duration >= 0
        ):
            raise InvalidArgument(f"max_duration must be a number of seconds >= 0, or None, not {max_duration!r}")
        return maintenance.verify(
            self._catalog,
            self._store,
            deep=bool(deep),
            key=self._signing_key,
            sample=sample,
            max_duration=max_duration,
        )

    def repair(self, *, dry_run: bool = False, source: str | os.PathLike[str] | None = None) -> RepairReport:
        """Set damaged blobs aside into ``quarantine/``, mark their versions damaged, and heal what can be.

        Every live blob is re-hashed; one of the wrong size or hash, or not a
        regular file, is moved (never deleted) into ``quarantine/`` under the
        store, and it and a missing one are marked damaged: their loads then
        raise :class:`~registry.errors.DamagedVersion` and :meth:`verify`
        reports them until healed. A version heals when its bytes come back
        verified: registering or importing the same bytes, or ``source``, the
        directory or URL of another store holding them (copied in, checked
        by hash). ``dry_run`` reports what would be done and changes nothing.
        """
        from registry import maintenance

        if not dry_run:
            self._refuse_if_read_only("repair")
        return maintenance.repair(self._catalog, self._store, dry_run=bool(dry_run), source=source)

    def gc(self, dry_run: bool = True, *, min_age: float = GC_MIN_AGE) -> GcReport:
        """Remove blobs that no live version references and stale temporary files.

        Nothing younger than ``min_age`` seconds (an hour by default) is
        touched, so a register in flight elsewhere keeps its blob. With
        ``dry_run`` (the default) nothing is removed: the report lists what
        would be.
        """
        from registry import maintenance

        if not dry_run:
            self._refuse_if_read_only("gc")
        if isinstance(min_age, bool) or not isinstance(min_age, (int, float)) or min_age < 0:
            raise InvalidArgument(f"min_age must be a number of seconds >= 0, not {min_age!r}")
        return maintenance.collect_garbage(self._catalog, self._store, dry_run=bool(dry_run), min_age=min_age)

    # -- reading -----------------------------------------------------------

    def get(self, ref_or_name: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """The metadata of one version; nothing is unpickled.

        ``ref_or_name`` is a name (the latest version) or a reference:
        ``"iris-knn:3"``, ``"iris-knn:latest"``, ``"iris-knn@production"``.
        """
        mv = self._catalog.get(resolve_ref(ref_or_name, version, alias))
        self._check_hmac(mv, required=False)
        return mv

    def seal(self, name: str) -> int:
        """Adopt the current state of ``name`` under the signing key; return its new state number.

        A keyed registry refuses a model whose state was changed without the
        key (or never sealed, as in catalogs made before sealing): check the
        model first (``events``, ``versions``, aliases), then seal it. The
        seal is recorded in the audit trail (``state.seal``) with who ran it.
        """
        self._refuse_if_read_only("seal")
        return self._catalog.seal_state(validate_model_name(name))

    def versions_importing(self, globals: Iterable[str]) -> list[ModelVersion]:
        """Live versions whose import inventory names any of ``globals`` (``"module.qualname"``).

        Aliased versions come first (they are what is served), then by name
        and version. One indexed query; no artifact is read. A version whose
        bytes are not a pickle has no inventory and is not listed; one
        registered before inventories were scanned (``imports_scanned``
        false) may miss the globals of nested pickles.
        """
        if isinstance(globals, str):
            raise InvalidArgument("globals must be a list of 'module.qualname' strings, not a single string")
        names = list(globals)
        if not all(isinstance(name, str) and name for name in names):
            raise InvalidArgument("globals must be non-empty 'module.qualname' strings")
        return self._catalog.versions_importing(names)

    def latest(self, name: str) -> ModelVersion:
        """The metadata of the highest live version of ``name``."""
        return self.get(validate_model_name(name))

    @overload
    def versions(self, name: str, *, as_frame: Literal[False] = False) -> list[ModelVersion]: ...
    @overload
    def versions(self, name: str, *, as_frame: Literal[True]) -> DataFrame: ...
    @overload
    def versions(self, name: str, *, as_frame: bool) -> list[ModelVersion] | DataFrame: ...

    def versions(self, name: str, *, as_frame: bool = False) -> list[ModelVersion] | DataFrame:
        """Every live version of ``name``, oldest first.

        ``as_frame=True`` returns a pandas DataFrame instead, one row per
        version with ``metrics.KEY``, ``params.KEY`` and ``tags.KEY`` columns
        (see :func:`registry.frames.versions_frame`; needs pandas).
        """
        from registry import frames

        found = self._authenticated(self._catalog.versions(validate_model_name(name)))
        return frames.versions_frame(found) if as_frame else found

    def _authenticated(self, found: list[ModelVersion]) -> list[ModelVersion]:
        """With a key, refuse a listing that shows a version whose signature no longer matches its row.

        As for :meth:`get`, an unsigned version is listed; one whose import
        inventory or params were rewritten is not shown as if signed.
        """
        for mv in found:
            self._check_hmac(mv, required=False)
        return found

    def models(self) -> list[str]:
        """The names of the models that have at least one live version, sorted."""
        return self._catalog.models()

    @overload
    def metrics_history(
        self, name: str, metric: str | None = None, *, as_frame: Literal[False] = False
    ) -> list[MetricPoint]: ...
    @overload
    def metrics_history(self, name: str, metric: str | None = None, *, as_frame: Literal[True]) -> DataFrame: ...
    @overload
    def metrics_history(
        self, name: str, metric: str | None = None, *, as_frame: bool
    ) -> list[MetricPoint] | DataFrame: ...

    def metrics_history(
        self, name: str, metric: str | None = None, *, as_frame: bool = False
    ) -> list[MetricPoint] | DataFrame:
        """Every value logged for ``name`` (or only ``metric``), by version, step, then time.

        ``as_frame=True`` returns a pandas DataFrame with ``name``,
        ``version``, ``key``, ``value``, ``step`` and ``timestamp`` columns
        (see :func:`registry.frames.history_frame`; needs pandas).
        """
        from registry import frames

        if metric is not None and not isinstance(metric, str):
            raise InvalidMetric(f"metric must be a metric name (str) or None, not {metric!r}")
        name = validate_model_name(name)
        points = self._catalog.metrics_history(name, metric)
        return frames.history_frame(points, name) if as_frame else points

    def load(
        self,
        ref_or_name: str,
        version: int | None = None,
        alias: str | None = None,
        *,
        strict: bool = False,
        safe: bool = False,
        trusted: Iterable[str] | None = None,
        validate: bool = False,
        check: bool | Literal["auto"] = "auto",
        mmap: bool = False,
    ) -> Any:
        """The object of one version, after verifying its bytes (its BLAKE3, else its SHA-256).

        A different Python, scikit-learn or numpy minor version than at
        registration issues an :class:`EnvironmentMismatchWarning`, or raises
        :class:`EnvironmentMismatch` with ``strict=True``. Missing or altered
        bytes raise :class:`CorruptedArtifact` and nothing is unpickled.

        ``safe=True`` unpickles through an allow-list of the numpy, scipy and
        scikit-learn types a model needs and raises :class:`UnsafeArtifact`
        naming any other global; ``trusted`` adds ``"module.name"`` entries
        (for skops artifacts, the types to trust). With a signing key, a
        version whose signature is missing or wrong raises
        :class:`UntrustedArtifact`.

        ``validate=True`` returns a thin wrapper whose ``predict``,
        ``transform`` and kin check their input against the version's input
        signature first (:class:`~registry.errors.SignatureMismatch`); it
        raises :class:`~registry.errors.SignatureNotFound` up front for a
        version that has none.

        ``check`` re-runs the version's prediction canary (see :meth:`check`)
        on the loaded model. ``True``: always, raising
        :class:`~registry.errors.CanaryMismatch` (with its ``report``) instead
        of returning a model whose outputs changed, and
        :class:`~registry.errors.CanaryNotFound` up front for a version with
        no canary. ``"auto"`` (the default): only when the environment
        differs from the registration's, and then the
        :class:`EnvironmentMismatchWarning` says whether the canary still
        passes; when it matches, no canary work at all.
        ``$MODELSHELF_CHECK`` (``auto``, ``always``, ``never``) sets what
        ``"auto"`` does. ``False``: never.

        ``mmap=True`` (joblib artifacts stored uncompressed, in a local
        directory store) maps the store's file read-only instead of copying
        it, verifies the bytes in that mapping, and returns a model whose
        large numpy arrays are read-only views of it: worker processes
        loading the same version share one copy in the page cache. The file
        must be writable by no one but this user and root
        (:class:`UntrustedArtifact` otherwise; see
        :mod:`registry.store.mapping`). Another format, a compressed
        artifact or another kind of store raises
        :class:`~registry.errors.InvalidArgument` saying why.
        """
        from registry.inputs.validated import ValidatedModel

        if not isinstance(mmap, bool):
            raise InvalidArgument(f"mmap must be True or False, not {mmap!r}")
        trusted_names = filecheck.trusted_names(trusted)
        mode = _check_mode(check)
        # Not get(): a load reads no tags, metrics or aliases; on SQLite without a key the lookup is one statement.
        ref = resolve_ref(ref_or_name, version, alias)
        lite = self._open_lite()
        found = None if lite is None else lite.version_to_load(ref)
        mv = self._catalog.version_to_load(ref) if found is None else found  # the full catalog names what is missing
        if validate and mv.input_signature is None:
            raise SignatureNotFound(mv.ref)
        if mmap:
            self._check_mappable(mv)
        model_canary = None
        if mode == "always":
            model_canary = self._canary_of(mv)
            if model_canary is None:
                asked_by = "check=True" if check is True else f"${CHECK_VARIABLE}=always (set it to auto)"
                raise CanaryNotFound(mv.ref, asked_by=asked_by)
        differences = environment_differences(mv.environment)
        if mode == "auto" and differences and not strict:  # strict raises on any difference before reading
            model_canary = self._canary_of(mv)
        if model_canary is None:
            note = _NO_CANARY_NOTE if mode == "auto" else ""
            model = self._load_version(
                mv,
                strict=strict,
                safe=bool(safe),
                trusted=trusted_names,
                note=note,
                differences=differences,
                mapped=mmap,
            )
        else:
            model = self._checked_load(
                mv,
                model_canary,
                differences,
                strict=strict,
                safe=bool(safe),
                trusted=trusted_names,
                raise_on_change=mode == "always",
                mapped=mmap,
            )
        if validate and mv.input_signature is not None:
            return ValidatedModel(model, mv.input_signature, mv.ref)
        return model

    def _canary_of(self, mv: ModelVersion) -> Canary | None:
        """``mv``'s canary, its MAC checked with a key: one edited by SQL is refused, never compared.

        The version's own signature is checked first, so an unsigned version
        is refused for what it is rather than for its canary.
        """
        self._check_hmac(mv)
        found = self._catalog.canary(mv.name, mv.version)
        key = self._signing_key
        if found is None or key is None:
            return found
        if not signing.canary_is_valid(key, found.hmac, mv.name, mv.checksum, found.to_json()):
            state = "no MAC" if found.hmac is None else "a MAC that does not match it"
            raise UntrustedArtifact(
                f"the prediction canary of {mv.ref} has {state} for this signing key: its rows or outputs were "
                "written or altered outside modelshelf, so it proves nothing; nothing was checked. Restore the "
                "catalog from a backup, or re-register the model with the key if you trust it"
            )
        return found

    def _checked_load(
        self,
        mv: ModelVersion,
        model_canary: Canary,
        differences: list[str],
        *,
        strict: bool,
        safe: bool,
        trusted: frozenset[str],
        raise_on_change: bool,
        mapped: bool = False,
    ) -> Any:
        """Load ``mv`` and re-run its canary; warn of a different environment with the verdict, or raise."""
        from registry.inputs import canary as canaries

        try:
            model = self._load_version(mv, strict=strict, safe=safe, trusted=trusted, warn=False, mapped=mapped)
        except EnvironmentMismatch:
            raise  # strict refused before unpickling: nothing failed to load, and the error says why
        except Exception:
            if differences:  # the warning that would have come before unpickling, without a verdict
                warnings.warn(_environment_warning(mv, differences, "loading failed"), stacklevel=3)
            raise
        rtol, atol = canaries.DEFAULT_RTOL, canaries.DEFAULT_ATOL
        try:
            report = canaries.run_canary(
                model, model_canary, mv.ref, rtol=rtol, atol=atol, environment=tuple(differences)
            )
        except RegistryError as exc:  # its rows cannot be rebuilt here (no pandas, say)
            if raise_on_change:
                raise
            # "auto" warns and never refuses what loaded before: the warning says the canary could not run
            warnings.warn(_environment_warning(mv, differences, f"its canary could not run here: {exc}"), stacklevel=3)
            return model
        if raise_on_change and report.changed:  # the error says it all, the environment included
            elsewhere = f" (registered in another environment: {'; '.join(differences)})" if differences else ""
            raise CanaryMismatch(
                f"{mv.ref} does not predict here what it predicted when registered{elsewhere}: "
                f"{canaries.verdict(report)}; the model was not returned (check() gives the whole report; "
                "load with check=False to accept it)",
                report,
            )
        if differences:
            warnings.warn(_environment_warning(mv, differences, canaries.verdict(report)), stacklevel=3)
        return model

    def canary(self, ref_or_name: str, version: int | None = None, alias: str | None = None) -> Canary | None:
        """The prediction canary recorded with a version (rows and outputs as JSON), or ``None`` if it has none.

        Reading it unpickles nothing; :meth:`check` is what loads the model and
        re-runs it. With a signing key a canary altered outside modelshelf is
        refused (:class:`~registry.errors.UntrustedArtifact`), as ``check`` refuses it.
        """
        return self._canary_of(self.get(ref_or_name, version, alias))

    def check(
        self,
        ref_or_name: str,
        version: int | None = None,
        alias: str | None = None,
        *,
        safe: bool = False,
        trusted: Iterable[str] | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-9,
    ) -> CheckReport:
        """Load a version (verified, as :meth:`load` does) and re-run its prediction canary; report what changed.

        >>> report = reg.check("iris-knn@production")                  # doctest: +SKIP
        >>> report.status, report.changed_rows                          # doctest: +SKIP
        ('equal', ())

        Each method recorded at registration is asked again about the same
        rows: ``"equal"`` (every value as recorded), ``"within tolerance"``
        (floats within ``numpy.isclose(new, recorded, rtol, atol)``; labels
        are always compared exactly) or ``"changed"``, with the cells that
        changed (row, column, recorded, now, differences). A version with no
        canary reports ``"no canary"`` without loading anything. ``safe`` and
        ``trusted`` are :meth:`load`'s; with a signing key a canary altered
        outside modelshelf raises :class:`~registry.errors.UntrustedArtifact`.
        The report lists how the environment differs from the registration's
        (no warning is issued: the report says it).
        """
        from registry.inputs import canary as canaries

        checked_rtol, checked_atol = canaries.check_tolerances(rtol, atol)
        trusted_names = filecheck.trusted_names(trusted)
        mv = self.get(ref_or_name, version, alias)
        differences = tuple(environment_differences(mv.environment))
        model_canary = self._canary_of(mv)
        if model_canary is None:
            return CheckReport(
                mv.ref,
                "no canary",
                rtol=checked_rtol,
                atol=checked_atol,
                environment=differences,
                note=canaries.NO_CANARY_NOTE,
            )
        model = self._load_version(mv, strict=False, safe=bool(safe), trusted=trusted_names, warn=False)
        return canaries.run_canary(
            model, model_canary, mv.ref, rtol=checked_rtol, atol=checked_atol, environment=differences
        )

    def preflight(
        self,
        python: str | os.PathLike[str],
        refs: Iterable[str] | None = None,
        *,
        all_versions: bool = False,
        timeout: float = 300.0,
        rtol: float = 1e-6,
        atol: float = 1e-9,
        trusted: Iterable[str] | None = None,
    ) -> PreflightReport:
        """Would these versions load, and predict as recorded, under another interpreter? Ask it.

        >>> report = reg.preflight("/opt/next/bin/python")               # doctest: +SKIP
        >>> [(r.ref, r.status, r.canary) for r in report.aliased_breaking]  # doctest: +SKIP
        [('churn-hgb:7', 'fails', 'not run')]

        ``python`` is the other environment's interpreter (it needs
        scikit-learn, joblib and numpy, and whatever the models import, but
        not modelshelf). Each version's bytes are verified here (checksum,
        and the signature with a key), handed to a subprocess of ``python``
        on its standard input with the version's canary, loaded there and
        asked the canary's questions; the answers are compared here as
        :meth:`check` compares them. By default the versions an alias points
        at; ``refs`` names others, ``all_versions=True`` takes every version.
        Loading there runs the model's code, as :meth:`load` does here; it
        runs in an empty directory without this registry's keys. A version
        refused here (its bytes or signature do not verify) is that version's
        ``"fails"``, never handed over. ``timeout`` bounds each version (a
        hang is its failure); ``trusted`` names the types a skops artifact may
        hold beyond skops' defaults, as for :meth:`load`.
        """
        from registry.inputs import canary as canaries
        from registry.inputs import preflight

        interpreter = preflight.check_interpreter(python)
        limit = preflight.check_timeout(timeout)
        checked_rtol, checked_atol = canaries.check_tolerances(rtol, atol)
        trusted_names = sorted(filecheck.trusted_names(trusted))
        chosen = self._preflight_versions(refs, all_versions)
        target = preflight.probe(interpreter, limit)
        results = []
        for mv in chosen:
            try:
                model_canary = self._canary_of(mv)  # the version's signature and its canary's MAC, first
                header = {
                    "format": mv.format,
                    "trusted": trusted_names,
                    "canary": None if model_canary is None else model_canary.to_json(),
                }

                def write_artifact(pipe: IO[bytes], mv: ModelVersion = mv) -> None:
                    with self._store.open_verified(mv.digest, mv.size) as file:
                        while chunk := file.read(1 << 20):
                            pipe.write(chunk)

                try:
                    answer = preflight.run_child(interpreter, header, write_artifact, limit)
                except CorruptedArtifact as exc:
                    raise self._corrupted(mv, exc) from None
            except TrustError as exc:
                results.append(preflight.refused_here(mv, exc, target))
                continue
            results.append(
                preflight.result_of(mv, mv.aliases, model_canary, answer, target, rtol=checked_rtol, atol=checked_atol)
            )
        return PreflightReport(interpreter, target, tuple(results))

    def _preflight_versions(self, refs: Iterable[str] | None, all_versions: bool) -> list[ModelVersion]:
        """The versions a pre-flight asks about: ``refs``, every version, or (by default) the aliased ones."""
        if not isinstance(all_versions, bool):
            raise InvalidArgument(f"all_versions must be True or False, not {all_versions!r}")
        if refs is not None:
            if isinstance(refs, str):
                refs = [refs]
            if all_versions:
                raise InvalidArgument("give refs or all_versions=True, not both")
            chosen = [self.get(ref) for ref in refs]
            if not chosen:
                raise InvalidArgument("refs is empty: name at least one version, or leave it out for the aliased ones")
            return list({mv.ref: mv for mv in chosen}.values())
        found: list[ModelVersion] = []
        for name in self.models():
            versions = self.versions(name)
            found.extend(versions if all_versions else [mv for mv in versions if mv.aliases])
        return found

    def migrate(
        self,
        ref_or_name: str,
        version: int | None = None,
        alias: str | None = None,
        *,
        alias_follow: bool = False,
        safe: bool = False,
        trusted: Iterable[str] | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-9,
    ) -> ModelVersion:
        """Re-save a version under this environment as a new version, only if its canary passes here.

        >>> new = reg.migrate("iris-knn@production", alias_follow=True)  # doctest: +SKIP
        >>> new.lineage.parent, new.tags["modelshelf.migrated-from"]     # doctest: +SKIP
        ('iris-knn:3', 'iris-knn:3')

        After an upgrade of scikit-learn or numpy an old pickle may still
        load with a warning; migrating rewrites it with the libraries of this
        process, so that it loads cleanly here and later. The version is
        loaded (verified; ``safe``/``trusted`` as in :meth:`load`) and its
        canary re-run first: when anything changed,
        :class:`~registry.errors.CanaryMismatch` carries the report and
        nothing is written; a version with no canary raises
        :class:`~registry.errors.CanaryNotFound` (nothing vouches that it
        predicts the same). The new version keeps the old one's params,
        metrics, tags, description, format, input signature and data
        fingerprint, has it as ``parent``, the tag
        ``modelshelf.migrated-from`` naming it, and a canary on the same rows
        answered here. ``alias_follow=True`` then moves each alias of the old
        version to the new one (through its gates, if protected).
        """
        from registry import drafting
        from registry.inputs import canary as canaries
        from registry.provenance import lineage

        self._refuse_if_read_only("migrate")
        if not isinstance(alias_follow, bool):
            raise InvalidArgument(f"alias_follow must be True or False, not {alias_follow!r}")
        checked_rtol, checked_atol = canaries.check_tolerances(rtol, atol)
        trusted_names = filecheck.trusted_names(trusted)
        old = self.get(ref_or_name, version, alias)
        old_canary = self._canary_of(old)
        if old_canary is None:
            raise CanaryNotFound(old.ref, asked_by="migrate (check it by hand and re-register it)")
        model = self._load_version(old, strict=False, safe=bool(safe), trusted=trusted_names, warn=False)
        differences = tuple(environment_differences(old.environment))
        report = canaries.run_canary(
            model, old_canary, old.ref, rtol=checked_rtol, atol=checked_atol, environment=differences
        )
        if not report.passed:
            raise CanaryMismatch(
                f"{old.ref} does not predict here what it predicted when registered: {canaries.verdict(report)}; "
                "nothing was written (check() gives the whole report)",
                report,
            )
        rows, _ = canaries.decoded(old_canary, old.ref)
        new_canary = canaries.make_canary(model, rows, what="canary")
        draft = drafting.draft_from_input(old.name, old.format, alias=None)
        tags = {**old.tags, MIGRATED_FROM_TAG: old.ref}
        draft = drafting.with_values(draft, metrics=old.metrics, tags=tags, description=old.description)
        fmt = formats.get_format(draft.format)
        pending = lineage.start_capture()
        kept = old.lineage or Lineage()
        imports: list[str] = []

        def write(file: IO[bytes]) -> None:
            imports.extend(formats.dump(fmt, model, file))

        def written() -> dict[str, Any]:
            derived = Lineage(
                **pending(), data=kept.data, data_shape=kept.data_shape, data_columns=kept.data_columns, parent=old.ref
            )
            return {"imports": tuple(imports), "lineage": derived}

        draft = replace(
            draft, params=validate_params(old.params), input_signature=old.input_signature, canary=new_canary
        )
        new = self._commit_one(draft, write, written)
        if alias_follow:
            self._follow_aliases(old, new)
            new = self.get(new.ref)
        return new

    def _follow_aliases(self, old: ModelVersion, new: ModelVersion) -> None:
        """Move each alias of ``old`` to ``new``; refused ones stay, and the error names the version written."""
        moved, refused = [], []
        for alias in old.aliases:
            try:
                self.set_alias(old.name, alias, new.version)
                moved.append(alias)
            except PromotionRefused as exc:
                refused.append((alias, exc))
        if refused:
            alias, first = refused[0]
            why = "; ".join(f"{name}: {exc}" for name, exc in refused)
            raise PromotionRefused(
                f"{new.ref} was written (migrated from {old.ref}) and "
                f"{'moved ' + ', '.join(moved) if moved else 'no alias moved'}, but "
                f"{', '.join(name for name, _ in refused)} stayed on {old.ref}: {why}",
                name=old.name,
                alias=alias,
                version=new.version,
                verdicts=first.verdicts,
            )

    # -- finding -----------------------------------------------------------

    @overload
    def search(
        self,
        name: str | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        *,
        as_frame: Literal[False] = False,
    ) -> list[ModelVersion]: ...
    @overload
    def search(
        self,
        name: str | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        *,
        as_frame: Literal[True],
    ) -> DataFrame: ...
    @overload
    def search(
        self,
        name: str | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        *,
        as_frame: bool,
    ) -> list[ModelVersion] | DataFrame: ...

    def search(
        self,
        name: str | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        *,
        as_frame: bool = False,
    ) -> list[ModelVersion] | DataFrame:
        """Live versions matching a filter, found and sorted by the database.

        >>> reg.search("iris-knn", where="metrics.accuracy > 0.9 and params.n_neighbors <= 8",
        ...            order_by="metrics.accuracy desc", limit=3)               # doctest: +SKIP

        Fields: ``metrics.KEY`` (latest value), ``params.KEY`` (compared by
        the stored JSON type), ``tags.KEY``, ``lineage.KEY`` (``data``,
        ``commit``, ``dirty``, ``script``, ``user``, ``host``,
        ``modelshelf_version``, ``parent``), ``version``, ``created_at``,
        ``format``, ``name``; operators ``= != < <= > >=``, ``in (…)``,
        ``like``, ``is null``, ``and``, ``or``, ``not``, parentheses. Without
        ``name`` every model is searched; without ``order_by`` results come
        by name, then version. A malformed filter raises
        :class:`~registry.errors.InvalidQuery` naming the position.

        ``as_frame=True`` returns a pandas DataFrame in the same order, as
        MLflow's ``search_runs`` does: one row per version, ``metrics.KEY``,
        ``params.KEY``, ``tags.KEY`` and ``lineage.KEY`` columns named like
        the filter's fields, typed (see :mod:`registry.frames`; needs pandas).
        """
        from registry import frames
        from registry.query import parse_filter, parse_order_by

        if name is not None:
            name = validate_model_name(name)
        tree = None if where is None else parse_filter(where)
        order = () if order_by is None else parse_order_by(order_by)
        found = self._authenticated(self._catalog.search(name, tree, order, validate_limit(limit)))
        return frames.versions_frame(found) if as_frame else found

    def versions_page(
        self,
        name: str,
        *,
        where: str | None = None,
        order_by: str | None = None,
        offset: int = 0,
        limit: int = 50,
        after: str | None = None,
    ) -> VersionPage:
        """One page of ``name``'s live versions, paginated in the database, with the total that match.

        >>> reg.versions_page("iris-knn", order_by="metrics.accuracy desc", offset=40, limit=20)  # doctest: +SKIP

        The same filter and ordering as :meth:`search` (without ``order_by``:
        by version); ``offset`` skips that many matching versions, which the
        database still walks past. ``after`` (the ``next_cursor`` of a page of
        the same model, filter and order) starts right after that page
        instead, by seeking in the index: ordered by version, created_at or
        one metric, page 20,000 costs what the first one does. A cursor of
        another query, or one edited, is :class:`InvalidArgument`.
        """
        from registry.query import parse_filter, parse_order_by

        name = validate_model_name(name)
        tree = None if where is None else parse_filter(where)
        order = () if order_by is None else parse_order_by(order_by)
        checked_limit = validate_limit(limit)
        if checked_limit is None:
            raise InvalidArgument("limit must be an integer of at least 1 for a page, not None")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_INT64:
            # past 64 bits the database driver would raise its own OverflowError
            raise InvalidArgument(f"offset must be a whole number from 0 to {MAX_INT64}, not {offset!r}")
        if after is not None and offset:
            raise InvalidArgument("a page starts at offset= or after= a cursor, not both: leave offset at 0")
        found, total, cursor = self._catalog.search_page(name, tree, order, checked_limit, offset, after)
        return VersionPage(self._authenticated(found), total, offset, checked_limit, cursor)

    def metric_series(self, name: str, metrics: Iterable[str]) -> dict[str, list[tuple[int, float]]]:
        """Each live version's current value of each of ``metrics`` (what ``mv.metrics`` shows), by version.

        >>> reg.metric_series("iris-knn", ["accuracy"])          # doctest: +SKIP
        {'accuracy': [(1, 0.96), (2, 0.97), (3, 0.95)]}

        What a chart of metrics across versions draws, in one query that
        reads two numbers a version; :meth:`metrics_history` has every
        logged value, steps and times included. A version without a metric
        is left out of its list.
        """
        if isinstance(metrics, str):
            raise InvalidMetric("metrics must be a list of metric names, not a single string")
        keys = list(validate_metrics(dict.fromkeys(metrics, 0.0)))
        return self._catalog.metric_series(validate_model_name(name), keys)

    def metric_names(self, name: str) -> list[str]:
        """The metric keys any live version of ``name`` has (its current metrics), sorted.

        >>> reg.metric_names("iris-knn")                         # doctest: +SKIP
        ['accuracy', 'f1_macro']

        What a chart's picker offers: the keys of every version, not of the
        newest alone, which may have no metrics logged yet. One indexed
        query; ``ModelNotFound`` for an unknown model.
        """
        return self._catalog.metric_names(validate_model_name(name))

    def version_history(self, name: str, version: int) -> list[MetricPoint]:
        """Every value logged for one version of ``name``, every metric, by step (unset first), then time.

        The part of :meth:`metrics_history` that one version's page shows,
        read without going through the other versions.
        """
        return self._catalog.version_history(validate_model_name(name), validate_version(version))

    def alias_names(self, name: str) -> list[str]:
        """Every alias ``name`` has had, current or since moved away or deleted, from its audit trail, sorted.

        The names :meth:`alias_history` can tell about.
        """
        return self._catalog.alias_names(validate_model_name(name))

    def best(self, name: str, metric: str, mode: str = "max", where: str | None = None) -> ModelVersion:
        """The live version of ``name`` with the highest (``mode="max"``) or lowest (``"min"``) ``metric``.

        Versions without the metric are not candidates; on a tie the newest
        version wins. ``VersionNotFound`` when no version qualifies.
        """
        from registry.query import And, Field, NullCheck, OrderKey, parse_filter

        name = validate_model_name(name)
        if mode not in ("max", "min"):
            raise InvalidArgument(f"mode must be 'max' or 'min', not {mode!r}")
        validate_metrics({metric: 0.0})  # the key rules, stated as for any metric
        field = Field("metrics", metric)
        candidates: Node = NullCheck(field, negated=True)  # is not null: versions without it are no candidates
        if where is not None:
            candidates = And((parse_filter(where), candidates))
        order = (OrderKey(field, descending=mode == "max"), OrderKey(Field("version", None), descending=True))
        found = self._authenticated(self._catalog.search(name, candidates, order, 1))
        if not found:
            condition = f" matching {where!r}" if where is not None else ""
            raise VersionNotFound(name, None, f"no live version{condition} has the metric {metric!r}")
        return found[0]

    def ancestors(self, ref_or_name: str, version: int | None = None, alias: str | None = None) -> list[str]:
        """The references a version was derived from (``register(..., parent=…)``), nearest first."""
        return self._catalog.ancestors(resolve_ref(ref_or_name, version, alias))

    @overload
    def events(
        self,
        name: str | None = None,
        since: datetime | str | None = None,
        *,
        limit: int | None = None,
        as_frame: Literal[False] = False,
        alias: str | None = None,
        action: str | None = None,
    ) -> list[Event]: ...
    @overload
    def events(
        self,
        name: str | None = None,
        since: datetime | str | None = None,
        *,
        limit: int | None = None,
        as_frame: Literal[True],
        alias: str | None = None,
        action: str | None = None,
    ) -> DataFrame: ...
    @overload
    def events(
        self,
        name: str | None = None,
        since: datetime | str | None = None,
        *,
        limit: int | None = None,
        as_frame: bool,
        alias: str | None = None,
        action: str | None = None,
    ) -> list[Event] | DataFrame: ...

    def events(
        self,
        name: str | None = None,
        since: datetime | str | None = None,
        *,
        limit: int | None = None,
        as_frame: bool = False,
        alias: str | None = None,
        action: str | None = None,
    ) -> list[Event] | DataFrame:
        """The audit trail, oldest first: every register, alias change, tag change, metric log and deletion.

        ``name`` keeps one model's events, ``since`` (a timezone-aware datetime
        or an ISO 8601 string, UTC when it has no offset) those from that
        moment on, ``alias`` those about that alias, ``action`` those of
        that kind (one of :data:`~registry.domain.EVENT_ACTIONS`), and
        ``limit`` only the most recent of those that match: the database
        filters, so the newest moves of one alias need not read the whole
        trail. ``as_frame=True`` returns a pandas DataFrame, one row per
        event (see :func:`registry.frames.events_frame`; needs pandas).
        """
        from registry import frames

        if name is not None:
            name = validate_model_name(name)
        moment = None if since is None else validate_moment(since, "since")
        if alias is not None:
            alias = validate_alias(alias)
        if action is not None and action not in EVENT_ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(EVENT_ACTIONS)}, not {action!r}")
        found = self._catalog.events(name, moment, validate_limit(limit), alias=alias, action=action)
        return frames.events_frame(found) if as_frame else found

    def alias_history(self, name: str, alias: str) -> list[AliasPeriod]:
        """Which version ``alias`` pointed at, and from when until when, oldest first.

        >>> [(p.version, p.since, p.until) for p in reg.alias_history("iris-knn", "production")]  # doctest: +SKIP
        """
        return self._catalog.alias_history(validate_model_name(name), validate_alias(alias))

    def alias_at(self, name: str, alias: str, moment: datetime | str) -> AliasPeriod | None:
        """The period covering ``moment``: which version ``alias`` pointed at then, and since when."""
        when = validate_moment(moment, "moment")
        return next((period for period in self.alias_history(name, alias) if period.covers(when)), None)

    def _check_hmac(self, mv: ModelVersion, *, required: bool = True) -> None:
        """With a key, refuse a version whose signature does not match what the catalog says of it.

        ``required=False`` (metadata reads) lets an unsigned version through
        but still refuses a signature that no longer matches: a v2 signature
        covers the import inventory and params that ``get`` shows.
        """
        key = self._signing_key
        if key is None:
            return
        state = signing.check_model_version(key, mv)
        if state in ("valid", "legacy") or (state == "missing" and not required):
            return
        if state == "missing":
            raise UntrustedArtifact(
                f"{mv.ref} has no signature for this signing key: it was registered without the key; "
                "nothing was loaded. Re-register it with the key if you trust it"
            )
        raise UntrustedArtifact(
            f"{mv.ref} has a signature that does not match its catalog entry for this signing key: its checksum, "
            "size, import inventory, params, environment or input signature were altered outside modelshelf, or "
            "another key signed it; nothing "
            "was served. Restore the catalog from a backup, or re-register the model with the key if you trust it"
        )

    def fetch(
        self, ref_or_name: str, path: str | os.PathLike[str], version: int | None = None, alias: str | None = None
    ) -> ModelVersion:
        """Write one version's artifact, verified, to the file ``path``; return its metadata.

        For serving containers that load the file themselves: the bytes are
        hashed while copied and the file appears at ``path`` (atomically
        replacing it) only if they match the catalog. Nothing is unpickled.
        """
        destination = Path(os.fspath(path))
        if destination.is_dir():
            raise InvalidPath(f"{destination} is a directory; give the path of the file to write")
        mv = self.get(ref_or_name, version, alias)
        self._check_hmac(mv)
        try:
            self._store.copy_out(mv.digest, mv.size, destination)
        except CorruptedArtifact as exc:
            raise self._corrupted(mv, exc) from None
        return mv

    @contextlib.contextmanager
    def open_artifact(
        self, ref_or_name: str, version: int | None = None, alias: str | None = None
    ) -> Iterator[io.BufferedIOBase]:
        """The verified artifact of one version as a binary stream (nothing is unpickled).

        >>> with reg.open_artifact("iris-knn@production") as stream:   # doctest: +SKIP
        ...     upload(stream)
        """
        mv = self.get(ref_or_name, version, alias)
        self._check_hmac(mv)
        try:
            with self._store.open_verified(mv.digest, mv.size, blake3=self._blake3_of(mv)) as stream:
                yield stream
        except CorruptedArtifact as exc:
            raise self._corrupted(mv, exc) from None

    def _check_mappable(self, mv: ModelVersion) -> None:
        """Refuse ``load(..., mmap=True)`` before reading anything when the format or the store cannot map."""
        if mv.format != "joblib":
            raise InvalidArgument(
                f"mmap=True maps the raw numpy arrays of a joblib artifact; {mv.ref} is in the {mv.format!r} "
                "format, whose bytes are not laid out to be mapped: load it without mmap=True, or register the "
                "model again with format='joblib' (the default)"
            )
        if not isinstance(self._store, MappableStore):
            raise InvalidArgument(
                f"mmap=True maps the store's own file, and the store at {self._store.location} keeps no file this "
                "machine can map (an object store is read through a private verified copy): load without "
                "mmap=True, or serve from a registry whose store is a local directory"
            )

    def _open_for_load(self, mv: ModelVersion, mapped: bool) -> contextlib.AbstractContextManager[io.BufferedIOBase]:
        """The verified bytes of ``mv``: a private copy, or (``mapped``) a verified read-only mapping."""
        if mapped and isinstance(self._store, MappableStore):
            return self._store.open_mapped(mv.digest, mv.size, blake3=self._blake3_of(mv))
        return self._store.open_verified(mv.digest, mv.size, blake3=self._blake3_of(mv))

    def _blake3_of(self, mv: ModelVersion) -> str | None:
        """The fast digest to verify ``mv``'s bytes with, or ``None`` to verify the SHA-256.

        Without a signing key the catalog's BLAKE3 is trusted as its SHA-256
        is (whoever can rewrite either can also re-point the version). With a
        key only a v4 signature covers it (checked by :meth:`_check_hmac`
        first): under an older one the column is the catalog's word alone, and
        SQL could set the BLAKE3 of swapped bytes, so the SHA-256 decides.
        """
        if mv.blake3 is None or (self._signing_key is not None and not signing.covers_blake3(mv.hmac)):
            return None
        return mv.blake3

    def _corrupted(self, mv: ModelVersion, exc: CorruptedArtifact) -> CorruptedArtifact:
        """The error for a failed read of ``mv``'s blob; only a missing one asks the catalog whether it is marked."""
        if exc.actual is None:
            damage = self._catalog.damage_of(mv.digest)
            if damage is not None:
                return DamagedVersion(mv.ref, mv.digest, damage)
        return CorruptedArtifact(
            f"{mv.ref} (model {mv.name!r}, version {mv.version}) failed verification: {exc}; "
            f"expected {exc.expected}, found {exc.actual or 'nothing'}. Nothing was loaded; "
            "run `modelshelf verify` and restore the store from a backup or re-register the model",
            ref=mv.ref,
            expected=exc.expected,
            actual=exc.actual,
        )

    def _load_version(
        self,
        mv: ModelVersion,
        *,
        strict: bool,
        safe: bool,
        trusted: frozenset[str],
        warn: bool = True,
        note: str = "",
        differences: list[str] | None = None,
        mapped: bool = False,
    ) -> Any:
        """The one deserialization path: signature, environment, verified bytes, then unpickling.

        ``mapped`` reads the bytes through a verified read-only mapping of the
        store's file (``load(..., mmap=True)``, checked by :meth:`_check_mappable`)
        instead of a private copy.

        ``warn=False`` leaves the environment warning to the caller, which
        re-runs the canary first and says how it went; ``note`` ends the
        warning. ``differences`` is :func:`environment_differences` of ``mv``
        when the caller has it already.
        """
        fmt = formats.get_format(mv.format)
        self._check_hmac(mv)
        if differences is None:
            differences = environment_differences(mv.environment)
        if differences and strict:
            raise EnvironmentMismatch(
                f"{mv.ref} was registered in another environment: {'; '.join(differences)}; "
                "install matching versions, or load without strict=True to accept the risk"
            )
        try:
            # One read: the bytes hashed are the bytes unpickled, whoever can write the store meanwhile.
            with self._open_for_load(mv, mapped) as file:
                if mapped and not formats.maps_in_place(fmt, file):
                    raise InvalidArgument(
                        f"mmap=True cannot map {mv.ref}: it was registered compressed, so its arrays exist only "
                        "once inflated into private memory; load it without mmap=True, or register it again "
                        "uncompressed (compress=0, the default) to map it"
                    )
                if differences and warn:
                    warnings.warn(
                        EnvironmentMismatchWarning(
                            f"{mv.ref} was registered in another environment: {'; '.join(differences)}; "
                            f"{note}predictions may differ or loading may fail (strict=True makes this an error)"
                        ),
                        stacklevel=3,
                    )
                return formats.load(fmt, file, mv.ref, safe=safe, trusted=trusted, inventory=_inventory(mv))
        except CorruptedArtifact as exc:
            raise self._corrupted(mv, exc) from None
        except SerializationError as exc:
            # A class of the registering script's __main__: say so, rather than "install the packages".
            missing = portability.missing_here(mv.imports or ())
            if not missing:
                raise
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise SerializationError(
                portability.load_advice(mv.ref, missing, f"{type(cause).__name__}: {cause}")
            ) from exc


#: The tag :meth:`Registry.migrate` puts on the version it writes, naming the version it re-saved.
MIGRATED_FROM_TAG = "modelshelf.migrated-from"
#: What the environment warning adds for a version whose canary cannot say whether its predictions changed.
_NO_CANARY_NOTE = "it has no prediction canary to check (registered before canaries, or without an input); "
#: ``$MODELSHELF_CHECK``: what ``load(..., check="auto")`` does.
CHECK_VARIABLE = "MODELSHELF_CHECK"
_CHECK_MODES = {"auto": "auto", "always": "always", "never": "never"}


def _check_mode(check: object) -> str:
    """``load``'s ``check`` as ``"always"``, ``"auto"`` or ``"never"`` (``"auto"`` as ``$MODELSHELF_CHECK`` says)."""
    if check is True:
        return "always"
    if check is False:
        return "never"
    if check != "auto":
        raise InvalidArgument(f"check must be True, False or 'auto', not {check!r}")
    configured = os.environ.get(CHECK_VARIABLE, "").strip().lower() or "auto"
    if configured not in _CHECK_MODES:
        raise InvalidArgument(
            f"${CHECK_VARIABLE} is {configured!r}; set it to auto, always or never (or unset it for auto)"
        )
    return _CHECK_MODES[configured]


def _environment_warning(mv: ModelVersion, differences: list[str], verdict: str) -> EnvironmentMismatchWarning:
    """The environment warning of a load that re-ran the canary: the differences, then how the canary went."""
    return EnvironmentMismatchWarning(
        f"{mv.ref} was registered in another environment: {'; '.join(differences)}; {verdict} "
        "(strict=True makes the difference an error)"
    )


def _make_canary(model: Any, input_example: Any, data: Any) -> Canary | None:
    """The canary of a register call, from ``input_example`` or else ``data``'s ``X``; ``None`` without input.

    Input a canary cannot keep exactly gives a :class:`CanaryWarning` and no
    canary; a model that cannot predict it raises (nothing is written).
    """
    from registry.provenance import fingerprint

    what, source = ("input_example", input_example) if input_example is not None else ("data", None)
    if source is None and data is not None:
        source = fingerprint.split_pair(data)[0]
    if source is None:
        return None
    from registry.inputs import canary as canaries

    try:
        return canaries.make_canary(model, source, what=what)
    except canaries.NotTabular as exc:
        if what == "data":  # data= also feeds the lineage fingerprint, which takes a Series: it just gives no rows
            return None
        warnings.warn(CanaryWarning(f"no prediction canary was kept: {what}: {exc}"), stacklevel=3)
    except canaries.Unsupported as exc:
        warnings.warn(CanaryWarning(f"no prediction canary was kept: {what}: {exc}"), stacklevel=3)
    return None


def _check_portable(model: str, imports: Iterable[str], *, strict: bool) -> None:
    """Warn (or with ``strict`` raise :class:`NotPortable`) when ``imports`` names what only this script has.

    Called from :meth:`Registry.register` through ``_commit_one``, before the
    version is committed: the warning's ``stacklevel`` points at the
    caller of ``register``, and an error (or a warning turned into one)
    leaves nothing behind but the staged blob, which is discarded.
    """
    names = portability.unportable(imports)
    if not names:
        return
    message = portability.registration_advice(model, names, strict=strict)
    if strict:
        raise NotPortable(message, names)
    warnings.warn(ModelPortabilityWarning(message, names), stacklevel=5)


def _already_imported(entry: BundleEntry, present: list[ModelVersion]) -> ModelVersion | None:
    """The version an earlier import of ``entry`` recorded here, if any (same bytes, same origin tag)."""
    from registry.bundles.manifest import ORIGIN_TAG

    return next(
        (mv for mv in present if mv.checksum == entry.checksum and mv.tags.get(ORIGIN_TAG) == entry.origin), None
    )


def _inventory(mv: ModelVersion) -> tuple[str, ...] | None:
    """The import inventory a safe load holds ``mv`` to, or ``None`` if it has none it can be held to.

    Inventories recorded before the scanner came from a tracer that missed
    nested pickles; holding such a version to one would refuse a good model.
    A ``v2:`` (or later) signature is only made by code that scans, so with a key the
    flag itself cannot be cleared by SQL to lift the check.
    """
    if mv.imports_scanned or (mv.hmac or "").startswith(signing.SCANNED_PREFIXES):
        return mv.imports
    return None


def catalog_revisions(
    home: str | os.PathLike[str] | None = None, *, catalog: str | None = None
) -> tuple[str | None, str]:
    """The schema revision of a registry's catalog (``None`` if not created yet) and the code's head."""
    from registry.catalog import schema_revisions

    return schema_revisions(resolve(home, catalog).catalog)


def is_older_revision(revision: str) -> bool:
    """Whether a catalog at ``revision`` is behind this code (rather than ahead of it)."""
    from registry.catalog import is_known_revision

    return is_known_revision(revision)


def upgrade_catalog(
    home: str | os.PathLike[str] | None = None, *, catalog: str | None = None
) -> tuple[str | None, str]:
    """Create or upgrade a registry's catalog schema to this code's head; return (before, after)."""
    from registry.catalog import upgrade_catalog as _upgrade_catalog

    return _upgrade_catalog(resolve(home, catalog).catalog)


def _verdict_fields(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict as the trail recorded it, back as :class:`~registry.gates.Verdict` arguments."""
    return {
        "passed": bool(recorded.get("passed")),
        "reason": str(recorded.get("reason", "")),
        "gate": str(recorded.get("gate", "")),
        "numbers": dict(recorded.get("numbers") or {}),
    }
