"""Proving that an artifact file made elsewhere is usable before it is registered.

``register_file`` reads the file once into memory, then scans, loads and
stores that one copy: the bytes checked are the bytes stored. How the copy
is loaded is the caller's choice, and the choice is about whose code may
run:

* ``"safe"``: the safe unpickler, which runs nothing the policy does not
  admit (the command line's default);
* ``"unsafe"`` (also ``True``, the library's historical default): the
  format's own loader, which runs whatever the pickle says;
* ``None`` (``check=False``): nothing is loaded.

The import inventory comes from the scanner in every mode, never from
re-dumping the loaded object: an object that loads cleanly may have been
produced by bytes that imported anything on the way.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from registry import formats
from registry.errors import ArtifactTooLarge, InvalidArgument, RegistryError, SerializationError, UnsafeArtifact
from registry.formats.portability import load_advice, missing_here

_MODES = {True: "unsafe", "unsafe": "unsafe", "safe": "safe", False: None}


def check_mode(check: object) -> str | None:
    """``"safe"``, ``"unsafe"`` or ``None`` (no check) for ``register_file``'s ``check`` argument."""
    if isinstance(check, (bool, str)) and check in _MODES:
        return _MODES[check]
    raise InvalidArgument(f"check must be 'safe', 'unsafe', True (= 'unsafe') or False, not {check!r}")


def trusted_names(trusted: Iterable[str] | None) -> frozenset[str]:
    """``trusted`` as a set of ``"module.name"`` strings, refusing a bare string or other values."""
    if isinstance(trusted, str):
        raise InvalidArgument("trusted must be a list of 'module.name' strings, not a single string")
    names = frozenset(trusted or ())
    if not all(isinstance(name, str) for name in names):
        raise InvalidArgument("trusted must be a list of 'module.name' strings")
    return names


def scanned_imports(fmt: formats.Format, content: bytes, source: Path, *, required: bool) -> tuple[str, ...] | None:
    """The globals ``content`` imports, read by the scanner (which runs nothing).

    A file that is not a valid pickle has no inventory: that is an error when
    the file is to be checked. Stored unexamined it records ``None`` only if
    it does not even begin as a pickle (CPython's unpickler would import
    nothing from it either) or is in a format that never unpickles. A stream
    that begins as a pickle and then breaks, or straddles its frames, may
    still be run in part by CPython's unpickler, which reads on to the bad
    spot: with no inventory, ``audit --deny`` would never list it, so it is
    refused and nothing is stored.
    """
    try:
        return formats.scan_imports(fmt, io.BytesIO(content))
    except SerializationError as exc:
        if required:
            raise SerializationError(
                f"{source} could not load as {fmt.name}: {exc}; check the format, "
                "or register it unexamined with check=False (--no-check)"
            ) from exc
        if isinstance(exc, formats.NotAPickle) or fmt.name in formats.INHERENTLY_SAFE:
            return None
        raise SerializationError(
            f"{source} was not registered: it begins as a {fmt.name} file but cannot be read to its end "
            f"({exc}); CPython's unpickler could still import and run what it names before the bad spot, "
            "and an artifact whose imports cannot be read is never stored, not even unexamined. "
            "Re-save it with pickle or joblib; nothing was written"
        ) from exc


def check_file(
    fmt: formats.Format,
    content: bytes,
    source: Path,
    mode: str,
    trusted: Collection[str],
    imports: tuple[str, ...] | None,
) -> Any:
    """Load ``content``, the bytes of ``source``, as ``mode`` says and return the object."""
    copy = io.BytesIO(content)
    if mode == "safe":
        try:
            return formats.load(fmt, copy, str(source), safe=True, trusted=trusted, inventory=imports)
        except ArtifactTooLarge:
            raise
        except UnsafeArtifact as exc:
            if missing_here((exc.global_name,)):  # its message says what to do; checking it unsafely cannot help
                raise UnsafeArtifact(
                    f"{source}: {exc}. Nothing from the file ran and nothing was registered", exc.global_name
                ) from exc
            raise UnsafeArtifact(
                f"{source}: {exc}. Nothing from the file ran and nothing was registered; if you trust the file, "
                "check it with its own code (check='unsafe', `--unsafe-check`) or not at all (--no-check)",
                exc.global_name,
            ) from exc
        except RegistryError as exc:
            if not isinstance(exc, SerializationError):
                raise
            raise SerializationError(f"{source} could not load as {fmt.name} with the safe loader: {exc}") from exc
    try:
        return fmt.load(copy, safe=False, trusted=frozenset())
    except Exception as exc:
        stranded = missing_here(imports or ())
        if stranded:  # made by a script whose __main__ defined the class: no other process can load it
            raise SerializationError(load_advice(str(source), stranded, f"{type(exc).__name__}: {exc}")) from exc
        raise SerializationError(
            f"{source} could not load as {fmt.name}: {type(exc).__name__}: {exc}; check the format, "
            "or register it unexamined with check=False (--no-check)"
        ) from exc
