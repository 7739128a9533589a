"""One message's process span: :func:`begin` opens a :class:`MessageScope` with a handler's
:class:`~kafkascope._consume.options.ProcessOptions`; its :meth:`~MessageScope.finish` records
the outcome. This is the path every message of ``@traced_handler`` takes, so it is kept flat:
one call opens the span, one closes it. Nothing here raises into user code: instrumentation
failures are reported once and the handler runs regardless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import AttributeValue

from kafkascope._adapters.records import (
    ADAPTERS_BY_TYPE,
    RecordAdapter,
    RecordView,
    adapt_namedtuple,
    body_size,
    view,
)
from kafkascope._consume.handler_args import Found
from kafkascope._consume.options import ProcessOptions
from kafkascope._consume.scope import ProcessScope, timestamp_type
from kafkascope._core import errors as _errors
from kafkascope._core import message as _message
from kafkascope._core import metrics as _metrics
from kafkascope._core import presampling as _presampling
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import header_attributes
from kafkascope._core.message import CONTEXT_KEY, Processing, current_message
from kafkascope._core.settings import Settings
from kafkascope._core.span_in_context import SPAN_KEY
from kafkascope._core.telemetry import message_key
from kafkascope._observe import time_lag as _time_lag
from kafkascope._propagation import pipeline as _pipeline_latency
from kafkascope._propagation.w3c import scan_headers, with_remote_span

_new_processing = Processing.__new__


def begin(
    options: ProcessOptions, record: object, adapter: RecordAdapter | None = None
) -> MessageScope | None:
    """Open the process span for one record (read by ``adapter`` when the caller has looked
    it up already); None when ``record`` is not a record."""
    try:
        record_view = view(record) if adapter is None else adapter(record)
        if record_view is None:
            return None
        return MessageScope(options, record_view, record)
    except Exception as exc:
        _errors.report("process span start", exc)
        return None


def starter(
    options: ProcessOptions,
    find: Callable[[tuple[Any, ...], Mapping[str, Any]], Found | None],
) -> Callable[[tuple[Any, ...], Mapping[str, Any]], MessageScope | None]:
    """What opens the span of one call of a handler from its arguments, with ``find`` to find
    the record among them (:meth:`~kafkascope._consume.handler_args.RecordArgument.find`).

    Flat for the common case, a first argument of a named-tuple record type (kafka-python's):
    recognised by its type alone, read and its span opened without the calls of ``find`` and
    :func:`begin` (about 3,000 callgrind instructions per message).
    """

    def start(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> MessageScope | None:
        if args and ADAPTERS_BY_TYPE.get(type(record := args[0])) is adapt_namedtuple:
            try:
                return MessageScope(options, adapt_namedtuple(record), record)
            except Exception as exc:
                _errors.report("process span start", exc)
                return None
        found = find(args, kwargs)
        return begin(options, *found) if found is not None else None

    return start


class MessageScope(ProcessScope):
    """The process span of one message: current in the context until :meth:`finish`."""

    __slots__ = ("_waited",)

    _waited: float | None  # its time in queue, seconds

    def __init__(self, options: ProcessOptions, record: RecordView, raw: object) -> None:
        """Start the span of ``record`` (``raw``: as its client gave it, read for its size when
        sizes are captured) and make it current.

        Flat on purpose, one step after the other: every message runs it, and each helper call
        or property read costs a few hundred instructions (``performance.md``, the unsampled
        path's rounds)."""
        self._options = options
        self._records = (record,)
        settings = _settings.in_force or _settings.current()  # current(), for its call
        self.sizes = (body_size(raw),) if settings.capture_sizes else None
        self._start = time.perf_counter()
        self._start_ms = start_ms = time.time() * 1000.0
        ambient = otel_context.get_current()
        topic = self._topic = record.topic
        headers_ctx, parsed, stamp_header, lineage = scan_headers(
            record.headers, trust_baggage=settings.trust_baggage
        )
        # The parent is chosen by the parent policy; the producer is linked when it is not it.
        links: Sequence[Link] = ()  # at most one link, below
        parent = ambient
        parent_span = None  # the parent's span context, known valid here
        policy = options.parent or settings.parent
        # A span context the scan parsed is valid, and an empty context (no trace context in
        # the headers) has no span to read: neither is looked up nor its validity asked (a
        # property). About 2,000 instructions each.
        producer = parsed
        if producer is None and headers_ctx:
            producer = trace.get_current_span(headers_ctx).get_span_context()
            if not producer.is_valid:
                producer = None
        if producer is not None:
            if policy == "producer":
                # The producer is the parent: a link to it too would only repeat it. The
                # presampler is told the parent's span context, so a parsed one is put into the
                # context only when the SDK makes the span (below).
                parent = headers_ctx
                parent_span = producer
                if ambient:
                    ambient_sc = trace.get_current_span(ambient).get_span_context()
                    if ambient_sc.is_valid:
                        links = [Link(ambient_sc)]
            else:
                links = [Link(producer)]
        if policy == "links":
            parent = trace.set_span_in_context(trace.INVALID_SPAN, headers_ctx)
        timestamp = record.timestamp_ms
        # time_in_queue(), inlined: never negative (a producer's clock may run ahead).
        waited = None if timestamp is None else (start_ms - timestamp) / 1000.0
        self._waited = waited if waited is None or waited > 0.0 else 0.0
        # What samplers are given: the conventions' sampling-relevant attributes (system,
        # operation, destination, partition, group, server, client id).
        # options.span_start(), what it built read here for the call.
        partition = record.partition
        known = options.span_starts.get(topic)
        found = known.get(partition) if known is not None else None
        name, base = found if found is not None else options.span_start(topic, partition)
        tracer_provider = options.tracer_provider
        # _presampling.for_provider(), its last answer read here for the call.
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        last = _presampling.last_found
        presampler = (
            last[1]
            if last is not None and last[0] is provider
            else _presampling.for_provider(provider)
        )
        span = (
            None
            if presampler is None
            else presampler.start(name, parent, SpanKind.CONSUMER, base, links, parent_span)
        )
        # A span the presampler drops neither records nor is sampled: neither is asked. An
        # SDK span's sampled flag is read by the metrics, if any (None: not known here).
        self._sampled = False
        if span is None:
            if parsed is not None and parent is headers_ctx:
                parent = with_remote_span(headers_ctx, parsed)
            # The provider resolved above: the global one is not looked up again.
            span = _presampling.sdk_span(provider, name, parent, SpanKind.CONSUMER, base, links)
            self._sampled = None
            if span.is_recording():
                # Only the span needs these: an unsampled message skips them (key decoding
                # too).
                span.set_attributes(self._message_attributes(settings))
        self.span = span
        attempts = options.attempts
        # A first attempt without lineage headers (the common case) has no history to find.
        history = self._history = (
            attempts.begin(record, span, lineage)
            if lineage is not False or attempts.failed
            else None
        )
        # Processing(...) without the call of its __init__ (as the record's view is made).
        processing = _new_processing(Processing)
        processing.topic = topic
        processing.partition = partition
        processing.offset = record.offset
        processing.group = options.group
        processing.stamp = None  # known below, once the context is current
        processing.span = span
        processing.attempt = 1 if history is None else history.failures + 1
        # trace.set_span_in_context(span, parent), without its two calls (span_in_context.py).
        if SPAN_KEY is None:
            context = trace.set_span_in_context(span, parent)
        elif parent:
            context = Context({**parent, SPAN_KEY: span})
        else:
            context = Context({SPAN_KEY: span})
        if _message.carried:
            # The message rides in the span's context too, so that log records in threads
            # that were handed only the OpenTelemetry context (contrib's threading
            # instrumentation) still name it.
            context = otel_context.set_value(CONTEXT_KEY, processing, context)
        self._context = context
        self._token = otel_context.attach(context)
        if _time_lag.noting:
            _time_lag.note_one(options.group, record)
        stamp = None
        if stamp_header is not None:
            stamp = _pipeline_latency.begin(
                self._records,
                span,
                options.group,
                start_ms,
                options.meter_provider,
                stamp_header,
                on_span=settings.span_timings,
            )
        if stamp is None:
            outer = current_message.get()
            stamp = outer.stamp if outer is not None else None
        processing.stamp = stamp
        self._message_token = current_message.set(processing)

    def _message_attributes(self, settings: Settings) -> dict[str, AttributeValue]:
        """The attributes of one message only: offset, key, tombstone, time in queue."""
        record = self._records[0]
        attrs: dict[str, AttributeValue] = {}
        if record.offset is not None:
            attrs[sc.MESSAGING_KAFKA_OFFSET] = record.offset
        key = message_key(record.key, settings, self._options.capture_key)
        if key is not None:
            attrs[sc.MESSAGING_KAFKA_MESSAGE_KEY] = key
        if record.tombstone:
            attrs[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] = True
        capture = self._options.capture_headers or settings.capture_headers
        conversation = settings.conversation_id_header
        if capture is not None or conversation is not None:
            header_attributes(record.headers, capture, conversation, attrs)
        if self.sizes is not None and (size := self.sizes[0]) is not None:
            attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] = size
        if self._waited is not None and settings.span_timings:
            attrs[sc.TIME_IN_QUEUE] = self._waited
            attrs[sc.TIMESTAMP_TYPE] = timestamp_type(record)
        return attrs

    def _outcome(self, exc: BaseException | None) -> str | None:
        self._options.attempts.end(self._records[0], self._history, self.span, exc)
        return super()._outcome(exc)

    def _measure(self, instruments: _metrics.MessagingMetrics, error_type: str | None) -> None:
        options = self._options
        waited = self._waited
        clock: str | None = None
        if waited is not None:  # timestamp_type(), inlined: a call per message costs ~2k
            log_append = self._records[0].log_append_time
            clock = sc.TIMESTAMP_LOG_APPEND_TIME if log_append else sc.TIMESTAMP_CREATE_TIME
        # Measured in the process span's context, though after it ended: an exemplar of these
        # histograms then leads to this message's trace.
        topic = self._topic
        # options.streams(), what it built read here for the call.
        streams = None
        if instruments is options.instruments:
            streams = options.streams_by_topic.get(topic)
        if streams is None:
            streams = options.streams(instruments, topic)
        instruments.observe_message(
            streams,
            error_type,
            time.perf_counter() - self._start,
            clock,
            waited,
            self.span,
            self._context,
            self._sampled,
        )
