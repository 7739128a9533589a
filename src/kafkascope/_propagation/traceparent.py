"""The W3C ``traceparent`` header value, written and read directly (version ``00``)."""

from __future__ import annotations

import re
from typing import Final

from opentelemetry.trace import SpanContext, TraceFlags, TraceState

_CANONICAL: Final = re.compile(rb"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
FLAGS: Final = tuple(TraceFlags(value) for value in range(256))
"""Every ``TraceFlags`` value, built once."""
LENGTH: Final = 55
"""Characters of a version ``00`` value."""


def format_traceparent(context: SpanContext) -> bytes:
    """``00-{trace id}-{span id}-{flags}`` for ``context``."""
    return b"00-%032x-%016x-%02x" % (
        context.trace_id,
        context.span_id,
        int(context.trace_flags) & 0xFF,
    )


def is_canonical(value: bytes) -> bool:
    """Whether ``value`` has the exact shape of a version ``00`` value (lower-case hex)."""
    return len(value) == LENGTH and _CANONICAL.fullmatch(value) is not None


def parse_canonical(value: bytes, trace_state: TraceState | None = None) -> SpanContext | None:
    """The remote span context of a canonical value (:func:`is_canonical`), or None when it
    names no valid trace (zero ids, version ``ff``)."""
    trace_id = int(value[3:35], 16)
    span_id = int(value[36:52], 16)
    if not trace_id or not span_id or value[:2] == b"ff":
        return None
    return SpanContext(trace_id, span_id, True, FLAGS[int(value[53:55], 16)], trace_state)


def parse_traceparent(value: bytes) -> SpanContext | None:
    """The remote span context ``value`` names, if it is a valid version ``00`` value
    (surrounding whitespace allowed); None for anything else."""
    value = value.strip()
    if not is_canonical(value) or value[:2] != b"00":
        return None
    return parse_canonical(value)
