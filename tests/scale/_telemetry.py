"""Reading what the scale tests' services emitted: Jaeger traces and Collector metrics."""

from __future__ import annotations

from typing import Any

from devstack.jaeger import Jaeger


def span_kind(span: dict[str, Any]) -> str:
    """A Jaeger span's ``span.kind`` tag ("producer", "consumer", ...)."""
    for tag in span.get("tags") or []:
        if tag.get("key") == "span.kind":
            return str(tag.get("value"))
    return ""


def spans_by_kind(jaeger: Jaeger, trace_id: str, *, min_spans: int) -> dict[str, int]:
    """How many spans of each kind the trace has, once it has ``min_spans`` spans."""
    found = jaeger.wait_for_trace(trace_id, min_spans=min_spans, timeout=30)
    kinds: dict[str, int] = {}
    for span in found["spans"]:
        kind = span_kind(span)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
