"""The skops format: scikit-learn models without pickle, for artifacts that cross a trust boundary.

skops.io stores an object tree that is rebuilt only from types the loader
trusts; loading never runs arbitrary code. Types outside skops' defaults must
be named in ``trusted``, else :class:`UntrustedTypes` lists them. skops is an
optional dependency (``pip install 'modelshelf[skops]'``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from registry.errors import SerializationError, UntrustedTypes
from registry.formats.binary import BinaryFile
from registry.formats.portability import missing_here, safe_load_advice


def _skops_io() -> Any:
    try:
        import skops.io
    except ImportError:
        raise SerializationError("the skops format needs the skops package: pip install 'modelshelf[skops]'") from None
    return skops.io


class SkopsFormat:
    name = "skops"

    def dump(self, obj: Any, file: BinaryFile) -> tuple[str, ...]:
        sio = _skops_io()
        data = sio.dumps(obj)
        file.write(data)
        return tuple(sorted(sio.get_untrusted_types(data=data)))

    def scan(self, file: BinaryFile) -> tuple[str, ...]:
        """The types a loader must trust: skops imports nothing else."""
        return tuple(sorted(_skops_io().get_untrusted_types(data=file.read())))

    def load(
        self, file: BinaryFile, *, safe: bool, trusted: Collection[str], inventory: Collection[str] | None = None
    ) -> Any:
        sio = _skops_io()
        data = file.read()
        untrusted = sio.get_untrusted_types(data=data)
        refused = sorted(set(untrusted) - set(trusted))
        if refused:
            stranded = missing_here(refused)
            advice = (
                f". {safe_load_advice(stranded[0])}"
                if stranded  # a class of the registering script: trusting its name cannot make it importable
                else "; if you trust them, pass trusted=[...] with these names to load()"
            )
            raise UntrustedTypes(
                f"the skops artifact contains types that are not trusted: {', '.join(refused)}{advice}", refused
            )
        return sio.loads(data, trusted=list(untrusted))
