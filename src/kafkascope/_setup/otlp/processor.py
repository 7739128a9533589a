""":class:`EncodingSpanProcessor`: the batch span processor ``configure()`` puts in front of
:class:`~kafkascope._setup.otlp.exporter.DirectOTLPSpanExporter`.

The SDK's batch processor queues each ended span as the SDK's objects (a ``ReadableSpan`` with
its attributes, events, links and their locks: 11 objects the garbage collector tracks) until a
worker thread encodes a batch. Those objects outlive the young generations, so every span
queued pushes the collector towards a full collection of the whole heap; with a service's own
objects in the heap this cost more than encoding the span. Here a span is encoded to its OTLP
bytes when it ends, in the thread that ends it (the same work the worker would do), and the
queue holds only bytes, which the collector does not track. The worker frames runs of them into
requests: the bytes sent are the ones the exporter would send for the same spans.

It batches as the SDK's processor does (the ``OTEL_BSP_*`` sizing, a batch when the queue
holds one, at least one batch per schedule delay, everything on flush and shutdown, a new
worker after ``fork``), and drops what a full queue cannot take as
:class:`~kafkascope._setup.span_queue.CountingSpanProcessor` does: counted, with one warning.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Final

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from kafkascope._core import errors as _errors
from kafkascope._setup.otlp.encoder import Run, span_field
from kafkascope._setup.otlp.exporter import DirectOTLPSpanExporter
from kafkascope._setup.span_queue import (
    CountingSpanProcessor,
    Drops,
    sizing,
    with_arguments,
    yield_mark,
)

ENCODED_BATCH_SIZE: Final = 4_096
"""Spans per export in front of :class:`DirectOTLPSpanExporter`, which sends a batch whose
request would exceed its limit (4 MiB) as several. Four times the other exporters' batch: a
thread sending spans as fast as it can leaves the export thread the interpreter only now and
then, and each request costs it several turns, so larger requests drain the queue faster."""

_Source = tuple[Resource, InstrumentationScope | None]
_Opening = tuple[Resource, InstrumentationScope | None, bytes]
"""A queued span whose resource or scope differs from the span queued before it."""


class EncodingSpanProcessor(SpanProcessor):
    """A batch span processor for :class:`DirectOTLPSpanExporter` that encodes each sampled
    span to its OTLP bytes when it ends and queues the bytes, which the garbage collector does
    not track, where the SDK's batch processor queues the span's objects until its worker
    encodes them. A worker thread sends the bytes in batches; they are the bytes the exporter
    sends for the same spans.

    ``configure()`` puts it in front of the direct exporter; add it to your own provider with
    ``provider.add_span_processor(EncodingSpanProcessor())``. It batches as the SDK's
    processor does (whole batches as soon as the queue holds one, at least one batch per
    schedule delay, everything on :meth:`force_flush` and :meth:`shutdown`, a new worker
    after ``fork``). While the queue is more than halfway from a batch to full, the thread
    ending a span releases the interpreter once, so that the worker is not starved of it
    (:func:`~kafkascope._setup.span_queue.yield_mark`). A span the full queue cannot take is
    counted in ``kafkascope.spans.dropped`` and the first one announced by one warning.

    Args:
        exporter: default, a :class:`DirectOTLPSpanExporter` from the
            ``OTEL_EXPORTER_OTLP_*`` variables.
        max_queue_size: spans queued at most; default ``OTEL_BSP_MAX_QUEUE_SIZE``, else 16,384.
        max_export_batch_size: spans per export; default ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``,
            else 4,096 (at most the queue size).
        schedule_delay_millis: longest wait before queued spans are sent; default
            ``OTEL_BSP_SCHEDULE_DELAY``, else 1,000.
        export_timeout_millis: how long :meth:`shutdown` waits for the last exports; default
            ``OTEL_BSP_EXPORT_TIMEOUT``, else 30,000.
        meter_provider: where dropped spans are counted; default, the global one.

    Raises:
        ConfigurationError: a size that is not a positive integer, a batch larger than the
            queue, or a bad ``OTEL_BSP_*`` or ``OTEL_EXPORTER_OTLP_*`` variable.
    """

    def __init__(
        self,
        exporter: DirectOTLPSpanExporter | None = None,
        *,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_millis: int | None = None,
        export_timeout_millis: int | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        chosen = with_arguments(
            sizing(os.environ, ENCODED_BATCH_SIZE),
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
            schedule_delay_millis=schedule_delay_millis,
            export_timeout_millis=export_timeout_millis,
        )
        self._exporter = exporter if exporter is not None else DirectOTLPSpanExporter()
        self._max_queue_size = chosen.max_queue_size
        self._batch_size = chosen.max_export_batch_size
        self._wake_at = self._batch_size - 1  # queued before this span: a batch with it
        self._yield_mark = yield_mark(chosen)
        self._delay = chosen.schedule_delay_millis / 1000.0
        self._timeout = chosen.export_timeout_millis / 1000.0
        self._drops = Drops(
            meter_provider if meter_provider is not None else metrics.get_meter_provider(),
            chosen.max_queue_size,
        )
        self._shutdown = False
        self._start()
        if hasattr(os, "register_at_fork"):
            reinit = weakref.WeakMethod(self._start)

            def after_in_child() -> None:
                if (start := reinit()) is not None:
                    start()

            os.register_at_fork(after_in_child=after_in_child)

    def _start(self) -> None:
        """An empty queue and a worker (at construction, and in a forked child, whose copy of
        the parent's queue the parent exports)."""
        # Each queued span is its bytes, or an opening when its resource or scope is not the
        # previous span's: a run of one provider's spans holds no tuple, nothing tracked.
        self._queue: deque[bytes | _Opening] = deque()
        self._lock = threading.Lock()  # appending and _last
        self._last: _Source | None = None  # of the span queued last
        self._export_lock = threading.Lock()  # taking from the queue and _next
        self._next: _Source | None = None  # of the span taken last
        self._wake = threading.Event()
        self._worker = threading.Thread(
            target=self._work, name="kafkascope-span-export", daemon=True
        )
        self._worker.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the encoded span (a sampled one, while not shut down); never raises."""
        context = span.context
        if context is None or not context.trace_flags.sampled or self._shutdown:
            return
        try:
            encoded = span_field(span, context)
        except Exception as exc:
            _errors.report("span encoding", exc)
            return
        resource = span.resource
        scope = span.instrumentation_scope
        queue = self._queue
        with self._lock:
            waiting = len(queue)
            full = waiting >= self._max_queue_size
            if not full:
                last = self._last
                if last is not None and last[0] is resource and last[1] is scope:
                    queue.append(encoded)
                else:
                    self._last = (resource, scope)
                    queue.append((resource, scope, encoded))
        if full:
            self._drops.add()
        elif waiting >= self._wake_at:
            if not self._wake.is_set():
                self._wake.set()
            if waiting >= self._yield_mark:
                time.sleep(0)  # the export thread, waiting for the interpreter, may take it

    def _work(self) -> None:
        while not self._shutdown:
            woken = self._wake.wait(self._delay)
            # Cleared before exporting: a batch that fills after the export's last look at the
            # queue wakes the next round at once instead of waiting out the delay.
            self._wake.clear()
            if self._shutdown:
                break
            # Woken: whole batches only; the delay passed: at least one, however small.
            self._export(everything=False, at_least_one=not woken)
        self._export(everything=True, at_least_one=True)

    def _export(self, *, everything: bool, at_least_one: bool) -> None:
        with self._export_lock:
            first = True
            while True:
                waiting = len(self._queue)
                if not waiting:
                    return
                if waiting < self._batch_size and not everything and not (first and at_least_one):
                    return
                first = False
                count = min(waiting, self._batch_size)
                try:
                    runs = self._take(count)
                    with suppress_instrumentation():  # the transport's calls make no spans
                        self._exporter.export_runs(runs, count)
                except Exception as exc:  # the worker must live on
                    _errors.report("span export", exc)

    def _take(self, count: int) -> list[Run]:
        """The next ``count`` queued spans, in runs of one resource and scope."""
        runs: list[Run] = []
        popleft = self._queue.popleft
        source = self._next
        fields: list[bytes] | None = None
        for _ in range(count):
            item = popleft()
            if isinstance(item, tuple):
                resource, scope, encoded = item
                source = (resource, scope)
                fields = [encoded]
                runs.append((resource, scope, fields))
            elif fields is not None:
                fields.append(item)
            else:
                # A batch that starts inside the previous batch's last run.
                assert source is not None  # the queue's first span is always an opening
                fields = [item]
                runs.append((source[0], source[1], fields))
        self._next = source
        return runs

    def shutdown(self) -> None:
        """Export what is queued (waiting at most the export timeout), stop the worker, then
        shut the exporter down (an export still retrying gives up)."""
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._worker.join(self._timeout)
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every span queued, in this thread; False once shut down."""
        if self._shutdown:
            return False
        self._export(everything=True, at_least_one=True)
        return True


def span_processor(
    exporter: SpanExporter, env: Mapping[str, str], meter_provider: MeterProvider
) -> SpanProcessor:
    """``configure()``'s span processor for ``exporter``: :class:`EncodingSpanProcessor` for the
    direct exporter, a :class:`~kafkascope._setup.span_queue.CountingSpanProcessor` for any
    other; either sized by the ``OTEL_BSP_*`` variables of ``env`` (the defaults otherwise) and
    counting its drops in ``meter_provider``."""
    if isinstance(exporter, DirectOTLPSpanExporter):
        chosen = sizing(env, ENCODED_BATCH_SIZE)
        return EncodingSpanProcessor(
            exporter,
            max_queue_size=chosen.max_queue_size,
            max_export_batch_size=chosen.max_export_batch_size,
            schedule_delay_millis=chosen.schedule_delay_millis,
            export_timeout_millis=chosen.export_timeout_millis,
            meter_provider=meter_provider,
        )
    return CountingSpanProcessor(exporter, sizing(env), meter_provider)
