"""Cost per message of kafkascope's consume side, side by side in one run.

In-memory records (CPU cost, ns/message and ratio to a bare handler):
  bare handler; the same tracing written by hand with the raw SDK (extract, CONSUMER span with
  the same attributes and link, made current, ended); @traced_handler tracing only; with
  tracing + metrics + log correlation; the same unsampled; the batch handler (per message); and
  contrib's opentelemetry-instrumentation-kafka-python consumer wrapper on the same records.
Peak RSS growth over --memory-messages with full instrumentation.
With --broker: throughput on a real Kafka broker, uninstrumented vs kafkascope vs contrib.

Run: .venv/bin/python -m benchmarks.bench_handlers [--messages N] [--broker]
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import Link, SpanKind

from kafkascope import MessageLogFilter, inject_headers, traced_batch_handler, traced_handler
from kafkascope import _semconv as sc
from kafkascope._carrier import GETTER

Handler = Callable[[Any], Any]


class DiscardingExporter(SpanExporter):
    """Accepts spans and drops them: export cost without a network or growing memory."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def tracer_provider(*, sampled: bool = True) -> TracerProvider:
    """A provider batching to a discarding exporter, as a service would to OTLP."""
    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(
        BatchSpanProcessor(DiscardingExporter(), max_queue_size=100_000, schedule_delay_millis=200)
    )
    return provider


def records(count: int, topic: str = "orders") -> list[Any]:
    """kafka-python ``ConsumerRecord``s as a producer in another service would have sent them."""
    producer = tracer_provider().get_tracer("producer")
    out = []
    now_ms = int(time.time() * 1000)
    for offset in range(count):
        with producer.start_as_current_span("send orders", kind=SpanKind.PRODUCER):
            headers = inject_headers([("content-type", b"application/json")])
        out.append(
            ConsumerRecord(
                topic=topic,
                partition=0,
                leader_epoch=0,
                offset=offset,
                timestamp=now_ms,
                timestamp_type=0,
                key=b"k",
                value=b"{}",
                headers=headers,
                checksum=None,
                serialized_key_size=1,
                serialized_value_size=2,
                serialized_header_size=-1,
            )
        )
    return out


def bare(record: Any) -> None:
    """The handler under test does nothing, so only instrumentation is measured."""


def raw_sdk(provider: TracerProvider) -> Handler:
    """The tracing a careful user writes by hand: the floor of any span-per-message design."""
    tracer = provider.get_tracer("raw")

    def handle(record: Any) -> None:
        ctx = propagate.extract(record.headers, getter=GETTER)
        producer = trace.get_current_span(ctx).get_span_context()
        span = tracer.start_span(
            f"process {record.topic}",
            context=ctx,
            kind=SpanKind.CONSUMER,
            attributes={
                sc.MESSAGING_SYSTEM: sc.KAFKA,
                sc.MESSAGING_OPERATION_NAME: "process",
                sc.MESSAGING_OPERATION_TYPE: "process",
                sc.MESSAGING_DESTINATION_NAME: record.topic,
                sc.MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
                sc.MESSAGING_KAFKA_OFFSET: record.offset,
                sc.MESSAGING_CONSUMER_GROUP_NAME: "bench",
                sc.MESSAGING_KAFKA_MESSAGE_KEY: record.key.decode(),
            },
            links=[Link(producer)] if producer.is_valid else None,
        )
        token = otel_context.attach(trace.set_span_in_context(span, ctx))
        try:
            bare(record)
        finally:
            otel_context.detach(token)
            span.end()

    return handle


def contrib_consumer(provider: TracerProvider) -> Handler:
    """contrib's per-record path: the wrapper it puts around ``KafkaConsumer.__next__``."""
    from opentelemetry.instrumentation.kafka.utils import _wrap_next

    wrapped = _wrap_next(provider.get_tracer("contrib"), None)

    class Instance:
        def __init__(self) -> None:
            self.config = {"bootstrap_servers": ["127.0.0.1:9092"]}

    instance = Instance()

    def handle(record: Any) -> None:
        bare(wrapped(lambda: record, instance, (), {}))

    return handle


def time_per_message(handle: Handler, batch: list[Any]) -> float:
    """Nanoseconds per message of one pass over ``batch``."""
    gc.collect()
    start = time.perf_counter_ns()
    for record in batch:
        handle(record)
    return (time.perf_counter_ns() - start) / len(batch)


def time_batches(handle: Handler, batch: list[Any], size: int) -> float:
    """Nanoseconds per message when ``batch`` is handled ``size`` records at a time."""
    chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
    gc.collect()
    start = time.perf_counter_ns()
    for chunk in chunks:
        handle(chunk)
    return (time.perf_counter_ns() - start) / len(batch)


def cpu_variants() -> dict[str, Callable[[list[Any]], float]]:
    """Each variant, ready to time a pass over a list of records."""
    sampled = tracer_provider()
    unsampled = tracer_provider(sampled=False)
    metered = MeterProvider(metric_readers=[InMemoryMetricReader()])
    no_metrics = NoOpMeterProvider()
    log_handler = LoggingHandler(logger_provider=LoggerProvider())
    log_handler.addFilter(MessageLogFilter(trace_ids=False))
    logging.getLogger("bench").addHandler(log_handler)

    tracing_only = traced_handler(
        group="bench", tracer_provider=sampled, meter_provider=no_metrics
    )(bare)
    tracing_unsampled = traced_handler(
        group="bench", tracer_provider=unsampled, meter_provider=no_metrics
    )(bare)
    full = traced_handler(group="bench", tracer_provider=sampled, meter_provider=metered)(bare)
    full_unsampled = traced_handler(
        group="bench", tracer_provider=unsampled, meter_provider=metered
    )(bare)
    batch = traced_batch_handler(group="bench", tracer_provider=sampled, meter_provider=metered)(
        bare
    )
    raw = raw_sdk(sampled)
    contrib = contrib_consumer(sampled)
    return {
        "bare handler": lambda rs: time_per_message(bare, rs),
        "raw SDK span (hand-written)": lambda rs: time_per_message(raw, rs),
        "@traced_handler, tracing only": lambda rs: time_per_message(tracing_only, rs),
        "  same, not sampled": lambda rs: time_per_message(tracing_unsampled, rs),
        "@traced_handler, traces+metrics+logs": lambda rs: time_per_message(full, rs),
        "  same, not sampled ": lambda rs: time_per_message(full_unsampled, rs),
        "@traced_batch_handler (100/batch)": lambda rs: time_batches(batch, rs, 100),
        "contrib kafka-python consumer": lambda rs: time_per_message(contrib, rs),
    }


def rss_growth_mb(count: int) -> tuple[float, float]:
    """(peak RSS before, growth) in MB while handling ``count`` messages fully instrumented."""
    provider = tracer_provider()
    metered = MeterProvider(metric_readers=[InMemoryMetricReader()])
    handle = traced_handler(group="bench", tracer_provider=provider, meter_provider=metered)(bare)
    warm = records(2_000)
    for record in warm:
        handle(record)
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    template = records(1_000)
    for i in range(count):
        handle(template[i % len(template)])
    provider.force_flush()
    gc.collect()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return before, after - before


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000, help="records per pass")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes per variant")
    parser.add_argument("--memory-messages", type=int, default=100_000)
    parser.add_argument("--broker", action="store_true", help="also measure on a real broker")
    args = parser.parse_args(argv)

    batch = records(args.messages)
    variants = cpu_variants()
    results: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up pass
        run(batch[:2_000])
    for _ in range(args.rounds):
        for name, run in variants.items():
            results[name].append(run(batch))
    medians = {name: statistics.median(values) for name, values in results.items()}
    base = medians["bare handler"]
    raw = medians["raw SDK span (hand-written)"]
    print(f"CPU cost per message, {args.messages} in-memory records, median of {args.rounds}")
    print(f"{'variant':40} {'ns/msg':>10} {'x bare':>9} {'x raw SDK':>10}")
    for name, value in medians.items():
        print(f"{name:40} {value:10.0f} {value / base:9.1f} {value / raw:10.2f}")
    full = medians["@traced_handler, traces+metrics+logs"]
    print()
    print("targets (ratios from this run):")
    checks = [
        ("tracing only / raw SDK <= 1.1", medians["@traced_handler, tracing only"] / raw, 1.1),
        ("traces+metrics+logs / raw SDK <= 1.5", full / raw, 1.5),
        (
            "unsampled / sampled (tracing) <= 0.25",
            medians["  same, not sampled"] / medians["@traced_handler, tracing only"],
            0.25,
        ),
        ("unsampled / sampled (all signals)", medians["  same, not sampled "] / full, 0.25),
        (
            "batch per message / single <= 0.3",
            medians["@traced_batch_handler (100/batch)"] / full,
            0.3,
        ),
    ]
    for label, ratio, limit in checks:
        print(f"  {label:40} {ratio:6.2f}  {'met' if ratio <= limit else 'MISSED'}")
    before, growth = rss_growth_mb(args.memory_messages)
    print(
        f"  RSS growth over {args.memory_messages} messages: {growth:.1f} MB "
        f"(from {before:.0f} MB)  {'met' if growth < 10 else 'MISSED'}"
    )
    if args.broker:
        from benchmarks.bench_broker import run_broker_benchmark

        run_broker_benchmark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
