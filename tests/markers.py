"""Objects that leave a mark when unpickled, to prove that something was *not* unpickled."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def leave_mark(path: str) -> str:
    Path(path).write_text("unpickled")
    return "marked"


class Marker:
    """Unpickling this object writes a file: its existence proves ``pickle.load`` ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (leave_mark, (self.path,))
