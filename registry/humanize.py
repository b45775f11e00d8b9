"""Sizes as people read them, spelled the same by the command line and the web UI.

Both print an artifact's size next to its exact byte count, so one
spelling (1024-byte steps named KB, MB, GB, as ``ls -lh`` and most file
managers do) keeps a page and a terminal from disagreeing about a model.

>>> human_size(8934)
'8.7 KB'
"""

from __future__ import annotations


def human_size(size: int) -> str:
    """``size`` bytes in B, KB, MB or GB (1024-byte steps), one decimal above bytes."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
