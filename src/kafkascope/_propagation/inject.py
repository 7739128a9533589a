"""Injecting trace context: the ``traceparent``-only path that needs no propagator call."""

from __future__ import annotations

from typing import Final

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace

from kafkascope._core.headers import Headers
from kafkascope._propagation.traceparent import format_traceparent
from kafkascope._propagation.w3c import FIELDS, TRACEPARENT, is_default_propagator

_PROPAGATION_FIELDS: Final = frozenset(FIELDS)


def _plain_headers(headers: Headers) -> list[tuple[str, bytes | None]] | None:
    """``headers`` less the propagation fields, when they are None or already a list of
    ``(ASCII str, bytes | None)`` tuples (what ``normalise_headers`` would leave unchanged);
    None for anything else."""
    if headers is None:
        return []
    if type(headers) is not list:
        return None
    kept: list[tuple[str, bytes | None]] = []
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            return None
        name, value = pair
        if type(name) is not str or not name.isascii():
            return None
        if value is not None and type(value) is not bytes:
            return None
        if name.lower() not in _PROPAGATION_FIELDS:
            kept.append(pair)
    return kept


def inject_span(headers: Headers, span: trace.Span) -> list[tuple[str, bytes | None]] | None:
    """What ``inject_headers(headers, context=trace.set_span_in_context(span))`` returns, built
    directly when that is only a ``traceparent``: the global propagator is the default one,
    the span context has no trace state, there is no baggage in the current context, and the
    headers are None or a list of ``(str, bytes)`` pairs. None when it does not apply (the
    caller then uses ``inject_headers``).
    """
    if not is_default_propagator() or otel_baggage.get_all():
        return None
    span_context = span.get_span_context()
    if span_context == trace.INVALID_SPAN_CONTEXT or span_context.trace_state:
        return None
    kept = _plain_headers(headers)
    if kept is None:
        return None
    kept.append((TRACEPARENT, format_traceparent(span_context)))
    return kept
