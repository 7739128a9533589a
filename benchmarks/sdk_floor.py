"""The public SDK's own price of what kafkascope exports per message: the floor of any design.

Each recipe does only the SDK calls whose output kafkascope exports, with every input prepared
before the clock starts (the ``traceparent`` value already found among the headers, every
attribute dict built), plus the one step no design can skip: parsing that value into the
parent context the sampler is given (kafkascope's direct W3C parse, about half the cost of the
SDK propagator's). What is timed is what the SDK charges, and no implementation on the public
API can export the same telemetry for less. Comparing a floor with a target's reference says
whether the target can be met at all:

- span: start a CONSUMER span with the attributes and link kafkascope gives it, make it
  current, end it;
- all signals: that span, plus the two histogram measurements (processing time, time in queue)
  in the span's context, with the same attribute sets and the SDK's default exemplar filter
  (counters cost no SDK call: they are tallied in process and observed at collection);
- batch: per message, one link of the batch span and one time-in-queue measurement (plus a
  hundredth of the batch's span and duration measurement).
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import messaging_attributes as msg
from opentelemetry.semconv._incubating.metrics.messaging_metrics import MESSAGING_PROCESS_DURATION
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from benchmarks.harness import Pass
from kafkascope import traced_handler

SPAN = "SDK floor: span"
SPAN_UNSAMPLED = "SDK floor: span, not sampled"
ALL_SIGNALS = "SDK floor: span + 2 histogram measurements"
BATCH = "SDK floor: batch, per message"

Prepared = tuple[str, bytes, dict[str, AttributeValue], Any, Any, float]
"""Per record: span name, ``traceparent`` value, span attributes, the two metric attribute sets
and the time in queue."""


TIME_IN_QUEUE = "kafkascope.message.time_in_queue"
"""kafkascope's time-in-queue histogram and span attribute (docs: reference/metrics.md)."""
_CANONICAL = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_FLAGS = [TraceFlags(flags) for flags in range(256)]


def parse_traceparent(value: bytes) -> Context:
    """The parent context of a canonical ``traceparent`` value, parsed in the steps of
    kafkascope's direct W3C extraction (length and pattern check, the two hex ids, the flags),
    with public API only."""
    if len(value) != 55 or _CANONICAL.fullmatch(value) is None:
        raise ValueError(f"not a canonical traceparent: {value!r}")
    span_context = SpanContext(
        int(value[3:35], 16), int(value[36:52], 16), True, _FLAGS[int(value[53:55], 16)]
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


@dataclass(frozen=True)
class Instruments:
    """Histograms configured as kafkascope's two (the same bucket boundaries), on the floor's
    own meter of the benchmark's provider."""

    process_duration: Histogram
    time_in_queue: Histogram


def prepare(
    records: Sequence[Any], meter_provider: MeterProvider, group: str
) -> tuple[list[Prepared], Instruments]:
    """Everything the recipes need per record, as kafkascope exports it: each record goes once
    through a ``traced_handler`` into in-memory exporters; the recipes take its span's name and
    attributes, and its histograms' attribute sets and bucket boundaries, from there."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    handle = traced_handler(
        group=group, tracer_provider=tracer_provider, meter_provider=MeterProvider([reader])
    )(lambda record: None)
    for record in records:
        handle(record)
    points: dict[str, dict[str, HistogramDataPoint]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, HistogramDataPoint) and point.attributes:
                        topic = str(point.attributes[msg.MESSAGING_DESTINATION_NAME])
                        points.setdefault(metric.name, {})[topic] = point
    durations, waits = points[MESSAGING_PROCESS_DURATION], points[TIME_IN_QUEUE]
    meter = meter_provider.get_meter("sdk-floor")
    instruments = Instruments(
        meter.create_histogram(
            MESSAGING_PROCESS_DURATION,
            unit="s",
            explicit_bucket_boundaries_advisory=list(
                next(iter(durations.values())).explicit_bounds
            ),
        ),
        meter.create_histogram(
            TIME_IN_QUEUE,
            unit="s",
            explicit_bucket_boundaries_advisory=list(next(iter(waits.values())).explicit_bounds),
        ),
    )
    now_ms = time.time() * 1000.0
    out: list[Prepared] = []
    for record, span in zip(records, spans.get_finished_spans(), strict=True):
        traceparent = next(value for name, value in record.headers if name == "traceparent")
        attrs: dict[str, AttributeValue] = dict(span.attributes or {})
        waited = max(0.0, now_ms - record.timestamp) / 1000.0
        attrs[TIME_IN_QUEUE] = waited
        out.append(
            (
                span.name,
                traceparent,
                attrs,
                dict(durations[record.topic].attributes or {}),
                dict(waits[record.topic].attributes or {}),
                waited,
            )
        )
    tracer_provider.shutdown()
    return out, instruments


def _span_pass(provider: TracerProvider, prepared: Sequence[Prepared]) -> Pass:
    tracer = provider.get_tracer("floor")

    def run() -> float:
        gc.collect()
        start = time.perf_counter_ns()
        for name, traceparent, attrs, _, _, _ in prepared:
            parent = parse_traceparent(traceparent)
            links = [Link(trace.get_current_span(parent).get_span_context())]
            span = tracer.start_span(
                name, context=parent, kind=SpanKind.CONSUMER, attributes=attrs, links=links
            )
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            otel_context.detach(token)
            span.end()
        return (time.perf_counter_ns() - start) / len(prepared)

    return run


def _all_signals_pass(
    provider: TracerProvider, instruments: Instruments, prepared: Sequence[Prepared]
) -> Pass:
    tracer = provider.get_tracer("floor")
    duration, in_queue = instruments.process_duration, instruments.time_in_queue

    def run() -> float:
        gc.collect()
        start = time.perf_counter_ns()
        for name, traceparent, attrs, ok, waited_attrs, waited in prepared:
            parent = parse_traceparent(traceparent)
            links = [Link(trace.get_current_span(parent).get_span_context())]
            span = tracer.start_span(
                name, context=parent, kind=SpanKind.CONSUMER, attributes=attrs, links=links
            )
            context = trace.set_span_in_context(span, parent)
            token = otel_context.attach(context)
            otel_context.detach(token)
            span.end()
            duration.record(0.0001, ok, context)
            in_queue.record(waited, waited_attrs, context)
        return (time.perf_counter_ns() - start) / len(prepared)

    return run


def _batch_pass(
    provider: TracerProvider,
    instruments: Instruments,
    prepared: Sequence[Prepared],
    size: int,
) -> Pass:
    tracer = provider.get_tracer("floor")
    duration, in_queue = instruments.process_duration, instruments.time_in_queue
    batches = []
    for index in range(0, len(prepared), size):
        chunk = prepared[index : index + size]
        links = [
            (
                traceparent,
                {
                    msg.MESSAGING_DESTINATION_NAME: str(attrs[msg.MESSAGING_DESTINATION_NAME]),
                    msg.MESSAGING_DESTINATION_PARTITION_ID: str(
                        attrs[msg.MESSAGING_DESTINATION_PARTITION_ID]
                    ),
                    msg.MESSAGING_KAFKA_OFFSET: attrs[msg.MESSAGING_KAFKA_OFFSET],
                },
            )
            for _, traceparent, attrs, _, _, _ in chunk
        ]
        waits = [(waited_attrs, waited) for *_, waited_attrs, waited in chunk]
        batches.append((links, waits, chunk[0][3]))

    def run() -> float:
        gc.collect()
        start = time.perf_counter_ns()
        for prepared_links, waits, ok in batches:
            links = [
                Link(trace.get_current_span(parse_traceparent(value)).get_span_context(), a)
                for value, a in prepared_links
            ]
            span = tracer.start_span(
                "process", context=Context(), kind=SpanKind.CONSUMER, links=links
            )
            context = trace.set_span_in_context(span)
            token = otel_context.attach(context)
            otel_context.detach(token)
            span.end()
            duration.record(0.0001, ok, context)
            for attrs, waited in waits:
                in_queue.record(waited, attrs, context)
        return (time.perf_counter_ns() - start) / len(prepared)

    return run


def floor_passes(
    records: Sequence[Any],
    *,
    sampled: TracerProvider,
    unsampled: TracerProvider,
    meter_provider: MeterProvider,
    group: str,
    batch_size: int,
) -> dict[str, Pass]:
    """One timed pass per floor recipe over ``records`` (kafka-python ``ConsumerRecord``s)."""
    prepared, instruments = prepare(records, meter_provider, group)
    return {
        SPAN: _span_pass(sampled, prepared),
        SPAN_UNSAMPLED: _span_pass(unsampled, prepared),
        ALL_SIGNALS: _all_signals_pass(sampled, instruments, prepared),
        BATCH: _batch_pass(sampled, instruments, prepared, batch_size),
    }
