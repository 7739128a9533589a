"""Extraction of W3C trace context and baggage from header values, without the propagator API.

When the global propagator is the default one (W3C trace context, then W3C baggage: what
``opentelemetry.propagate`` builds when ``OTEL_PROPAGATORS`` is unset), a caller that has found
the ``traceparent``, ``tracestate`` and ``baggage`` header values can call :func:`extract_w3c`
instead of ``propagate.extract``: the result is the same ``Context`` (same span context, same
baggage), without a getter scanning the headers once per field and without the composite
propagator's dispatch. The common ``traceparent`` (version ``00``, 55 characters) is parsed
directly; anything else, and every ``tracestate`` and ``baggage`` value, goes through the SDK's
own parsing, so hostile input is treated exactly as the propagators treat it. Baggage is not
looked at when there is no baggage header.

:func:`is_default_propagator` tells whether the fast path applies; otherwise callers use the
configured propagator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from opentelemetry import baggage as otel_baggage
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.environment_variables import OTEL_PROPAGATORS
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kafkascope._core.headers import ATTEMPT, PIPELINE, PIPELINE_BYTES, Headers
from kafkascope._core.span_in_context import with_span
from kafkascope._propagation import carrier as _carrier
from kafkascope._propagation.carrier import MAX_VALUE_BYTES
from kafkascope._propagation.traceparent import is_canonical, parse_canonical

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
BAGGAGE: Final = "baggage"
FIELDS: Final = (TRACEPARENT, TRACESTATE, BAGGAGE)
"""The header names whose values :func:`extract_w3c` takes, in its argument order."""

_DEFAULT_FIELDS: Final = frozenset(FIELDS)
# The SDK's limit for the tracestate header (W3C trace context, section 3.3.1.1).
_MAX_TRACESTATE_LENGTH: Final = 8192

_TRACE_CONTEXT: Final = TraceContextTextMapPropagator()
_BAGGAGE: Final = W3CBaggagePropagator()


class _OneValueGetter(Getter[Mapping[str, str]]):
    """Reads the already-decoded values handed to :func:`extract_w3c`."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER: Final = _OneValueGetter()


def _text(value: bytes | None) -> str | None:
    """A header value as the carrier reads it: strict UTF-8, at most MAX_VALUE_BYTES."""
    if value is None or len(value) > MAX_VALUE_BYTES:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _trace_state(tracestate: bytes | None) -> TraceState | None:
    text = _text(tracestate)
    if text is None:
        return None
    if len(text) > _MAX_TRACESTATE_LENGTH:
        return None
    return TraceState.from_header([text])


def _with_trace_context(
    traceparent: bytes | None, tracestate: bytes | None, context: Context
) -> Context:
    if traceparent is None:
        return context
    if not is_canonical(traceparent):
        # Whitespace, future versions' extra fields, or not trace context at all: the SDK
        # decides, on the same values.
        text = _text(traceparent)
        if text is None:
            return context
        carrier = {TRACEPARENT: text}
        state = _text(tracestate)
        if state is not None:
            carrier[TRACESTATE] = state
        return _TRACE_CONTEXT.extract(carrier, context, getter=_GETTER)
    # The canonical form is ASCII: the bytes parse as the text would.
    span_context = parse_canonical(
        traceparent, None if tracestate is None else _trace_state(tracestate)
    )
    if span_context is None:
        return context
    return with_remote_span(context, span_context)


def with_remote_span(context: Context, span_context: SpanContext) -> Context:
    """``context`` with the (remote) span of ``span_context`` in it: what extraction makes of
    a ``traceparent`` (:func:`scan_headers` leaves it to its callers)."""
    return with_span(NonRecordingSpan(span_context), context)


def extract_w3c(
    traceparent: bytes | None,
    tracestate: bytes | None,
    baggage: bytes | None,
    *,
    context: Context | None = None,
) -> Context:
    """The context that ``propagate.extract`` with the default propagator returns for headers
    carrying these values (one each; pass the value to use when a header is repeated).

    Values longer than ``MAX_VALUE_BYTES`` or not UTF-8 count as absent, as kafkascope's
    carrier reads them. Raises nothing the SDK propagators would not raise on the same text.

    Args:
        traceparent: the ``traceparent`` header value, or None.
        tracestate: the ``tracestate`` header value, or None.
        baggage: the ``baggage`` header value, or None (then baggage is not looked at).
        context: the context to extract into (default: a fresh one).
    """
    extracted = _with_trace_context(
        traceparent, tracestate, context if context is not None else Context()
    )
    if baggage is None:
        return extracted
    text = _text(baggage)
    if text is None:
        return extracted
    return _BAGGAGE.extract({BAGGAGE: text}, extracted, getter=_GETTER)


def _default_by_environment() -> bool:
    configured = os.environ.get(OTEL_PROPAGATORS)
    if not configured:
        return True
    return [name.strip() for name in configured.split(",")] == ["tracecontext", "baggage"]


# The propagator opentelemetry.propagate installed when this module was first imported. The
# public API cannot list a composite's members: the default one is recognised by identity,
# with the environment that made it.
_INSTALLED: Final = propagate.get_global_textmap()
_INSTALLED_IS_DEFAULT: Final = (
    _default_by_environment()
    and type(_INSTALLED) is CompositePropagator
    and _INSTALLED.fields == _DEFAULT_FIELDS
)


def is_default_propagator(textmap: TextMapPropagator | None = None) -> bool:
    """Whether ``textmap`` (default: the global propagator) is the default W3C trace context +
    baggage propagator, for which :func:`extract_w3c` gives the same result.

    True only for the propagator ``opentelemetry.propagate`` made from an unset (or
    ``tracecontext,baggage``) ``OTEL_PROPAGATORS`` and still installed when kafkascope was
    imported; any propagator set later with ``set_global_textmap`` counts as custom, even one
    built the same way, so callers fall back to ``propagate.extract`` for it.
    """
    current = textmap if textmap is not None else propagate.get_global_textmap()
    return _INSTALLED_IS_DEFAULT and current is _INSTALLED


def _as_bytes(value: object) -> bytes | None:
    """A header value as the bytes the carrier would read, or None."""
    if isinstance(value, bytes) and type(value) is bytes:
        return value
    if value is None:
        return None
    text = _carrier.text_of(value)
    return None if text is None else text.encode("utf-8")


_STAMP_LENGTH: Final = len(PIPELINE)
_ATTEMPT_LENGTH: Final = len(ATTEMPT)
_READ_LENGTHS: Final = frozenset(
    {len(TRACEPARENT), len(TRACESTATE), len(BAGGAGE), _STAMP_LENGTH, _ATTEMPT_LENGTH}
)
"""The lengths of the header names the scan reads: any other header is passed over at once."""
_NOTHING: Final = Context()
"""The context of headers with nothing to extract, or with only a ``traceparent`` the scan
parsed (its span context handed on beside it): one shared instance, so only ever read (the
scan's callers never make it current nor hand it to users)."""
NOT_SCANNED: Final = object()
"""What :func:`scan_headers` gives as the stamp when it did not look at the headers itself."""


def extract_headers(headers: Headers, *, trust_baggage: bool = True) -> Context:
    """What :func:`kafkascope.extract_context` returns for ``headers``, in one pass over them
    when the global propagator is the default one (:func:`is_default_propagator`).

    The pass keeps the last ``traceparent`` and ``tracestate`` (names in any case) and the
    ``baggage`` headers, as the carrier's getter reads them, and hands them to
    :func:`extract_w3c`; the baggage is bounded as :func:`~kafkascope.extract_context` bounds
    it. Any other propagator goes through :func:`~kafkascope.extract_context`. Never raises.
    """
    context, span_context, _, _ = scan_headers(headers, trust_baggage=trust_baggage)
    return context if span_context is None else with_remote_span(context, span_context)


def _is_stamp_name(name: object) -> bool:
    """A bytes-like header name that is the pipeline stamp's (compared as the stamp's reader
    compares it)."""
    try:
        return bool(isinstance(name, bytes | bytearray) and name == PIPELINE_BYTES)
    except Exception:
        return False


def scan_headers(
    headers: Headers, *, trust_baggage: bool = True
) -> tuple[Context, SpanContext | None, object, bool | None]:
    """:func:`extract_headers`' context in two parts: a context, and the span context of a
    ``traceparent`` the scan parsed itself (always a valid one), which that context does not
    hold yet (:func:`with_remote_span` puts it there; None: the context is whole). Then, from
    the same pass: the value of the last pipeline stamp header (``(str or bytes name, value)``
    tuples named exactly :data:`~kafkascope._core.headers.PIPELINE`), None when there is none,
    or :data:`NOT_SCANNED` when the configured propagator read the headers instead; and whether
    a header is named :data:`~kafkascope._core.headers.ATTEMPT` (a retry's lineage may follow),
    None when not scanned. Never raises.
    """
    # is_default_propagator(), inlined: this runs per message.
    if not (_INSTALLED_IS_DEFAULT and propagate.get_global_textmap() is _INSTALLED):
        context = _carrier.extract_context(headers, trust_baggage=trust_baggage)
        return context, None, NOT_SCANNED, None
    traceparent: object = None
    tracestate: object = None
    stamp: object = None
    attempt: bool | None = False
    bags = 0
    bag: object = None
    try:
        pairs = headers if type(headers) is list else _carrier.pairs_of(headers)
        for pair in pairs:
            try:
                name, value = pair
            except (TypeError, ValueError):
                attempt = None  # not a pair: the lineage reader reads it its own way
                continue
            if type(name) is not str:
                if _is_stamp_name(name):
                    if type(pair) is tuple:
                        stamp = value
                    continue
                name = _carrier.name_of(name)
                if name is None:
                    # Not text (a bytearray, a memoryview): the lineage reader compares such
                    # names itself.
                    attempt = None
                    continue
            size = len(name)
            if size not in _READ_LENGTHS:
                continue
            if size == 11:
                if name == TRACEPARENT or name.lower() == TRACEPARENT:
                    traceparent = value
            elif size == 10:
                if name == TRACESTATE or name.lower() == TRACESTATE:
                    tracestate = value
            elif size == 7:
                if name == BAGGAGE or name.lower() == BAGGAGE:
                    bags += 1
                    bag = value
            elif size == _STAMP_LENGTH and name == PIPELINE and type(pair) is tuple:
                stamp = value
            elif size == _ATTEMPT_LENGTH and name == ATTEMPT and attempt is not None:
                attempt = True
        baggage_value: bytes | None = None
        if trust_baggage and bags:
            if bags == 1 and type(bag) is bytes and bag:
                baggage_value = _as_bytes(bag)
            else:  # several, or not bytes: combined as the carrier's getter combines them
                combined = _carrier.GETTER.get(headers, BAGGAGE)
                baggage_value = combined[0].encode("utf-8") if combined else None
        if traceparent is None and baggage_value is None:
            return _NOTHING, None, stamp, attempt  # what extract_w3c gives for nothing
        parent = traceparent if type(traceparent) is bytes else _as_bytes(traceparent)
        state = None if tracestate is None else _as_bytes(tracestate)
        if baggage_value is None and parent is not None and is_canonical(parent):
            # The common case: the span context alone. A caller that has a span of its own to
            # make current never needs the producer's in a context of its own (a span, a
            # context and its copy: about 5,000 instructions).
            span_context = parse_canonical(parent, None if state is None else _trace_state(state))
            return _NOTHING, span_context, stamp, attempt
        extracted = extract_w3c(parent, state, baggage_value)
        if baggage_value is None:
            return extracted, None, stamp, attempt
        entries = otel_baggage.get_all(extracted)
        bounded = _carrier.bound_baggage(extracted, entries) if entries else extracted
        return bounded, None, stamp, attempt
    except Exception:
        return Context(), None, None, None
