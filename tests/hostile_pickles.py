"""Building pickle streams by hand, opcode by opcode, the way an attacker writes them.

Pickling an evil object only produces what CPython's pickler would write;
these helpers write what the *unpickler* will accept, so the tests can try
attribute chains, re-exports and opcode tricks no pickler emits.
"""

from __future__ import annotations

import io
import pickle as P
import struct
from typing import Any

from registry import formats


def glob(module: str, name: str) -> bytes:
    """GLOBAL: the protocol-0 way to name ``module.name``."""
    return P.GLOBAL + f"{module}\n{name}\n".encode()


def text(value: str) -> bytes:
    raw = value.encode()
    return P.BINUNICODE + struct.pack("<I", len(raw)) + raw


def integer(value: int) -> bytes:
    return P.BININT + struct.pack("<i", value)


def long(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return P.LONG1 + bytes([len(raw)]) + raw


def raw_bytes(value: bytes) -> bytes:
    return P.BINBYTES + struct.pack("<I", len(value)) + value


def tup(*parts: bytes) -> bytes:
    return P.MARK + b"".join(parts) + P.TUPLE


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)`` by REDUCE."""
    return func + tup(*args) + P.REDUCE


def stream(*parts: bytes, protocol: int = 2) -> bytes:
    return P.PROTO + bytes([protocol]) + b"".join(parts) + P.STOP


def safe_load(data: bytes, fmt: str = "pickle", **kwargs: Any) -> Any:
    """What ``Registry.load(..., safe=True)`` does with verified bytes."""
    return formats.load(formats.get_format(fmt), io.BytesIO(data), "hostile", safe=True, **kwargs)


def scan(data: bytes, fmt: str = "pickle") -> tuple[str, ...]:
    return formats.scan_imports(formats.get_format(fmt), io.BytesIO(data))
