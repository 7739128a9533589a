"""The span pipeline ``configure()`` builds: a batch span processor sized for a consumer's rates,
and every span it cannot keep counted rather than dropped in silence.

The SDK's defaults (a queue of 2,048 spans, batches of 512, every 5 s) drop spans as soon as a
loop ends spans faster than the worker thread exports them for a little while, with one log
line per dropped span and no count. ``configure()`` instead queues up to :data:`MAX_QUEUE_SIZE`
spans and exports batches of :data:`MAX_EXPORT_BATCH_SIZE`; the queue stays near empty while
the backend keeps up. The ``OTEL_BSP_*`` variables still apply when set.

In front of its direct OTLP exporter, ``configure()`` queues each span as its encoded bytes
(:class:`~kafkascope._setup.otlp.processor.EncodingSpanProcessor`: a process span is about
0.4 KB, so a full queue holds about 7 MB). In front of any other exporter (the SDK's OTLP
exporter, the console, a user's), the SDK's batch processor queues the span objects (about
3.5 KB for a process span, so near 57 MB when full), and what is dropped is decided here, by
:class:`CountingSpanProcessor` in front of the SDK's
:class:`~opentelemetry.sdk.trace.export.BatchSpanProcessor`: it knows how many spans it handed
to the batch processor and, through :class:`HandOffExporter`, how many the worker took out of
the queue, so it drops (and counts in ``kafkascope.spans.dropped``, with one warning) the spans
the batch processor would drop, which then never fills its queue nor logs per span. Only public
SDK API is used: the queue's length is not public, the exporter's calls and the processor's
``on_end`` are.

Either processor keeps its export thread from being starved of the interpreter by a thread that
ends spans as fast as it can: from :func:`yield_mark` on, each span ended releases it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Final

from opentelemetry.context import Context
from opentelemetry.metrics import Counter, MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from kafkascope._core import semconv as sc
from kafkascope._core.errors import ConfigurationError

MAX_QUEUE_SIZE: Final = 16_384
"""Spans queued for export at most (the SDK's default is 2,048)."""
MAX_EXPORT_BATCH_SIZE: Final = 1_024
"""Spans per export call in front of any exporter but kafkascope's own OTLP one (the SDK's
default is 512)."""
SCHEDULE_DELAY_MILLIS: Final = 1_000
"""Longest wait before queued spans are exported (the SDK's default is 5,000)."""
EXPORT_TIMEOUT_MILLIS: Final = 30_000
"""The SDK's default, for ``OTEL_BSP_EXPORT_TIMEOUT`` to override."""

_VARIABLES: Final = (
    ("OTEL_BSP_MAX_QUEUE_SIZE", MAX_QUEUE_SIZE),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", MAX_EXPORT_BATCH_SIZE),
    ("OTEL_BSP_SCHEDULE_DELAY", SCHEDULE_DELAY_MILLIS),
    ("OTEL_BSP_EXPORT_TIMEOUT", EXPORT_TIMEOUT_MILLIS),
)

logger = logging.getLogger("kafkascope")


@dataclass(frozen=True)
class Sizing:
    """The batch span processor's queue, batch size, schedule delay and export timeout."""

    max_queue_size: int
    max_export_batch_size: int
    schedule_delay_millis: int
    export_timeout_millis: int


def sizing(env: Mapping[str, str], batch_default: int = MAX_EXPORT_BATCH_SIZE) -> Sizing:
    """kafkascope's sizing, batches of ``batch_default`` spans, with each ``OTEL_BSP_*``
    variable that is set in its place.

    Raises:
        ConfigurationError: a variable is not a positive integer, or the batch size exceeds
            the queue size.
    """
    values: list[int] = []
    defaults = {**dict(_VARIABLES), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": batch_default}
    for name, default in defaults.items():
        raw = env.get(name, "").strip()
        if not raw:
            values.append(default)
            continue
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise ConfigurationError(name, f"{name}={raw!r} is not a positive integer")
        values.append(value)
    chosen = Sizing(*values)
    if chosen.max_export_batch_size > chosen.max_queue_size:
        # The SDK rejects this too, naming no variable; a smaller queue then caps the batch.
        if env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "").strip():
            raise ConfigurationError(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={chosen.max_export_batch_size} exceeds the "
                f"queue size {chosen.max_queue_size}",
            )
        chosen = Sizing(
            chosen.max_queue_size,
            chosen.max_queue_size,
            chosen.schedule_delay_millis,
            chosen.export_timeout_millis,
        )
    return chosen


def with_arguments(chosen: Sizing, **arguments: int | None) -> Sizing:
    """``chosen`` with each argument that is given (named as :class:`Sizing`'s fields) in place.

    Raises:
        ConfigurationError: an argument is not a positive integer, or the batch size exceeds
            the queue size.
    """
    names = {field.name for field in fields(Sizing)}
    given: dict[str, int] = {}
    for name, value in arguments.items():
        if name not in names:
            raise TypeError(f"unknown sizing argument {name!r}")
        if value is None:
            continue
        if type(value) is not int or value <= 0:
            raise ConfigurationError(name, f"{name}={value!r} is not a positive integer")
        given[name] = value
    result = replace(chosen, **given)
    if result.max_export_batch_size > result.max_queue_size:
        if "max_export_batch_size" not in given:  # as in sizing(): the queue caps the batch
            return replace(result, max_export_batch_size=result.max_queue_size)
        raise ConfigurationError(
            "max_export_batch_size",
            f"max_export_batch_size={result.max_export_batch_size} exceeds the queue size "
            f"{result.max_queue_size}",
        )
    return result


def yield_mark(chosen: Sizing) -> int:
    """The queue length from which a thread ending a span releases the interpreter once, so
    that an export thread waiting for it can run: halfway from a whole batch to a full queue.

    A thread that ends spans as fast as it can and releases the interpreter only for moments
    (a client's ``poll()``) takes it straight back each time, before the export thread waiting
    for it wakes; CPython forces a switch only after a whole switch interval without one. Each
    request costs the export thread several such waits. A release from every span ended while
    the queue stands this high lets it in within a few spans; below the mark nothing changes.
    """
    batch = chosen.max_export_batch_size
    return batch + (chosen.max_queue_size - batch) // 2


def dropped_counter(meter_provider: MeterProvider) -> Counter:
    """The ``kafkascope.spans.dropped`` counter of ``meter_provider``."""
    return meter_provider.get_meter("kafkascope").create_counter(
        sc.SPANS_DROPPED,
        unit="{span}",
        description="Spans dropped before export because the export queue was full",
    )


class HandOffExporter(SpanExporter):
    """Passes batches to the real exporter, telling the processor how many left the queue."""

    def __init__(self, exporter: SpanExporter, processor: CountingSpanProcessor) -> None:
        self.exporter = exporter
        self._processor = processor

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._processor.taken(len(spans))
        return self.exporter.export(spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class Drops:
    """The spans a full export queue could not take: counted in ``kafkascope.spans.dropped``
    of ``meter_provider``, and announced by one warning at the first."""

    def __init__(self, meter_provider: MeterProvider, max_queue_size: int) -> None:
        self._counter = dropped_counter(meter_provider)
        self._max_queue_size = max_queue_size
        self._warned = False

    def add(self) -> None:
        """One more span dropped."""
        self._counter.add(1)
        if not self._warned:
            self._warned = True
            logger.warning(
                "kafkascope: spans are ended faster than they can be exported and the export "
                "queue (%d spans) is full; dropped spans are counted in %s and not logged "
                "one by one",
                self._max_queue_size,
                sc.SPANS_DROPPED,
            )


class CountingSpanProcessor(SpanProcessor):
    """A batch span processor that counts, in ``kafkascope.spans.dropped``, each span its full
    queue cannot take, and warns once when the first is dropped."""

    def __init__(
        self, exporter: SpanExporter, chosen: Sizing, meter_provider: MeterProvider
    ) -> None:
        self.max_queue_size = chosen.max_queue_size
        self._yield_mark = yield_mark(chosen)
        self._queued = 0
        self._lock = threading.Lock()
        self._drops = Drops(meter_provider, chosen.max_queue_size)
        self._batch = BatchSpanProcessor(
            HandOffExporter(exporter, self),
            max_queue_size=chosen.max_queue_size,
            schedule_delay_millis=chosen.schedule_delay_millis,
            max_export_batch_size=chosen.max_export_batch_size,
            export_timeout_millis=chosen.export_timeout_millis,
        )

    def taken(self, count: int) -> None:
        """The batch processor's worker took ``count`` spans out of its queue."""
        with self._lock:
            self._queued -= count

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return  # the batch processor ignores it too
        with self._lock:
            queued = self._queued
            full = queued >= self.max_queue_size
            if not full:
                self._queued = queued + 1
        if not full:
            self._batch.on_end(span)
            if queued >= self._yield_mark:
                time.sleep(0)  # the worker, waiting for the interpreter, may take it
            return
        self._drops.add()

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._batch.force_flush(timeout_millis)
