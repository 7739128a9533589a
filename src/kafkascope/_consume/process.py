"""Process spans: one per message or batch, current while the handler runs.

:func:`begin` and :func:`begin_batch` open a :class:`ProcessScope` with a handler's
:class:`~kafkascope._consume.options.ProcessOptions`; its :meth:`~ProcessScope.finish` records the
outcome. Nothing here raises into user code: instrumentation failures are reported once and the
handler runs regardless.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextvars import Token
from typing import TypeAlias

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

from kafkascope._adapters.records import RecordAdapter, RecordView, body_size, view
from kafkascope._consume.batch_links import batch_links
from kafkascope._consume.options import ProcessOptions
from kafkascope._core import errors as _errors
from kafkascope._core import message as _message
from kafkascope._core import metrics as _metrics
from kafkascope._core import presampling as _presampling
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core import sizes as _sizes
from kafkascope._core import telemetry as _telemetry
from kafkascope._core.header_capture import header_attributes
from kafkascope._core.message import CONTEXT_KEY, Processing, current_message
from kafkascope._core.settings import Settings
from kafkascope._core.telemetry import message_key, record_error
from kafkascope._observe import time_lag as _time_lag
from kafkascope._propagation import pipeline as _pipeline_latency
from kafkascope._propagation.poison import History
from kafkascope._propagation.w3c import NOT_SCANNED, scan_headers

_Start: TypeAlias = tuple[Context, list[Link], dict[str, AttributeValue]]
"""A span's parent context, links and attributes."""


def _time_in_queue(record: RecordView, now_ms: float) -> float | None:
    if record.timestamp_ms is None:
        return None
    return max(0.0, now_ms - record.timestamp_ms) / 1000.0


def _timestamp_type(record: RecordView) -> str:
    return sc.TIMESTAMP_LOG_APPEND_TIME if record.log_append_time else sc.TIMESTAMP_CREATE_TIME


def begin(
    options: ProcessOptions, record: object, adapter: RecordAdapter | None = None
) -> ProcessScope | None:
    """Open the process span for one record (read by ``adapter`` when the caller has looked
    it up already); None when ``record`` is not a record."""
    try:
        record_view = view(record) if adapter is None else adapter(record)
        if record_view is None:
            return None
        scope = ProcessScope(options, (record_view,), batch=False)
        scope.enter(record)
        return scope
    except Exception as exc:
        _errors.report("process span start", exc)
        return None


def begin_batch(options: ProcessOptions, records: Iterable[object]) -> ProcessScope | None:
    """Open one process span for a batch of records, linked to each producer."""
    try:
        if not isinstance(records, Collection | Mapping):
            # An iterator would be used up here and reach the handler empty: span without
            # per-message links and counts rather than change what the handler gets.
            records = ()
        sizes: list[int | None] | None = None
        if _settings.current().capture_sizes:
            pairs = [(v, r) for r in _flatten(records) if (v := view(r)) is not None]
            views = [v for v, _ in pairs]
            sizes = [body_size(r) for _, r in pairs]
        else:
            views = [v for v in map(view, _flatten(records)) if v is not None]
        scope = ProcessScope(options, views, batch=True)
        scope.sizes = sizes
        scope.enter()
        return scope
    except Exception as exc:
        _errors.report("batch span start", exc)
        return None


def _flatten(records: Iterable[object]) -> Iterable[object]:
    """A batch may be a list of records or ``poll()``'s mapping of partition to records."""
    if isinstance(records, Mapping):
        for chunk in records.values():
            yield from chunk
    else:
        yield from records


class ProcessScope:
    """One open process span: current in the context until :meth:`finish`."""

    __slots__ = (
        "_context",
        "_history",
        "_message_token",
        "_options",
        "_records",
        "_stamp_header",
        "_start",
        "_start_ms",
        "_token",
        "_topic",
        "_waited",
        "batch",
        "sizes",
        "span",
    )

    def __init__(
        self, options: ProcessOptions, records: Sequence[RecordView], *, batch: bool
    ) -> None:
        self._options = options
        self._records = records
        self.batch = batch
        self.span: Span = trace.INVALID_SPAN
        self._token: Token[Context] | None = None
        self._context: Context | None = None
        self._message_token: Token[Processing | None] | None = None
        self._start = 0.0
        self._topic: str | None = None
        self._start_ms = 0.0
        self._waited: float | None = None
        self._history: History | None = None
        # The first record's stamp header as the scan found it (batches: each record's is
        # looked up by the pipeline latency itself).
        self._stamp_header: object = NOT_SCANNED
        self.sizes: Sequence[int | None] | None = None
        """Each record's body size, when sizes are captured."""

    @property
    def records(self) -> Sequence[RecordView]:
        """The records this span processes."""
        return self._records

    def enter(self, raw: object = None) -> Span:
        """Start the span and make it current (``raw``: a single message's record as its
        client gave it, read for its size when sizes are captured)."""
        options = self._options
        settings = _settings.current()
        if raw is not None and settings.capture_sizes:
            self.sizes = (body_size(raw),)
        self._start = time.perf_counter()
        self._start_ms = time.time() * 1000.0
        ambient = otel_context.get_current()
        if self.batch:
            parent, links, attrs = self._batch_start(ambient, settings)
        else:
            parent, links, attrs = self._single_start(ambient, settings)
        span = _presampling.start_span(
            options.tracer_provider,
            sc.process_span_name(self._topic),
            parent,
            SpanKind.CONSUMER,
            attrs,
            links,
        )
        self.span = span
        records = self._records
        if self.batch:
            first = None
        else:
            first = records[0]
            if span.is_recording():
                # Only the span needs these: an unsampled message skips them (key decoding too).
                span.set_attributes(self._message_attributes(settings))
            self._history = options.attempts.begin(first, span)
        # A batch of one still names its message in log records.
        only = first if first is not None or len(records) != 1 else records[0]
        processing = Processing(
            self._topic,
            only.partition if only is not None else None,
            only.offset if only is not None else None,
            options.group,
            None,
            None if first is None else span,
            1 if self._history is None else self._history.failures + 1,
        )
        context = trace.set_span_in_context(span, parent)
        if _message.carried:
            # The message rides in the span's context too, so that log records in threads
            # that were handed only the OpenTelemetry context (contrib's threading
            # instrumentation) still name it.
            context = otel_context.set_value(CONTEXT_KEY, processing, context)
        self._context = context
        self._token = otel_context.attach(context)
        if first is None:
            _time_lag.note_processed(options.group, records)
        else:
            _time_lag.note_one(options.group, first)
        stamp = None
        if self._stamp_header is not None:
            stamp = _pipeline_latency.begin(
                records,
                span,
                options.group,
                self._start_ms,
                options.meter_provider,
                self._stamp_header,
                on_span=settings.span_timings,
            )
        if stamp is None:
            outer = current_message.get()
            stamp = outer.stamp if outer is not None else None
        processing.stamp = stamp
        self._message_token = current_message.set(processing)
        return span

    def _batch_start(self, ambient: Context, settings: Settings) -> _Start:
        """A batch continues the ambient context and links to each message's producer."""
        records = self._records
        topics = {r.topic for r in records}
        self._topic = topics.pop() if len(topics) == 1 else None
        capture = self._options.capture_headers or settings.capture_headers
        links = batch_links(records, self._topic, capture, settings, self.sizes)
        attrs = dict(self._options.span_base(self._topic, None))
        attrs[sc.MESSAGING_BATCH_MESSAGE_COUNT] = len(records)
        return ambient, links, attrs

    def _single_start(self, ambient: Context, settings: Settings) -> _Start:
        """One message: the parent is chosen by the parent policy, the producer is linked."""
        options = self._options
        record = self._records[0]
        self._topic = record.topic
        producer_ctx, self._stamp_header = scan_headers(
            record.headers, trust_baggage=settings.trust_baggage
        )
        producer = (
            trace.get_current_span(producer_ctx).get_span_context()
            if producer_ctx  # an empty context (no trace context in the headers) has no span
            else INVALID_SPAN_CONTEXT
        )
        links: list[Link] = []
        parent = ambient
        policy = options.parent or settings.parent
        if policy == "producer" and producer.is_valid:
            # The producer is the parent: a link to it too would only repeat the parent.
            parent = producer_ctx
            ambient_sc = trace.get_current_span(ambient).get_span_context()
            if ambient_sc.is_valid:
                links.append(Link(ambient_sc))
        elif producer.is_valid:
            links.append(Link(producer))
        if policy == "links":
            parent = trace.set_span_in_context(trace.INVALID_SPAN, producer_ctx)
        self._waited = _time_in_queue(record, self._start_ms)
        # What samplers are given: the conventions' sampling-relevant attributes (system,
        # operation, destination, partition, group, server, client id).
        return parent, links, options.span_base(record.topic, record.partition)

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
            attrs[sc.TIMESTAMP_TYPE] = _timestamp_type(record)
        return attrs

    def finish(self, exc: BaseException | None) -> None:
        """Record the handler's outcome, end the span, restore the context. Never raises."""
        span = self.span
        error_type: str | None = None
        try:
            # A first attempt that succeeded leaves nothing to track (the common case).
            if not self.batch and (exc is not None or self._history is not None):
                self._options.attempts.end(self._records[0], self._history, span, exc)
            if exc is not None:
                error_type = _telemetry.error_type(exc)
                record_error(span, exc, error_type)
        except Exception as internal:
            _errors.report("process span error", internal)
        finally:
            try:
                if self._message_token is not None:
                    current_message.reset(self._message_token)
            except ValueError:
                current_message.set(None)  # reset from another context (async generators)
            if self._token is not None:
                otel_context.detach(self._token)
        try:
            span.end()
            self._observe(error_type)
        except Exception as internal:
            _errors.report("process span end", internal)

    def _observe(self, error_type: str | None) -> None:
        options = self._options
        if self.sizes is not None:
            self._observe_sizes()
        instruments = _metrics.for_provider(options.meter_provider)
        if instruments.noop:
            return
        streams = options.streams(instruments, self._topic)
        # Measured in the process span's context, though after it ended: an exemplar of these
        # histograms then leads to this message's trace.
        if not self.batch:
            # A single record's wait was computed when its span started.
            waited = self._waited
            instruments.observe_message(
                streams,
                error_type,
                time.perf_counter() - self._start,
                None if waited is None else _timestamp_type(self._records[0]),
                waited,
                self.span.get_span_context(),
                self._context,
            )
            return
        instruments.observe_processed(
            streams=streams,
            error_type=error_type,
            duration=time.perf_counter() - self._start,
            messages=len(self._records),
            waits=self._batch_waits(instruments),
            context=self._context,
        )

    def _observe_sizes(self) -> None:
        options = self._options
        histogram = _sizes.for_provider(options.meter_provider)
        if histogram.noop or self.sizes is None:
            return
        for record, size in zip(self._records, self.sizes, strict=True):
            if size is not None:
                histogram.record(
                    size, sc.OPERATION_PROCESS, record.topic, options.group, self._context
                )

    def _batch_waits(
        self, instruments: _metrics.MessagingMetrics
    ) -> list[tuple[_metrics.Stream, float]]:
        options = self._options
        waits = []
        for record in self._records:
            waited = _time_in_queue(record, self._start_ms)
            if waited is not None:
                streams = options.streams(instruments, record.topic)
                waits.append((streams.waited(_timestamp_type(record)), waited))
        return waits
