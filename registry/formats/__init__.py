"""Serialization formats: how an object becomes bytes in the store and back.

This package is the only place that imports joblib, pickle or skops. A
format writes into a binary file object (the store's hashing writer) and
returns the globals the bytes will import when loaded; it reads from an
already verified blob. It never sees paths, digests or the catalog.

Every exception from a format other than a store failure or a refusal of
the safe loaders becomes :class:`~registry.errors.SerializationError`, so
callers meet one error type whatever pickle, joblib or the object's
``__reduce__`` raised.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from registry.errors import InvalidFormat, RegistryError, SerializationError
from registry.formats import portability
from registry.formats.binary import BinaryFile
from registry.formats.compression import Compression
from registry.formats.hooks import NotAPickle
from registry.formats.joblib_fast import starts_as_pickle
from registry.formats.pickle_format import JoblibFormat, PickleFormat
from registry.formats.policy import POLICY_VERSION, describe_policy
from registry.formats.skops_format import SkopsFormat

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "INHERENTLY_SAFE",
    "POLICY_VERSION",
    "Format",
    "NotAPickle",
    "describe_policy",
    "dump",
    "get_format",
    "load",
    "maps_in_place",
    "scan_imports",
]


class Format(Protocol):
    """What a serialization format provides."""

    name: str

    def dump(self, obj: Any, file: BinaryFile) -> tuple[str, ...]: ...

    def scan(self, file: BinaryFile) -> tuple[str, ...]: ...

    def load(
        self, file: BinaryFile, *, safe: bool, trusted: Collection[str], inventory: Collection[str] | None = None
    ) -> Any: ...


FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (JoblibFormat(), PickleFormat(), SkopsFormat())}
DEFAULT_FORMAT = "joblib"

#: Formats whose loading runs only code from an allow-list, whatever ``safe`` says.
INHERENTLY_SAFE = frozenset({"skops"})


def get_format(name: object) -> Format:
    """The format called ``name``, or ``ValueError`` listing the known ones."""
    if not isinstance(name, str) or name not in FORMATS:
        raise InvalidFormat(f"unknown format {name!r}: choose one of {', '.join(sorted(FORMATS))}")
    return FORMATS[name]


def dump(fmt: Format, obj: Any, file: BinaryFile, compression: Compression | None = None) -> tuple[str, ...]:
    """Write ``obj`` with ``fmt``; return the globals it imports. Failures become ``SerializationError``.

    ``compression`` (from :func:`~registry.formats.compression.normalize`,
    which admits it for joblib only) compresses what is stored.
    """
    try:
        if compression is not None and isinstance(fmt, JoblibFormat):
            return fmt.dump(obj, file, compression)
        return fmt.dump(obj, file)
    except RegistryError:
        raise
    except RecursionError as exc:
        raise SerializationError(
            f"cannot serialize {type(obj).__name__} with {fmt.name}: it is nested too deeply"
        ) from exc
    except Exception as exc:
        if portability.unportable([str(exc)]):  # "Can't pickle local object 'make.<locals>.Foo'", a lambda
            raise SerializationError(
                f"cannot serialize {type(obj).__name__} with {fmt.name}: {type(exc).__name__}: {exc}; it holds a "
                "class or function defined inside a function, or a lambda, which pickle cannot record by name: "
                "define it at the top level of a module the loading side can import (for example mymodels.py, "
                "imported with `from mymodels import ...`), not in the script you run"
            ) from exc
        raise SerializationError(
            f"cannot serialize {type(obj).__name__} with {fmt.name}: {type(exc).__name__}: {exc}; "
            "lambdas, open files, sockets, locks and local classes cannot be pickled "
            "(define functions at module level, or leave such members out of the object)"
        ) from exc


def maps_in_place(fmt: Format, file: BinaryFile) -> bool:
    """Whether ``fmt``'s arrays in ``file`` (positioned at its start) are stored raw, so loads can view them.

    Only joblib's uncompressed files are: a compressed one holds its arrays
    only once inflated, and a plain pickle copies array bytes out of its
    opcodes whatever the buffer.
    """
    return fmt.name == "joblib" and starts_as_pickle(file)


def scan_imports(fmt: Format, file: BinaryFile) -> tuple[str, ...]:
    """Every global ``file``'s bytes will import when loaded, sorted; nothing is imported or run.

    The scan is the safe loader's own interpreter with every global made an
    inert placeholder, so it covers all protocols, memoised names, INST/OBJ,
    extension codes and the nested pickles in joblib's container. Malformed
    bytes become :class:`SerializationError` naming what is wrong;
    :class:`NotAPickle` (a subclass) says the bytes do not even begin as a
    pickle, so CPython's unpickler would import nothing from them either.
    """
    try:
        return fmt.scan(file)
    except RegistryError:
        raise
    except MemoryError as exc:
        raise SerializationError(f"cannot scan the {fmt.name} artifact: it needs more memory than there is") from exc
    except Exception as exc:
        raise SerializationError(
            f"cannot scan the {fmt.name} artifact for its imports: {type(exc).__name__}: {exc}; "
            f"it is not a well-formed {fmt.name} file"
        ) from exc


def load(
    fmt: Format,
    file: BinaryFile,
    what: str,
    *,
    safe: bool = False,
    trusted: Collection[str] = (),
    inventory: Collection[str] | None = None,
) -> Any:
    """Read an object with ``fmt`` from verified bytes; failures become ``SerializationError``.

    With ``safe``, ``inventory`` (the version's recorded imports) narrows the
    policy further: a global it does not list is refused even if the policy
    admits it, since bytes and catalog were recorded together.
    """
    try:
        if inventory is None:
            return fmt.load(file, safe=safe, trusted=frozenset(trusted))
        return fmt.load(file, safe=safe, trusted=frozenset(trusted), inventory=frozenset(inventory))
    except RegistryError:
        raise
    except MemoryError as exc:
        raise SerializationError(
            f"{what}: ran out of memory while loading the {fmt.name} artifact; it is larger than this process "
            "can hold (with safe=True this means the artifact's own data does not fit)"
        ) from exc
    except RecursionError as exc:
        raise SerializationError(f"{what}: the {fmt.name} artifact is nested too deeply to load") from exc
    except Exception as exc:
        raise SerializationError(
            f"{what}: the artifact is intact (its checksum matches) but {fmt.name} could not load it: "
            f"{type(exc).__name__}: {exc}; install the packages it was registered with "
            "(see its environment in Registry.get())"
        ) from exc
