"""The exception tree of modelshelf: one base class, one module.

Every error a caller can meet derives from :class:`RegistryError`, and also
from the builtin it resembles, so ``except LookupError`` or
``except ValueError`` keep working in code that never heard of modelshelf.
Three families sit under the base, as httpx groups its errors: catch
:class:`NotFound` for "it is not there", :class:`InvalidInput` for "what you
gave is wrong" (fix the call, retrying cannot help) and :class:`TrustError`
for "the bytes or the catalog cannot be trusted" (nothing was loaded)::

    RegistryError
    ├── NotFound (LookupError)
    │   ├── ModelNotFound
    │   ├── VersionNotFound
    │   ├── AliasNotFound
    │   ├── SignatureNotFound
    │   ├── RegistryNotFound
    │   └── CanaryNotFound
    ├── InvalidInput (ValueError)
    │   ├── InvalidName
    │   │   └── InvalidReference
    │   ├── InvalidMetric
    │   ├── InvalidParam
    │   ├── InvalidTag
    │   ├── InvalidStep
    │   ├── InvalidFormat
    │   ├── InvalidInputSignature
    │   ├── InvalidData
    │   ├── InvalidPath
    │   ├── InvalidArgument
    │   │   └── InvalidType (TypeError)
    │   ├── InvalidQuery
    │   ├── InvalidKey
    │   ├── InvalidBundle
    │   ├── InvalidCatalogURL (also a CatalogError)
    │   ├── SignatureMismatch
    │   └── NotPortable
    ├── TrustError
    │   ├── CorruptedArtifact
    │   │   └── DamagedVersion
    │   ├── UnsafeArtifact
    │   │   └── ArtifactTooLarge
    │   ├── UntrustedTypes
    │   ├── UntrustedArtifact
    │   │   └── UntrustedBundle
    │   └── CanaryMismatch
    ├── SerializationError (TypeError)
    ├── SchemaVersionError
    ├── CatalogError
    │   ├── InvalidCatalogURL
    │   └── CommitOutcomeUnknown
    ├── StoreError (OSError)
    ├── EnvironmentMismatch
    ├── ReadOnlyRegistry (PermissionError)
    ├── MissingDependency (ImportError)
    └── PromotionRefused (PermissionError)

    EnvironmentMismatchWarning (UserWarning) is the warning twin of
    EnvironmentMismatch, issued by ``load`` unless ``strict=True``.
    ModelPortabilityWarning (UserWarning) is the warning twin of
    NotPortable, issued by ``register`` unless ``strict=True``.
    CanaryWarning (UserWarning) says why ``register`` recorded no prediction
    canary although an input was at hand (sparse input, a time zone…).

A refused bundle (:class:`InvalidBundle`) is invalid input to ``import``,
and the CLI still reports it as a trust failure (exit code 3). Messages say
what was wrong and what to do about it; the structured facts are kept as
attributes so programs need not parse the text.

>>> try:
...     raise InvalidMetric("metric 'acc' is nan; metrics must be finite (no NaN or infinity)")
... except ValueError as exc:
...     isinstance(exc, RegistryError)
True
"""

from __future__ import annotations

from typing import Any

from registry.digests import checksum_of


class RegistryError(Exception):
    """Base class of every error raised by modelshelf."""


class NotFound(RegistryError, LookupError):
    """Something named by the caller (a model, a version, an alias, an input signature) is not in the registry."""


class InvalidInput(RegistryError, ValueError):
    """An argument was refused before anything was written or read: fix the call, retrying will not help.

    Its subclasses say which kind of argument; the message names the bad
    value and what would be valid.
    """


class TrustError(RegistryError):
    """Stored bytes, a bundle or the catalog failed an integrity or trust check; nothing of it was used."""


class InvalidMetric(InvalidInput):
    """A metric key or value cannot be recorded (not a real number, not finite, a bad key, none given)."""


class InvalidParam(InvalidInput):
    """A param key or value cannot be stored as JSON (too deep, too large, too big an integer, not JSON)."""


class InvalidTag(InvalidInput):
    """A tag key or value cannot be stored, or a tag change is contradictory (a key both set and removed)."""


class InvalidStep(InvalidInput):
    """A metric step is not ``None`` or an integer a 64-bit column holds."""


class InvalidFormat(InvalidInput):
    """The artifact format named is not one modelshelf knows."""


class InvalidInputSignature(InvalidInput):
    """A ``signature=`` (the input schema) is malformed, or contradicts the fitted model it is registered with."""


class InvalidData(InvalidInput):
    """Data given to describe a model (``data=``, ``input_example=``, an ``X``) cannot be read or does not fit it."""


class InvalidPath(InvalidInput):
    """A path or location cannot be used: not a path, not a file where one is needed, a directory, unreadable."""


class InvalidArgument(InvalidInput):
    """Any other argument outside its allowed values (a limit, a mode, a duration, a time, a sample slice)."""


class InvalidType(InvalidArgument, TypeError):
    """An argument is of the wrong type where Python code expects a ``TypeError``; also an :class:`InvalidInput`."""


class InvalidName(InvalidInput):
    """A model name, alias or other identifier does not follow the naming rules."""


class InvalidReference(InvalidName):
    """A reference such as ``"iris:3"`` or ``"iris@production"`` is malformed."""


class ModelNotFound(NotFound):
    """No model of that name was ever registered in this catalog."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"model {name!r} is not in this registry; "
            "list the registered models with `modelshelf models` or Registry.models()"
        )


class VersionNotFound(NotFound):
    """The model exists, but not the requested version (never made, or deleted)."""

    def __init__(self, name: str, version: int | None, reason: str = "") -> None:
        self.name = name
        self.version = version
        tail = f" ({reason})" if reason else ""
        what = (
            f"version {version} of model {name!r} does not exist{tail}"
            if version is not None
            else f"model {name!r} has no such version{tail}"
        )
        super().__init__(f"{what}; list the versions with `modelshelf versions {name}` or Registry.versions({name!r})")


class AliasNotFound(NotFound):
    """The model exists, but no alias of that name points at one of its versions."""

    def __init__(self, name: str, alias: str) -> None:
        self.name = name
        self.alias = alias
        super().__init__(
            f"model {name!r} has no alias {alias!r}; set it with Registry.set_alias({name!r}, {alias!r}, VERSION)"
        )


class CorruptedArtifact(TrustError):
    """The stored bytes of a version are missing or differ from the recorded checksum.

    Nothing was unpickled. ``expected`` and ``actual`` are ``"sha256:…"``
    digests (``actual`` is ``None`` when the blob is missing).
    """

    def __init__(
        self,
        message: str,
        *,
        ref: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        super().__init__(message)


class DamagedVersion(CorruptedArtifact):
    """``repair`` found the version's bytes damaged or missing: quarantined them and marked the version.

    Nothing was loaded. ``damage`` says what ``repair`` found; the version
    heals as soon as the same bytes come back (see the message).
    """

    def __init__(self, ref: str, digest: str, damage: str) -> None:
        self.damage = damage
        super().__init__(
            f"{ref} is marked damaged: `modelshelf repair` found its blob {checksum_of(digest)} {damage} and set it "
            "aside (nothing was deleted, see quarantine/ in the store). Nothing was loaded. To heal it, "
            "re-register the same bytes, import a bundle holding them, or run `modelshelf repair --from OTHER_STORE`",
            ref=ref,
            expected=checksum_of(digest),
        )


class SerializationError(RegistryError, TypeError):
    """The object could not be written in the requested format (or read back)."""


class SchemaVersionError(RegistryError):
    """The catalog's schema is older or newer than this version of modelshelf."""


class CatalogError(RegistryError):
    """The catalog cannot be opened or used (not a database, unreachable, locked too long)."""


class InvalidCatalogURL(CatalogError, InvalidInput):
    """The catalog URL cannot be parsed, or names something modelshelf cannot use (an in-memory database)."""


class CommitOutcomeUnknown(CatalogError):
    """The connection to a server catalog was lost while a change committed: it may or may not be recorded.

    Unlike other catalog errors, repeating the change blindly may record it
    twice (a second version of the same bytes, say); look first.
    """


class StoreError(RegistryError, OSError):
    """The blob store cannot be written or read (permissions, disk full, bad path)."""


class EnvironmentMismatch(RegistryError):
    """Raised by ``load(..., strict=True)`` when the environment differs from registration."""


class EnvironmentMismatchWarning(UserWarning):
    """Issued by ``load`` when Python, scikit-learn or numpy differ from registration."""


class ModelPortabilityWarning(UserWarning):
    """Issued by ``register`` when the artifact imports a class or function no other process can import.

    That is a name of the running script (``__main__.Foo``) or one defined
    inside a function: the version is stored, but only a process whose
    ``__main__`` defines the same name can load it. ``names`` lists them.
    ``register(..., strict=True)`` raises :class:`NotPortable` instead.
    """

    def __init__(self, message: str, names: tuple[str, ...] = ()) -> None:
        self.names = names
        super().__init__(message)


class UnsafeArtifact(TrustError):
    """``load(..., safe=True)`` met a global outside the allow-list; nothing it named was run.

    ``global_name`` is the refused ``module.name``.
    """

    def __init__(self, message: str, global_name: str) -> None:
        self.global_name = global_name
        super().__init__(message)


class ArtifactTooLarge(UnsafeArtifact):
    """A safe load would allocate far more than the artifact's size: the bytes are built to amplify.

    ``constructor`` names what would have allocated; ``requested`` and
    ``limit`` are in bytes. Nothing of the oversized allocation was made.
    """

    def __init__(self, message: str, constructor: str, requested: int, limit: int) -> None:
        self.constructor = constructor
        self.requested = requested
        self.limit = limit
        super().__init__(message, constructor)


class UntrustedTypes(TrustError):
    """A skops artifact contains types that were not declared trusted; ``types`` lists them."""

    def __init__(self, message: str, types: list[str]) -> None:
        self.types = types
        super().__init__(message)


class UntrustedArtifact(TrustError):
    """A signing key is set and the version's signature is missing or does not match."""


class UnmappableBlob(UntrustedArtifact):
    """``load(..., mmap=True)`` refused to map a blob file that others than this user or root can write.

    The version itself may be sound: a plain load (a private verified copy) still works.
    """


class UntrustedBundle(UntrustedArtifact):
    """A bundle is unsigned, signed by a key not trusted here, or its signature does not match its manifest.

    Nothing of the bundle was recorded or stored. ``signer`` is the
    ``"sha256:…"`` fingerprint of the public key the bundle names (``None``
    when it is unsigned or its signature cannot be read).
    """

    def __init__(self, message: str, *, signer: str | None = None) -> None:
        self.signer = signer
        super().__init__(message)


class InvalidBundle(InvalidInput):
    """A file given to import is not a modelshelf bundle, or is one that is damaged, malformed or built to harm.

    Not a tar, empty, truncated, compressed, holding links or sparse members,
    declaring sizes its bytes do not back, or a manifest with a field no
    registry could have written. Nothing of it was recorded or stored.
    """


class InvalidKey(InvalidInput):
    """A key file (or key object) cannot be used: not a key, the wrong kind, encrypted, too short, a private key
    given where a public one belongs, or no key set where the operation needs one."""


class InvalidQuery(InvalidInput):
    """A search filter or ordering is malformed, or compares a field with the wrong kind of value.

    ``query`` is the text, ``position`` the 0-based offset of the problem
    (``None`` when it is not about one place) and ``expected`` what would
    have been valid there.
    """

    def __init__(self, message: str, *, query: str, position: int | None = None, expected: str | None = None) -> None:
        self.query = query
        self.position = position
        self.expected = expected
        super().__init__(message)


class SignatureMismatch(InvalidInput):
    """Input given to a model does not match the input signature recorded with its version.

    ``expected`` and ``actual`` describe the mismatching aspect (a column
    count, the column names, a dtype); ``ref`` names the version.
    """

    def __init__(self, message: str, *, ref: str | None = None, expected: object = None, actual: object = None) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        super().__init__(message)


class NotPortable(InvalidInput):
    """``register(..., strict=True)`` refused a model that only the registering script could load again.

    Its artifact imports classes or functions of the running script's
    ``__main__`` module, or ones defined inside a function (``names`` lists
    them): move them into an importable module. Nothing was written.
    """

    def __init__(self, message: str, names: tuple[str, ...]) -> None:
        self.names = names
        super().__init__(message)


class SignatureNotFound(NotFound):
    """Input validation was asked for a version that has no input signature recorded."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(
            f"{ref} has no input signature to check against; register it with signature=… or "
            "input_example=… (fitted scikit-learn estimators get one automatically)"
        )


class RegistryNotFound(NotFound):
    """No registry is at the location given, and the call was not allowed to create one.

    Raised by ``Registry(..., create=False)`` (and so by every command of the
    command line that only reads) instead of creating an empty registry at a
    mistyped path. ``location`` is the absolute path of the missing catalog
    file, or the database URL (password hidden) of a server with no
    modelshelf schema.
    """

    def __init__(self, message: str, *, location: str) -> None:
        self.location = location
        super().__init__(message)


class ReadOnlyRegistry(RegistryError, PermissionError):
    """A write was asked of a registry opened with ``read_only=True``; nothing was touched.

    A ``PermissionError`` as well, the builtin for "this may not be changed
    from here": retrying cannot help, and the call itself is fine; it needs
    a registry opened for writing. ``operation`` names the refused method.
    """

    def __init__(self, message: str, *, operation: str) -> None:
        self.operation = operation
        super().__init__(message)


class MissingDependency(RegistryError, ImportError):
    """A feature needs an optional package that is not installed; the message names the extra that brings it.

    ``package`` is the missing import (``"pandas"``), ``extra`` the one to
    install (``pip install 'modelshelf[pandas]'``). Also an ``ImportError``,
    so ``except ImportError`` around an optional feature keeps working.
    """

    def __init__(self, package: str, extra: str, message: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(message, name=package)


class PromotionRefused(RegistryError, PermissionError):
    """An alias was not moved: a promotion gate failed, or the alias is protected; nothing moved.

    Raised by :meth:`~registry.facade.Registry.promote`, and by ``set_alias``
    / ``delete_alias`` on a protected alias. Like :class:`ReadOnlyRegistry`
    it is a policy refusal, not bad input: the call is well formed, the
    registry's rules say no (a ``PermissionError``, "this may not be done").
    The refusal itself is in the audit trail. ``name``, ``alias`` and
    ``version`` say what was asked; ``verdicts`` holds every gate's
    :class:`~registry.gates.Verdict` and ``failed`` those that failed, with
    their numbers.
    """

    def __init__(
        self, message: str, *, name: str, alias: str, version: int | None, verdicts: tuple[Any, ...] = ()
    ) -> None:
        self.name = name
        self.alias = alias
        self.version = version
        self.verdicts = verdicts
        super().__init__(message)

    @property
    def failed(self) -> tuple[Any, ...]:
        """The verdicts of the gates that failed."""
        return tuple(verdict for verdict in self.verdicts if not verdict.passed)


class CanaryNotFound(NotFound):
    """``load(..., check=True)`` was asked of a version that has no prediction canary to re-run.

    Raised before anything is unpickled. Versions registered before
    canaries existed, with ``canary=False``, or with no ``input_example``
    or ``data`` have none; ``check`` reports them as ``"no canary"``.
    """

    def __init__(self, ref: str, *, asked_by: str = "check=True") -> None:
        self.ref = ref
        super().__init__(
            f"{ref} has no prediction canary to check: it was registered before canaries, with canary=False, or "
            f"with no input_example= or data=; load it without {asked_by}, or re-register it with input_example=…"
        )


class CanaryMismatch(TrustError):
    """The loaded model no longer gives the outputs recorded in its canary; it was not returned.

    A trust failure: the bytes are the registered ones, but what they do
    here is not what they did at registration (another scikit-learn or
    numpy, a changed module the pickle imports). ``report`` is the
    :class:`~registry.domain.CheckReport` with the rows and cells that changed.
    """

    def __init__(self, message: str, report: Any) -> None:
        self.report = report
        super().__init__(message)


class CanaryWarning(UserWarning):
    """``register`` kept no prediction canary although an input was at hand; the message says why."""
