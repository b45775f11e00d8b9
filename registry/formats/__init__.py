"""Serialization formats: how an object becomes bytes in the store and back.

This package is the only place that imports joblib or pickle. A format
writes into a binary file object (the store's hashing writer) and reads from
one (an already verified blob); it never sees paths, digests or the catalog.

Every exception from a format other than a store failure is turned into
:class:`~registry.errors.SerializationError`, so the caller meets one error
type whatever pickle, joblib or the object's ``__reduce__`` raised.
"""

from __future__ import annotations

from typing import IO, Any, Protocol

from registry.errors import RegistryError, SerializationError


class Format(Protocol):
    """What a serialization format provides."""

    name: str

    def dump(self, obj: Any, file: IO[bytes]) -> None: ...

    def load(self, file: IO[bytes]) -> Any: ...


class _Joblib:
    name = "joblib"

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        import joblib

        joblib.dump(obj, file, compress=0)

    def load(self, file: IO[bytes]) -> Any:
        import joblib

        return joblib.load(file)


class _Pickle:
    name = "pickle"

    def dump(self, obj: Any, file: IO[bytes]) -> None:
        import pickle

        pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, file: IO[bytes]) -> Any:
        import pickle

        return pickle.load(file)


FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (_Joblib(), _Pickle())}
DEFAULT_FORMAT = "joblib"


def get_format(name: object) -> Format:
    """The format called ``name``, or ``ValueError`` listing the known ones."""
    if not isinstance(name, str) or name not in FORMATS:
        raise ValueError(f"unknown format {name!r}: choose one of {', '.join(sorted(FORMATS))}")
    return FORMATS[name]


def dump(fmt: Format, obj: Any, file: IO[bytes]) -> None:
    """Write ``obj`` with ``fmt``; any failure but a store failure becomes ``SerializationError``."""
    try:
        fmt.dump(obj, file)
    except RegistryError:
        raise
    except RecursionError as exc:
        raise SerializationError(
            f"cannot serialize {type(obj).__name__} with {fmt.name}: it is nested too deeply"
        ) from exc
    except Exception as exc:
        raise SerializationError(
            f"cannot serialize {type(obj).__name__} with {fmt.name}: {type(exc).__name__}: {exc}; "
            "lambdas, open files, sockets, locks and local classes cannot be pickled "
            "(define functions at module level, or leave such members out of the object)"
        ) from exc


def load(fmt: Format, file: IO[bytes], what: str) -> Any:
    """Read an object with ``fmt`` from verified bytes; failures become ``SerializationError``."""
    try:
        return fmt.load(file)
    except RegistryError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"{what}: the artifact is intact (its checksum matches) but {fmt.name} could not load it: "
            f"{type(exc).__name__}: {exc}; install the packages it was registered with "
            "(see its environment in Registry.get())"
        ) from exc
