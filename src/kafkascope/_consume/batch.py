"""A batch's process span: :func:`begin_batch` opens a :class:`BatchScope` with a handler's
:class:`~kafkascope._consume.options.ProcessOptions` that continues the ambient context and
links to each message's producer; its :meth:`~BatchScope.finish` records the outcome. Nothing
here raises into user code: instrumentation failures are reported once and the handler runs
regardless.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from kafkascope._adapters.records import RecordView, body_size, view
from kafkascope._consume.batch_links import batch_links
from kafkascope._consume.options import ProcessOptions
from kafkascope._consume.scope import ProcessScope, time_in_queue, timestamp_type
from kafkascope._core import errors as _errors
from kafkascope._core import message as _message
from kafkascope._core import metrics as _metrics
from kafkascope._core import presampling as _presampling
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.message import CONTEXT_KEY, Processing, current_message
from kafkascope._observe import time_lag as _time_lag
from kafkascope._propagation import pipeline as _pipeline_latency


def begin_batch(options: ProcessOptions, records: Iterable[object]) -> BatchScope | None:
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
        return BatchScope(options, views, sizes)
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


class BatchScope(ProcessScope):
    """The process span of a batch: current in the context until :meth:`finish`."""

    __slots__ = ()

    def __init__(
        self,
        options: ProcessOptions,
        records: Sequence[RecordView],
        sizes: Sequence[int | None] | None,
    ) -> None:
        """Start the span of ``records`` (``sizes``: their body sizes, when captured) and make
        it current."""
        self._options = options
        self._records = records
        self.sizes = sizes
        self._history = None  # a batch is not retried as one
        self._sampled = None
        settings = _settings.current()
        self._start = time.perf_counter()
        self._start_ms = time.time() * 1000.0
        ambient = otel_context.get_current()
        topics = {r.topic for r in records}
        topic = self._topic = topics.pop() if len(topics) == 1 else None
        capture = options.capture_headers or settings.capture_headers
        links = batch_links(records, topic, capture, settings, sizes)
        attrs = dict(options.span_base(topic, None))
        attrs[sc.MESSAGING_BATCH_MESSAGE_COUNT] = len(records)
        span = self.span = _presampling.start_span(
            options.tracer_provider,
            sc.process_span_name(topic),
            ambient,
            SpanKind.CONSUMER,
            attrs,
            links,
        )
        # A batch of one still names its message in log records.
        only = records[0] if len(records) == 1 else None
        processing = Processing(
            topic,
            only.partition if only is not None else None,
            only.offset if only is not None else None,
            options.group,
            None,
            None,
            1,
        )
        context = trace.set_span_in_context(span, ambient)
        if _message.carried:
            # As for a single message (see kafkascope._consume.single).
            context = otel_context.set_value(CONTEXT_KEY, processing, context)
        self._context = context
        self._token = otel_context.attach(context)
        if _time_lag.noting:
            _time_lag.note_processed(options.group, records)
        stamp = _pipeline_latency.begin(
            records,
            span,
            options.group,
            self._start_ms,
            options.meter_provider,
            on_span=settings.span_timings,
        )
        if stamp is None:
            outer = current_message.get()
            stamp = outer.stamp if outer is not None else None
        processing.stamp = stamp
        self._message_token = current_message.set(processing)

    def _measure(self, instruments: _metrics.MessagingMetrics, error_type: str | None) -> None:
        options = self._options
        # Measured in the process span's context, though after it ended (as for a message).
        instruments.observe_processed(
            streams=options.streams(instruments, self._topic),
            error_type=error_type,
            duration=time.perf_counter() - self._start,
            messages=len(self._records),
            waits=self._waits(instruments),
            context=self._context,
        )

    def _waits(self, instruments: _metrics.MessagingMetrics) -> list[tuple[_metrics.Stream, float]]:
        options = self._options
        waits = []
        for record in self._records:
            waited = time_in_queue(record, self._start_ms)
            if waited is not None:
                streams = options.streams(instruments, record.topic)
                waits.append((streams.waited(timestamp_type(record)), waited))
        return waits
