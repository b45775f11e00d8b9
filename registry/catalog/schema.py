"""Every table of the catalog, as typed SQLAlchemy ORM classes.

This module is the single source of truth that Alembic compares the
migrations against (``migrations/env.py`` imports it and nothing else of
modelshelf); the schema of a real catalog is only ever created or changed by
those migrations, never by ``create_all``.

Design notes:

* ``models.last_version`` is the per-model counter from which version numbers
  are allocated, incremented in the same transaction that inserts the
  version; ``UNIQUE(model_id, version)`` is the safety net.
* A deleted version keeps its row with ``deleted_at`` set, so its number is
  never reused and its history stays auditable.
* ``blobs`` has one row per digest ever written. The row is what concurrent
  writers lock (``SELECT … FOR UPDATE`` on server databases, the database
  write lock on SQLite) before publishing or freeing the file, so a new
  version reusing bytes and a delete of their last other user cannot race.
  ``damaged_at``/``damage`` mark bytes ``repair`` found damaged or missing:
  loads of their versions then say so, until the same digest comes back.
* ``metrics`` is the append-only history; ``latest_metrics`` holds each
  version's most recently logged value per key, maintained in the same
  transaction, so ``mv.metrics`` and metric filters need no aggregation.
* ``versions.imports`` lists the globals a pickle imports (recorded at
  dump time, for audit); ``versions.signature`` (``ModelVersion.hmac``) is the HMAC-SHA256 that
  binds name, version, format and checksum when a signing key is used.
* ``param_values`` mirrors each version's top-level params as typed
  key/value rows (a number, a string, a boolean, null, or other JSON), so a
  search compares ``params.k = 3`` by the stored JSON type, in the database,
  with an index, on every engine alike.
* ``lineage`` holds one row per version registered since lineage was
  recorded: git commit, script, user, host, the training-data fingerprint
  and the parent version.
* ``events`` is the audit trail: one row per change, appended in the same
  transaction as the change and never updated or deleted. It names the model
  by name (not by id) so that each row reads on its own. Each row's ``link``
  chains it to the model's previous event (see :mod:`registry.catalog.chain`).
* ``models.state_seq``/``state``/``state_seal`` are the model's sealed state:
  what decides which bytes a reference serves, MACed under the signing key
  (see :mod:`registry.catalog.sealing`). ``catalog_identity`` holds the one
  random id of the catalog that seals and the client's rollback memory name.
* ``version_imports`` indexes each version's import inventory by global name,
  so ``audit --deny`` is one indexed query.
* ``alias_protection`` holds the promotion gates of each protected alias as
  data (built-in gates by name and arguments, see :mod:`registry.gates`),
  so every process enforces the same rules; with a signing key the model's
  seal covers them (a row deleted by SQL is a mismatch, not a lifted rule).
* ``canaries`` holds at most one row per version: a few input rows and the
  model's outputs for them at registration, as JSON (never pickle), with
  the MAC that binds them to the version's bytes under the signing key
  (see :mod:`registry.inputs.canary`).
* Timestamps are UTC: :class:`UTCDateTime` refuses naive datetimes and
  returns aware ones, whatever the engine stores.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from registry.limits import MAX_ALIAS_LENGTH, MAX_KEY_LENGTH, MAX_NAME_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = MAX_NAME_LENGTH
ALIAS_LENGTH = MAX_ALIAS_LENGTH
KEY_LENGTH = MAX_KEY_LENGTH
DIGEST_LENGTH = 64
FORMAT_LENGTH = 32
SIGNATURE_LENGTH = 64  # v1: 64 hex digits; v2: "v2:" and the MAC in 43 base64url characters
LINK_LENGTH = 72  # "k1:" or "u1:" and 64 hex digits
CATALOG_ID_LENGTH = 32
IMPORT_NAME_LENGTH = 500  # within MySQL's 3072-byte key limit at 4 bytes a character, beside an integer
ACTION_LENGTH = 32
PARAM_KIND_LENGTH = 8
COMMIT_LENGTH = 64  # a SHA-1 commit has 40 hex digits, a SHA-256 one 64
IDENTITY_LENGTH = 255
VERSION_TEXT_LENGTH = 64


def exact_collation(dialect: Dialect) -> str | None:
    """The collation that compares and sorts text by code point, as SQLite does, on ``dialect``.

    MySQL/MariaDB's default collation ignores case, accents and trailing
    spaces, so ``acc`` and ``ACC`` would be one metric; PostgreSQL's follows
    the locale. Keys, names and searched values must mean the same on every
    engine. MariaDB has a binary collation without padding; MySQL's
    ``utf8mb4_bin`` still ignores trailing spaces.
    """
    if dialect.name == "postgresql":
        return "C"
    if dialect.name in ("mysql", "mariadb"):
        return "utf8mb4_nopad_bin" if getattr(dialect, "is_mariadb", False) else "utf8mb4_bin"
    return None  # SQLite compares bytes already


class ExactString(TypeDecorator[str]):
    """A ``VARCHAR(length)`` that compares exactly on every engine (see :func:`exact_collation`)."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(String(self.length, collation=exact_collation(dialect)))


class ExactText(TypeDecorator[str]):
    """A ``TEXT`` that compares exactly on every engine (see :func:`exact_collation`)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Text(collation=exact_collation(dialect)))


def compare_exact_types(
    context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """Alembic's ``compare_type`` hook: an exact column must have its length and its collation.

    Alembic does not compare collations by itself, so without this hook a
    column altered back to a case-blind collation would pass ``alembic check``.
    Other columns get Alembic's own comparison (``None``).
    """
    if not isinstance(metadata_type, (ExactString, ExactText)):
        return None
    wanted = metadata_type.load_dialect_impl(context.dialect)
    family = Text if isinstance(metadata_type, ExactText) else String
    same_family = isinstance(inspected_type, family) and (family is String) != isinstance(inspected_type, Text)
    same_length = getattr(inspected_type, "length", None) == getattr(wanted, "length", None)
    same_collation = getattr(inspected_type, "collation", None) == getattr(wanted, "collation", None)
    return not (same_family and same_length and same_collation)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned timezone-aware.

    SQLite and MySQL keep no time zone, so the conversion happens here, once.
    MySQL/MariaDB get microsecond precision (their default is whole seconds).
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: modelshelf stores only timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(row: type[Base]) -> Table:
    """The :class:`Table` behind the mapped class ``row``, for Core statements.

    ``row.__table__`` is typed as any ``FromClause``; the metadata holds the ``Table`` itself.
    """
    return Base.metadata.tables[row.__tablename__]


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(ExactString(NAME_LENGTH), unique=True)
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Bumped by every change of the model, keyed or not: what the client's rollback memory compares.
    state_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The state last sealed with a key (plain JSON, so a reader can say what changed since).
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    #: ``HMAC(key, state)``; ``NULL`` after a change by a client without the key.
    state_seal: Mapped[str | None] = mapped_column(String(LINK_LENGTH))


class BlobRow(Base):
    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Set by ``repair`` when the bytes were found damaged or missing (and quarantined); cleared when they
    #: come back verified (a register or import of the same bytes, or ``repair --from``).
    damaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: What ``repair`` found: "missing", "size 12 bytes, expected 40", "hashes to sha256:…", …
    damage: Mapped[str | None] = mapped_column(Text)


class VersionRow(Base):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        Index("ix_versions_blob_digest", "blob_digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[int] = mapped_column(Integer)
    blob_digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(FORMAT_LENGTH))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    imports: Mapped[list[str] | None] = mapped_column(JSON)
    #: True when ``imports`` was read from the artifact's bytes by the scanner; older rows hold what a
    #: pickler tracer saw, which missed nested pickles, so safe loads cannot hold those versions to it.
    imports_scanned: Mapped[bool | None] = mapped_column(Boolean)
    signature: Mapped[str | None] = mapped_column(String(SIGNATURE_LENGTH))
    input_signature: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class TagRow(Base):
    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_key", "key"),)

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(ExactString(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(ExactText())


class MetricRow(Base):
    __tablename__ = "metrics"
    #: Every column a history reads, in the order it reads them: one index range per version, no sort, no row lookup.
    __table_args__ = (Index("ix_metrics_history", "version_id", "key", "step", "timestamp", "id", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(ExactString(KEY_LENGTH))
    value: Mapped[float] = mapped_column(Double)
    step: Mapped[int | None] = mapped_column(BigInteger)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())


class LatestMetricRow(Base):
    __tablename__ = "latest_metrics"
    __table_args__ = (Index("ix_latest_metrics_key_value", "key", "value"),)

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(ExactString(KEY_LENGTH), primary_key=True)
    value: Mapped[float] = mapped_column(Double)


class AliasRow(Base):
    __tablename__ = "aliases"
    __table_args__ = (Index("ix_aliases_version_id", "version_id"),)

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(ALIAS_LENGTH), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ParamValueRow(Base):
    __tablename__ = "param_values"
    __table_args__ = (Index("ix_param_values_key_number", "key", "number"),)

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(ExactString(KEY_LENGTH), primary_key=True)
    #: "number", "string", "bool", "null" or "json" (a list or an object, kept as JSON text)
    kind: Mapped[str] = mapped_column(String(PARAM_KIND_LENGTH))
    number: Mapped[float | None] = mapped_column(Double)
    text: Mapped[str | None] = mapped_column(ExactText())


class LineageRow(Base):
    __tablename__ = "lineage"
    __table_args__ = (
        Index("ix_lineage_data_digest", "data_digest"),
        Index("ix_lineage_parent_id", "parent_id"),
    )

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    git_commit: Mapped[str | None] = mapped_column(String(COMMIT_LENGTH))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    script: Mapped[str | None] = mapped_column(ExactText())
    user_name: Mapped[str | None] = mapped_column(ExactString(IDENTITY_LENGTH))
    host: Mapped[str | None] = mapped_column(ExactString(IDENTITY_LENGTH))
    modelshelf_version: Mapped[str | None] = mapped_column(ExactString(VERSION_TEXT_LENGTH))
    data_digest: Mapped[str | None] = mapped_column(String(DIGEST_LENGTH))
    data_shape: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True))
    data_columns: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_model_id", "model", "id"),
        Index("ix_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(ACTION_LENGTH))
    model: Mapped[str] = mapped_column(ExactString(NAME_LENGTH))
    version: Mapped[int | None] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(String(ALIAS_LENGTH))
    old: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    new: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    user_name: Mapped[str | None] = mapped_column(String(IDENTITY_LENGTH))
    host: Mapped[str | None] = mapped_column(String(IDENTITY_LENGTH))
    link: Mapped[str | None] = mapped_column(String(LINK_LENGTH))


class CatalogIdentityRow(Base):
    __tablename__ = "catalog_identity"

    #: Always 1: the primary key keeps the table to one row, whoever creates it first.
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(CATALOG_ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class VersionImportRow(Base):
    __tablename__ = "version_imports"
    __table_args__ = (Index("ix_version_imports_name", "name"),)

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(ExactString(IMPORT_NAME_LENGTH), primary_key=True)


class AliasProtectionRow(Base):
    __tablename__ = "alias_protection"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(ALIAS_LENGTH), primary_key=True)
    #: The gates, as :func:`registry.gates.storable` writes them: a list of ``{"gate": name, ...arguments}``.
    gates: Mapped[Any] = mapped_column(JSON())
    set_by: Mapped[str | None] = mapped_column(String(IDENTITY_LENGTH))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CanaryRow(Base):
    __tablename__ = "canaries"

    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    #: The rows, with column names and dtypes (:func:`registry.inputs.canary.encode_input`).
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Method name -> its output on those rows (:func:`registry.inputs.canary.encode_array`).
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: ``HMAC(key, name, checksum, rows, inputs, outputs)``; ``NULL`` when registered without a key.
    hmac: Mapped[str | None] = mapped_column(String(SIGNATURE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
