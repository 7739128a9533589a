"""Reading the JSON answers of Jaeger (``/api/traces``) and Prometheus without trusting them.

A trace's strings and shapes come from whoever produced the spans (and from whatever answers
on Jaeger's address): each reader here returns a safe default for a field of the wrong type
instead of raising.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from typing import Any, Final

MAX_MICROS: Final = (2**63 - 1) // 1000
"""The largest time or duration in microseconds whose nanoseconds fit in 64 bits."""


_BRIEF: Final = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxstring, _BRIEF.maxother = 3, 60, 60


def text(value: object) -> str:
    """A string, number or null as text; anything else as ``<list>``, ``<dict>`` (never the
    ``str()`` of a nested structure, whose depth is the producer's to choose)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, int | float):
        return str(value)
    return f"<{type(value).__name__}>"


def brief(value: object) -> str:
    """A short ``repr`` of ``value`` for an error message: bounded in length and depth."""
    return _BRIEF.repr(value)[:120]


def mappings(value: object) -> list[Mapping[str, Any]]:
    """The elements of ``value`` that are mappings, when it is a list; else none."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def tags(span: Mapping[str, Any]) -> dict[str, Any]:
    """A span's tags as ``{key: value}`` (tags without a string key are left out)."""
    return {
        tag["key"]: tag.get("value")
        for tag in mappings(span.get("tags"))
        if isinstance(tag.get("key"), str)
    }


def service(span: Mapping[str, Any], processes: object) -> str:
    """The ``serviceName`` of the span's process (``processID`` in ``processes``, or the span's
    own ``process``), ``"?"`` when there is none."""
    process_id = span.get("processID")
    process = mapping(processes).get(process_id) if isinstance(process_id, str) else None
    name = mapping(process or span.get("process")).get("serviceName")
    return text(name) if name not in (None, "") else "?"


def micros(value: object) -> int | None:
    """A time or duration in microseconds: a whole number from 0 to :data:`MAX_MICROS` (as a
    number or its decimal text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_MICROS:
        return value
    return None
