"""The storage limits every catalog database imposes, defined once for every layer that checks them.

Validation (names, metrics, params, queries, bundles) and the catalog
schema must agree on these numbers: a key the validator accepts but the
column truncates, or a version the parser accepts but a 32-bit column
overflows on, fails far from its cause with a driver's message. So the
schema sizes its columns from here, and every check that refuses input
quotes the same constant.

* Integers are 64-bit (``BIGINT``) for steps, sizes and integer params,
  compared with in queries; 32-bit (``INTEGER``) for version numbers and
  what counts them (a search ``limit``).
* Metric, param and tag keys are at most :data:`MAX_KEY_LENGTH` characters;
  model names :data:`MAX_NAME_LENGTH`, aliases :data:`MAX_ALIAS_LENGTH`.

>>> MAX_VERSION == 2**31 - 1 and MAX_STEP == 2**63 - 1
True
"""

from __future__ import annotations

#: The largest value of a 64-bit signed integer column (PostgreSQL/MariaDB ``BIGINT``, any SQLite integer).
MAX_INT64 = 2**63 - 1
#: The largest value of a 32-bit signed integer column (``INTEGER`` on PostgreSQL and MariaDB).
MAX_INT32 = 2**31 - 1

#: Version numbers live in 32-bit columns (the version and each model's counter).
MAX_VERSION = MAX_INT32
#: A search ``limit`` counts versions, so it needs no more room than they have.
MAX_LIMIT = MAX_INT32
#: Metric steps live in a 64-bit column.
MAX_STEP = MAX_INT64
#: Integer params are stored as JSON and compared by queries as 64-bit integers.
MAX_PARAM_INT = MAX_INT64
#: The largest integer a search filter may compare with (every database compares 64-bit integers).
MAX_QUERY_INT = MAX_INT64
#: Blob sizes (and the sizes a bundle declares) live in 64-bit columns.
MAX_BLOB_SIZE = MAX_INT64

#: Metric, param and tag keys: the width of the catalog's key columns, in characters.
MAX_KEY_LENGTH = 250
#: Model names: the width of the catalog's name columns, in characters.
MAX_NAME_LENGTH = 128
#: Aliases: the width of the catalog's alias columns, in characters.
MAX_ALIAS_LENGTH = 64

#: Files in a store younger than this, in seconds, are never reported as waste nor removed by ``gc``
#: (here, not in maintenance, so that ``Registry.gc``'s default needs no import of the maintenance code).
GC_MIN_AGE = 3600.0
