"""Every table of the catalog, as SQLAlchemy Core tables (``VersionRow.id`` is a column of ``versions``).

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
  transaction, so ``mv.metrics`` and metric filters need no aggregation. It
  repeats the version's ``model_id`` and number so that one model's top
  versions by a metric are one range of ``ix_latest_metrics_model_id`` (or
  its ``_desc`` twin), read in order, ties by version included; ``metrics``
  repeats them too, so one metric's history is one index range.
* ``models.live_versions`` counts the model's live versions (moved with
  ``last_version`` on register, down on delete): a page's total is one row.
* ``versions.blake3`` is the fast verification digest of the version's
  blob (BLAKE3, beside the SHA-256 that stays its identity), per version so
  that the version's signature can cover it.
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
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    FromClause,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from registry.limits import MAX_ALIAS_LENGTH, MAX_KEY_LENGTH, MAX_NAME_LENGTH

if TYPE_CHECKING:
    from sqlalchemy import Row

#: A result row of any number of columns (what the readers of version, canary and state rows take).
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

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
            from sqlalchemy.dialects import mysql  # its whole dialect package: only where it is the dialect

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


#: Every table, with the naming convention that makes constraint names deterministic.
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base:
    """Where the metadata lived when these were ORM classes (``Base.metadata``): Alembic's env.py reads it."""

    metadata = metadata


class _Columns:
    """A table's columns as attributes (``VersionRow.id``), as the ORM classes gave them, without the ORM.

    Importing ``sqlalchemy.orm`` and mapping the classes took as long as the rest of SQLAlchemy on a cold
    start, and nothing here needs an ORM: every statement is Core. The object stands for its table in a
    ``join`` (``__clause_element__``); :func:`aliased` gives the same view of an alias.
    """

    def __init__(self, table: FromClause) -> None:
        self.__table__ = table
        self.__tablename__: str = getattr(table, "name", "")

    def __getattr__(self, name: str) -> Column[Any]:
        try:
            return self.__table__.c[name]  # type: ignore[return-value]  # an alias's columns are Columns too
        except KeyError:
            raise AttributeError(f"{self.__tablename__} has no column {name!r}") from None

    def __clause_element__(self) -> Any:  # Any: SQLAlchemy types join targets by roles a FromClause lacks
        return self.__table__


def aliased(row: _Columns, name: str) -> _Columns:
    """The columns of an alias of ``row``'s table (a self-join: a version's parent version)."""
    return _Columns(row.__table__.alias(name))


def table_of(row: _Columns) -> Table:
    """The :class:`Table` behind ``row``, for Core statements."""
    return metadata.tables[row.__tablename__]


ModelRow = _Columns(
    Table(
        "models",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", ExactString(NAME_LENGTH), unique=True, nullable=False),
        Column("last_version", Integer, default=0, nullable=False),
        #: How many of its versions are live: moved by the statements that add and delete them, so a total is one row.
        Column("live_versions", Integer, default=0, server_default="0", nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        #: Bumped by every change of the model, keyed or not: what the client's rollback memory compares.
        Column("state_seq", Integer, default=0, server_default="0", nullable=False),
        #: The state last sealed with a key (plain JSON, so a reader can say what changed since).
        Column("state", JSON(none_as_null=True), nullable=True),
        #: ``HMAC(key, state)``; ``NULL`` after a change by a client without the key.
        Column("state_seal", String(LINK_LENGTH), nullable=True),
    )
)


BlobRow = _Columns(
    Table(
        "blobs",
        metadata,
        Column("digest", String(DIGEST_LENGTH), primary_key=True),
        Column("size", BigInteger, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        #: Set by ``repair`` when the bytes were found damaged or missing (and quarantined); cleared when they
        #: come back verified (a register or import of the same bytes, or ``repair --from``).
        Column("damaged_at", UTCDateTime(), nullable=True),
        #: What ``repair`` found: "missing", "size 12 bytes, expected 40", "hashes to sha256:…", …
        Column("damage", Text, nullable=True),
    )
)


VersionRow = _Columns(
    Table(
        "versions",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("model_id", ForeignKey("models.id"), nullable=False),
        Column("version", Integer, nullable=False),
        Column("blob_digest", ForeignKey("blobs.digest"), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("format", String(FORMAT_LENGTH), nullable=False),
        Column("params", JSON, nullable=False),
        Column("environment", JSON, nullable=False),
        Column("description", Text, nullable=True),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("deleted_at", UTCDateTime(), nullable=True),
        Column("imports", JSON, nullable=True),
        #: True when ``imports`` was read from the artifact's bytes by the scanner; older rows hold what a
        #: pickler tracer saw, which missed nested pickles, so safe loads cannot hold those versions to it.
        Column("imports_scanned", Boolean, nullable=True),
        Column("signature", String(SIGNATURE_LENGTH), nullable=True),
        Column("input_signature", JSON(none_as_null=True), nullable=True),
        #: The BLAKE3 (bare hex) of the blob, hashed in the same pass as its SHA-256: what loads verify, since it
        #: hashes on every core. ``NULL`` for versions registered before it was recorded (they verify the SHA-256).
        #: A v4 signature covers it; under an older one a keyed load ignores it.
        Column("blake3", String(DIGEST_LENGTH), nullable=True),
        UniqueConstraint("model_id", "version"),
        Index("ix_versions_blob_digest", "blob_digest"),
    )
)
#: A model's deleted versions (few), which a metric's history leaves out: partial where the engine allows, so it
#: holds only them and no read of live versions can pick it.
Index(
    "ix_versions_deleted",
    VersionRow.model_id,
    VersionRow.deleted_at,
    sqlite_where=VersionRow.deleted_at.is_not(None),
    postgresql_where=VersionRow.deleted_at.is_not(None),
)


TagRow = _Columns(
    Table(
        "tags",
        metadata,
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
        Column("key", ExactString(KEY_LENGTH), primary_key=True),
        Column("value", ExactText(), nullable=False),
        Index("ix_tags_key", "key"),
    )
)


MetricRow = _Columns(
    Table(
        "metrics",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
        Column("key", ExactString(KEY_LENGTH), nullable=False),
        Column("value", Double, nullable=False),
        Column("step", BigInteger, nullable=True),
        Column("timestamp", UTCDateTime(), nullable=False),
        #: The version's model and number, repeated from ``versions``: one metric's history over a model is then
        #: one range of ``ix_metrics_model_key`` in history order, not one index seek per version.
        Column("model_id", ForeignKey("models.id"), nullable=False),
        Column("version", Integer, nullable=False),
        #: Every column a history reads, in its order: one index range per version, no sort, no row lookup.
        Index("ix_metrics_history", "version_id", "key", "step", "timestamp", "id", "value"),
        #: One metric's history over one model, in history order, with every column it reads.
        Index("ix_metrics_model_key", "model_id", "key", "version", "step", "timestamp", "id", "value", "version_id"),
    )
)


LatestMetricRow = _Columns(
    Table(
        "latest_metrics",
        metadata,
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
        Column("key", ExactString(KEY_LENGTH), primary_key=True),
        Column("value", Double, nullable=False),
        #: The version's model: a model's top versions by a metric, and its metric names, without other models'.
        Column("model_id", ForeignKey("models.id"), nullable=False),
        #: The version's number: ties of a value come out of the model's indexes by version, with no sort.
        Column("version", Integer, nullable=False),
        Index("ix_latest_metrics_key_value", "key", "value"),
        Index("ix_latest_metrics_model_id", "model_id", "key", "value", "version", "version_id"),
    )
)
#: The same, value descending and version ascending: the order of a "metrics.KEY desc" read, ties included.
Index(
    "ix_latest_metrics_model_id_desc",
    LatestMetricRow.model_id,
    LatestMetricRow.key,
    LatestMetricRow.value.desc(),
    LatestMetricRow.version,
    LatestMetricRow.version_id,
)


AliasRow = _Columns(
    Table(
        "aliases",
        metadata,
        Column("model_id", ForeignKey("models.id"), primary_key=True),
        Column("alias", String(ALIAS_LENGTH), primary_key=True),
        Column("version_id", ForeignKey("versions.id"), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Index("ix_aliases_version_id", "version_id"),
    )
)


ParamValueRow = _Columns(
    Table(
        "param_values",
        metadata,
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
        Column("key", ExactString(KEY_LENGTH), primary_key=True),
        #: "number", "string", "bool", "null" or "json" (a list or an object, kept as JSON text)
        Column("kind", String(PARAM_KIND_LENGTH), nullable=False),
        Column("number", Double, nullable=True),
        Column("text", ExactText(), nullable=True),
        Index("ix_param_values_key_number", "key", "number"),
    )
)


LineageRow = _Columns(
    Table(
        "lineage",
        metadata,
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
        Column("git_commit", String(COMMIT_LENGTH), nullable=True),
        Column("git_dirty", Boolean, nullable=True),
        Column("script", ExactText(), nullable=True),
        Column("user_name", ExactString(IDENTITY_LENGTH), nullable=True),
        Column("host", ExactString(IDENTITY_LENGTH), nullable=True),
        Column("modelshelf_version", ExactString(VERSION_TEXT_LENGTH), nullable=True),
        Column("data_digest", String(DIGEST_LENGTH), nullable=True),
        Column("data_shape", JSON(none_as_null=True), nullable=True),
        Column("data_columns", JSON(none_as_null=True), nullable=True),
        Column("parent_id", ForeignKey("versions.id"), nullable=True),
        Index("ix_lineage_data_digest", "data_digest"),
        Index("ix_lineage_parent_id", "parent_id"),
    )
)


EventRow = _Columns(
    Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime(), nullable=False),
        Column("action", String(ACTION_LENGTH), nullable=False),
        Column("model", ExactString(NAME_LENGTH), nullable=False),
        Column("version", Integer, nullable=True),
        Column("alias", String(ALIAS_LENGTH), nullable=True),
        Column("old", JSON(none_as_null=True), nullable=True),
        Column("new", JSON(none_as_null=True), nullable=True),
        Column("user_name", String(IDENTITY_LENGTH), nullable=True),
        Column("host", String(IDENTITY_LENGTH), nullable=True),
        Column("link", String(LINK_LENGTH), nullable=True),
        Index("ix_events_model_id", "model", "id"),
        Index("ix_events_at", "at"),
    )
)


CatalogIdentityRow = _Columns(
    Table(
        "catalog_identity",
        metadata,
        #: Always 1: the primary key keeps the table to one row, whoever creates it first.
        Column("slot", Integer, primary_key=True, autoincrement=False),
        Column("id", String(CATALOG_ID_LENGTH), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
    )
)


VersionImportRow = _Columns(
    Table(
        "version_imports",
        metadata,
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
        Column("name", ExactString(IMPORT_NAME_LENGTH), primary_key=True),
        Index("ix_version_imports_name", "name"),
    )
)


AliasProtectionRow = _Columns(
    Table(
        "alias_protection",
        metadata,
        Column("model_id", ForeignKey("models.id"), primary_key=True),
        Column("alias", String(ALIAS_LENGTH), primary_key=True),
        #: The gates, as :func:`registry.gates.storable` writes them: a list of ``{"gate": name, ...arguments}``.
        Column("gates", JSON(), nullable=False),
        Column("set_by", String(IDENTITY_LENGTH), nullable=True),
        Column("set_at", UTCDateTime(), nullable=False),
    )
)


CanaryRow = _Columns(
    Table(
        "canaries",
        metadata,
        Column("version_id", ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
        Column("rows", Integer, nullable=False),
        #: The rows, with column names and dtypes (:func:`registry.inputs.canary.encode_input`).
        Column("inputs", JSON, nullable=False),
        #: Method name -> its output on those rows (:func:`registry.inputs.canary.encode_array`).
        Column("outputs", JSON, nullable=False),
        #: ``HMAC(key, name, checksum, rows, inputs, outputs)``; ``NULL`` when registered without a key.
        Column("hmac", String(SIGNATURE_LENGTH), nullable=True),
        Column("created_at", UTCDateTime(), nullable=False),
    )
)
