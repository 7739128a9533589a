"""Text read back from traces and metrics, made safe and bounded for a terminal.

Span names, service names, topics and label values are written by anyone who can produce a
message. :func:`printable` shows every character that could act on a terminal (C0 and C1
controls, DEL, format characters such as bidirectional overrides, line and paragraph
separators, surrogates, private-use and unassigned code points) as a visible escape
(``\\x1b``, ``\\u202e``) and cuts the result to a number of columns with an ellipsis.
"""

from __future__ import annotations

import unicodedata
from typing import Final

ELLIPSIS: Final = "…"
SERVICE_COLUMNS: Final = 30
"""Every report cuts a service name to this many columns (the last one an ellipsis)."""
_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ZERO_WIDTH_CATEGORIES: Final = frozenset({"Mn", "Me"})
_SHORT: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _piece(char: str) -> tuple[str, int]:
    """The char as shown and its width in columns."""
    if " " <= char <= "~":  # printable ASCII, the common case
        return char, 1
    category = unicodedata.category(char)
    if category in _ESCAPED_CATEGORIES:
        escaped = _escape(char)
        return escaped, len(escaped)
    if category in _ZERO_WIDTH_CATEGORIES:
        return char, 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return char, 2
    return char, 1


def columns(text: str) -> int:
    """The columns ``text`` takes in a terminal (wide characters 2, combining marks 0)."""
    return sum(_piece(char)[1] for char in text)


def printable(text: object, *, limit: int | None = None) -> str:
    """``str(text)`` with every control or format character shown as an escape, at most
    ``limit`` columns (and ``2 * limit`` code points, so that stacked combining marks stay
    bounded too) with :data:`ELLIPSIS` as the last one when it was cut."""
    value = text if isinstance(text, str) else str(text)
    out: list[str] = []
    used = points = 0
    for char in value:
        shown, width = _piece(char)
        if limit is not None and (used + width > limit or points + len(shown) > 2 * limit):
            return _cut(out, used, limit)
        out.append(shown)
        used += width
        points += len(shown)
    return "".join(out)


def _cut(out: list[str], used: int, limit: int) -> str:
    # Room for the ellipsis: drop pieces from the end until it fits.
    while out and used + 1 > limit:
        used -= columns(out.pop())
    return "".join(out) + ELLIPSIS if limit >= 1 else ""


def pad(text: str, width: int) -> str:
    """``text`` (already :func:`printable`) padded with spaces to ``width`` columns."""
    return text + " " * max(0, width - columns(text))
