"""Cost per message of kafkascope's consume side, side by side in one run.

In-memory records that look like production (twelve partitions of two topics, a distinct key
and request id per record, a few headers besides ``traceparent``), CPU cost in ns/message:
  bare handler; the same tracing written by hand with the raw SDK (extract, CONSUMER span with
  the same attributes and link, made current, ended); contrib's
  opentelemetry-instrumentation-kafka-python per-record wrapper; @traced_handler tracing only;
  with tracing + metrics + log correlation (with the SDK's default exemplar filter, and with
  exemplars off); the same two unsampled; the batch handler (per message).
Each round times one pass of every variant (rotated order); medians are compared, and ratios
are of the instrumentation's cost (ns above the bare handler). Also: peak RSS growth over
--memory-messages. Only kafkascope's public API is used (the SDK floors included).
With --broker: throughput on a real Kafka broker, uninstrumented vs kafkascope vs contrib.

Run: .venv/bin/python -m benchmarks.bench_handlers [--quick] [--messages N] [--broker]
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv._incubating.attributes import messaging_attributes as msg
from opentelemetry.trace import Link, SpanKind

from benchmarks import sdk_floor
from benchmarks.harness import (
    Pass,
    bare,
    cost_ratio,
    interleaved,
    passes,
    per_message,
    print_table,
    print_targets,
    records,
    target_line,
    tracer_provider,
)
from kafkascope import MessageLogFilter, traced_batch_handler, traced_handler
from kafkascope.testing import pipeline_stamp

__all__ = ["bare", "records", "tracer_provider"]

Handler = Callable[[Any], Any]
BATCH_SIZE = 100

BARE = "bare handler"
RAW = "raw SDK span (hand-written)"
CONTRIB = "contrib kafka-python per-record wrapper"
TRACING = "@traced_handler, tracing only"
TRACING_UNSAMPLED = "@traced_handler, tracing only, not sampled"
FULL = "@traced_handler, traces+metrics+logs"
FULL_NO_EXEMPLARS = "@traced_handler, traces+metrics+logs, exemplars off"
FULL_UNSAMPLED = "@traced_handler, traces+metrics+logs, not sampled"
BATCH = f"@traced_batch_handler ({BATCH_SIZE}/batch), per message"
FULL_STAMPED = "@traced_handler, traces+metrics+logs, pipeline-stamped records"


class _ListGetter(Getter[Any]):
    """What a hand-written recipe uses to read kafka-python's header list."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        for name, value in carrier:
            if name == key and value is not None:
                return [value.decode()]
        return None

    def keys(self, carrier: Any) -> list[str]:
        return [name for name, _ in carrier]


_GETTER = _ListGetter()


def raw_sdk(provider: TracerProvider) -> Handler:
    """The tracing a careful user writes by hand: the floor of any span-per-message design."""
    tracer = provider.get_tracer("raw")

    def handle(record: Any) -> None:
        ctx = propagate.extract(record.headers, getter=_GETTER)
        producer = trace.get_current_span(ctx).get_span_context()
        span = tracer.start_span(
            f"process {record.topic}",
            context=ctx,
            kind=SpanKind.CONSUMER,
            attributes={
                msg.MESSAGING_SYSTEM: "kafka",
                msg.MESSAGING_OPERATION_NAME: "process",
                msg.MESSAGING_OPERATION_TYPE: "process",
                msg.MESSAGING_DESTINATION_NAME: record.topic,
                msg.MESSAGING_DESTINATION_PARTITION_ID: str(record.partition),
                msg.MESSAGING_KAFKA_OFFSET: record.offset,
                msg.MESSAGING_CONSUMER_GROUP_NAME: "bench",
                msg.MESSAGING_KAFKA_MESSAGE_KEY: record.key.decode(),
                "kafkascope.message.time_in_queue": max(0.0, time.time() - record.timestamp / 1e3),
                "kafkascope.message.timestamp_type": "create_time",
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
            self.config = {"bootstrap_servers": ["127.0.0.1:9092"], "group_id": "bench"}

    instance = Instance()

    def handle(record: Any) -> None:
        bare(wrapped(lambda: record, instance, (), {}))

    return handle


def in_batches(handle: Handler, batch: Sequence[Any], size: int) -> float:
    """Nanoseconds per message when ``batch`` is handled ``size`` records at a time."""
    chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
    gc.collect()
    start = time.perf_counter_ns()
    for chunk in chunks:
        handle(chunk)
    return (time.perf_counter_ns() - start) / len(batch)


def metered(*, exemplars: bool = True) -> MeterProvider:
    """An SDK meter provider read in memory; the SDK's default exemplar filter unless off."""
    if exemplars:
        return MeterProvider(metric_readers=[InMemoryMetricReader()])
    return MeterProvider(
        metric_readers=[InMemoryMetricReader()], exemplar_filter=AlwaysOffExemplarFilter()
    )


def cpu_variants(batch: Sequence[Any]) -> dict[str, Pass]:
    """Each variant, ready to time one pass over ``batch``."""
    sampled = tracer_provider()
    unsampled = tracer_provider(sampled=False)
    no_metrics = NoOpMeterProvider()
    log_handler = LoggingHandler(logger_provider=LoggerProvider())
    log_handler.addFilter(MessageLogFilter(trace_ids=False))
    logging.getLogger("bench").addHandler(log_handler)

    def handler(tp: TracerProvider, mp: Any) -> Handler:
        return traced_handler(group="bench", tracer_provider=tp, meter_provider=mp)(bare)

    single = {
        BARE: bare,
        RAW: raw_sdk(sampled),
        CONTRIB: contrib_consumer(sampled),
        TRACING: handler(sampled, no_metrics),
        TRACING_UNSAMPLED: handler(unsampled, no_metrics),
        FULL: handler(sampled, metered()),
        FULL_NO_EXEMPLARS: handler(sampled, metered(exemplars=False)),
        FULL_UNSAMPLED: handler(unsampled, metered()),
    }
    batched = traced_batch_handler(
        group="bench", tracer_provider=sampled, meter_provider=metered()
    )(bare)
    variants = passes(single, lambda: batch)
    variants[BATCH] = lambda: in_batches(batched, batch, BATCH_SIZE)
    # The same records with a pipeline stamp: each also records kafkascope.pipeline.latency.
    stamped = [
        r._replace(headers=[*r.headers, pipeline_stamp(r.timestamp - 20, r.topic)]) for r in batch
    ]
    full_stamped = handler(sampled, metered())
    variants[FULL_STAMPED] = lambda: per_message(full_stamped, stamped)
    variants.update(
        sdk_floor.floor_passes(
            batch,
            sampled=sampled,
            unsampled=unsampled,
            meter_provider=metered(),
            group="bench",
            batch_size=BATCH_SIZE,
        )
    )
    return variants


def rss_growth_mb(count: int) -> tuple[float, float]:
    """(peak RSS before, growth) in MB while handling ``count`` messages fully instrumented."""
    provider = tracer_provider()
    handle = traced_handler(group="bench", tracer_provider=provider, meter_provider=metered())(bare)
    for record in records(2_000):
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


def print_floors(medians: dict[str, float]) -> None:
    """Each target's ratio with kafkascope replaced by the SDK's own floor (sdk_floor): above the
    target, no implementation on the public SDK can meet it."""

    def line(label: str, floor: str, reference: str, limit: float) -> str:
        value = cost_ratio(medians, floor, reference, BARE)
        verdict = "within reach" if value <= limit else "out of reach through the public SDK"
        return f"  {label:58} {value:6.2f}  (target {limit}: {verdict})"

    print("SDK floors (the same SDK calls with every input prepared: no design goes lower):")
    for text in (
        line("all signals floor / contrib per-record wrapper", sdk_floor.ALL_SIGNALS, CONTRIB, 1.2),
        line("span floor / raw SDK recipe", sdk_floor.SPAN, RAW, 1.0),
        line(
            "not sampled span floor / sampled tracing only",
            sdk_floor.SPAN_UNSAMPLED,
            TRACING,
            0.1,
        ),
        line("batch floor per message / single, all signals", sdk_floor.BATCH, FULL, 0.15),
    ):
        print(text)
    print(
        f"  kafkascope above the floor: tracing only "
        f"{medians[TRACING] - medians[sdk_floor.SPAN]:.0f} ns/msg, all signals "
        f"{medians[FULL] - medians[sdk_floor.ALL_SIGNALS]:.0f} ns/msg, not sampled "
        f"{medians[TRACING_UNSAMPLED] - medians[sdk_floor.SPAN_UNSAMPLED]:.0f} ns/msg, batch "
        f"{medians[BATCH] - medians[sdk_floor.BATCH]:.0f} ns/msg"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and print one table and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small run (a smoke test)")
    parser.add_argument("--messages", type=int, default=None, help="records per pass")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved passes per variant")
    parser.add_argument("--memory-messages", type=int, default=None)
    parser.add_argument("--broker", action="store_true", help="also measure on a real broker")
    args = parser.parse_args(argv)
    messages = args.messages or (2_000 if args.quick else 10_000)
    rounds = args.rounds or (3 if args.quick else 9)
    memory_messages = args.memory_messages or (10_000 if args.quick else 100_000)

    batch = records(messages)
    medians = interleaved(cpu_variants(batch), rounds)
    print_table(
        f"CPU cost per message, {messages} in-memory records, median of {rounds} interleaved "
        "rounds",
        medians,
        BARE,
    )

    def ratio(variant: str, reference: str) -> float:
        return cost_ratio(medians, variant, reference, BARE)

    print()
    print_targets(
        [
            target_line("all signals / contrib per-record wrapper", ratio(FULL, CONTRIB), 1.2),
            target_line("tracing only / raw SDK recipe", ratio(TRACING, RAW), 1.0),
            target_line(
                "not sampled / sampled, tracing only", ratio(TRACING_UNSAMPLED, TRACING), 0.1
            ),
            target_line("not sampled / sampled, all signals", ratio(FULL_UNSAMPLED, FULL), 0.5),
            target_line(
                "batch handler per message / single, all signals", ratio(BATCH, FULL), 0.15
            ),
        ]
    )
    print_floors(medians)
    stamp_cost = medians[FULL_STAMPED] - medians[FULL]
    print(
        f"  pipeline latency (stamped records: parse the stamp, one histogram measurement, "
        f"span attribute, context variable): {stamp_cost:.0f} ns/msg, all signals "
        f"{ratio(FULL_STAMPED, FULL):.2f}x with it"
    )
    exemplar_cost = medians[FULL] - medians[FULL_NO_EXEMPLARS]
    print(
        f"  exemplar filter cost (trace_based default vs always_off): {exemplar_cost:.0f} ns/msg, "
        f"all signals {ratio(FULL, FULL_NO_EXEMPLARS):.2f}x with exemplars"
    )
    before, growth = rss_growth_mb(memory_messages)
    print(
        f"  RSS growth over {memory_messages} messages: {growth:.1f} MB (from {before:.0f} MB)"
        f"  target < 10 MB {'MET' if growth < 10 else 'MISSED'}"
    )
    if args.broker:
        from benchmarks.bench_broker import run_broker_benchmark

        run_broker_benchmark()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
