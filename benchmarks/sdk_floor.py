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
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import AttributeValue

from benchmarks.harness import Pass
from kafkascope._consume.options import ProcessOptions
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._propagation.w3c import extract_w3c

SPAN = "SDK floor: span"
SPAN_UNSAMPLED = "SDK floor: span, not sampled"
ALL_SIGNALS = "SDK floor: span + 2 histogram measurements"
BATCH = "SDK floor: batch, per message"

Prepared = tuple[str, bytes, dict[str, AttributeValue], Any, Any, float]
"""Per record: span name, ``traceparent`` value, span attributes, the two metric attribute sets
and the time in queue."""


def prepare(records: Sequence[Any], meter_provider: MeterProvider, group: str) -> list[Prepared]:
    """Everything the recipes need per record, built the way kafkascope builds it."""
    options = ProcessOptions(group=group)
    instruments = _metrics.for_provider(meter_provider)
    now_ms = time.time() * 1000.0
    out: list[Prepared] = []
    for record in records:
        traceparent = next(value for name, value in record.headers if name == "traceparent")
        attrs = dict(options.span_base(record.topic, record.partition))
        waited = max(0.0, now_ms - record.timestamp) / 1000.0
        attrs[sc.MESSAGING_KAFKA_OFFSET] = record.offset
        attrs[sc.MESSAGING_KAFKA_MESSAGE_KEY] = record.key.decode()
        attrs[sc.TIME_IN_QUEUE] = waited
        attrs[sc.TIMESTAMP_TYPE] = "create_time"
        streams = options.streams(instruments, record.topic)
        out.append(
            (
                sc.process_span_name(record.topic),
                traceparent,
                attrs,
                streams.ok[1],
                streams.waited("create_time"),
                waited,
            )
        )
    return out


def _span_pass(provider: TracerProvider, prepared: Sequence[Prepared]) -> Pass:
    tracer = provider.get_tracer("floor")

    def run() -> float:
        gc.collect()
        start = time.perf_counter_ns()
        for name, traceparent, attrs, _, _, _ in prepared:
            parent = extract_w3c(traceparent, None, None)
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
    provider: TracerProvider, meter_provider: MeterProvider, prepared: Sequence[Prepared]
) -> Pass:
    tracer = provider.get_tracer("floor")
    instruments = _metrics.for_provider(meter_provider)
    duration, in_queue = instruments.process_duration, instruments.time_in_queue

    def run() -> float:
        gc.collect()
        start = time.perf_counter_ns()
        for name, traceparent, attrs, ok, waited_attrs, waited in prepared:
            parent = extract_w3c(traceparent, None, None)
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
    meter_provider: MeterProvider,
    prepared: Sequence[Prepared],
    size: int,
) -> Pass:
    tracer = provider.get_tracer("floor")
    instruments = _metrics.for_provider(meter_provider)
    duration, in_queue = instruments.process_duration, instruments.time_in_queue
    batches = []
    for index in range(0, len(prepared), size):
        chunk = prepared[index : index + size]
        links = [
            (
                traceparent,
                {
                    sc.MESSAGING_DESTINATION_NAME: str(attrs[sc.MESSAGING_DESTINATION_NAME]),
                    sc.MESSAGING_DESTINATION_PARTITION_ID: str(
                        attrs[sc.MESSAGING_DESTINATION_PARTITION_ID]
                    ),
                    sc.MESSAGING_KAFKA_OFFSET: attrs[sc.MESSAGING_KAFKA_OFFSET],
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
                Link(trace.get_current_span(extract_w3c(value, None, None)).get_span_context(), a)
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
    prepared = prepare(records, meter_provider, group)
    return {
        SPAN: _span_pass(sampled, prepared),
        SPAN_UNSAMPLED: _span_pass(unsampled, prepared),
        ALL_SIGNALS: _all_signals_pass(sampled, meter_provider, prepared),
        BATCH: _batch_pass(sampled, meter_provider, prepared, batch_size),
    }
