"""What the benchmarks share: providers that export nowhere, records and a kafka-python producer
that look like production, interleaved timing, target lines.

Every comparison is measured side by side in one process: each round times one pass of every
variant, in an order rotated from round to round, and the median pass of each variant is
compared. Ratios are of the instrumentation's own cost (a variant's time minus the bare
baseline's) unless a line says otherwise.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord
from kafka.future import Future
from kafka.producer.future import RecordMetadata
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import SpanKind

Pass = Callable[[], float]
"""Times one pass over the benchmark's records; returns nanoseconds per message."""


class DiscardingExporter(SpanExporter):
    """Accepts spans and drops them: export cost without a network or growing memory."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def tracer_provider(
    *, sampled: bool = True, exporter: SpanExporter | None = None
) -> TracerProvider:
    """A provider batching to ``exporter`` (default: a discarding one), as a service would to
    OTLP."""
    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter or DiscardingExporter(), max_queue_size=100_000, schedule_delay_millis=200
        )
    )
    return provider


PARTITIONS = 12


def records(count: int) -> list[Any]:
    """kafka-python ``ConsumerRecord``s as producers in other services would have sent them:
    two topics, twelve partitions, a distinct key and request id per record, extra headers."""
    # Imported here: benchmarks.instructions drives children that import another checkout's
    # kafkascope, and must import none itself.
    from kafkascope import inject_headers

    producer = TracerProvider().get_tracer("producer")  # sampled, exported nowhere
    out = []
    now_ms = int(time.time() * 1000)
    for offset in range(count):
        topic = "orders" if offset % 3 else "payments"
        with producer.start_as_current_span(f"send {topic}", kind=SpanKind.PRODUCER):
            headers = inject_headers(
                [
                    ("content-type", b"application/json"),
                    ("x-request-id", f"req-{offset:08d}".encode()),
                    ("x-source-service", b"checkout"),
                ]
            )
        headers.append(("x-schema-version", b"3"))
        key = f"customer-{offset:07d}".encode()
        out.append(
            ConsumerRecord(
                topic=topic,
                partition=offset % PARTITIONS,
                leader_epoch=0,
                offset=offset // PARTITIONS,
                timestamp=now_ms - 5,
                timestamp_type=0,
                key=key,
                value=b'{"amount": 42.5}',
                headers=headers,
                checksum=None,
                serialized_key_size=len(key),
                serialized_value_size=16,
                serialized_header_size=-1,
            )
        )
    return out


Message = tuple[str, bytes, bytes, list[tuple[str, bytes]], int | None]
"""What a send is given: (topic, value, key, headers, partition)."""


def messages(count: int) -> list[Message]:
    """(topic, value, key, headers, partition): a distinct key each, a few headers."""
    out: list[Message] = []
    for i in range(count):
        headers = [("content-type", b"application/json"), ("x-request-id", b"req-%08d" % i)]
        out.append(
            (
                "orders" if i % 3 else "payments",
                b'{"amount": 42.5}',
                b"customer-%07d" % i,
                headers,
                i % 12 if i % 3 == 0 else None,
            )
        )
    return out


class SentFuture(Future):  # type: ignore[misc]
    """kafka-python's future with the part of ``FutureRecordMetadata`` contrib reads."""

    __slots__ = ("_produce_future",)

    def __init__(self, topic: str, partition: int) -> None:
        super().__init__()
        self._produce_future = SimpleNamespace(topic_partition=(topic, partition))


class KafkaPythonSend:
    """``KafkaProducer.send`` without I/O: a real kafka-python future, acknowledged at once."""

    def __init__(self) -> None:
        self.config = {"bootstrap_servers": ["kafka-1.internal:9092"]}

    def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> Future:
        return SentFuture(topic, partition if partition is not None else 0)


def ack(future: Future, topic: str) -> None:
    """Resolve a send's ``future`` as the broker's acknowledgement would."""
    future.success(RecordMetadata(topic, 0, None, 1, 0, None, 1, 1, 0))


def bare(record: Any) -> None:
    """The handler under test does nothing, so only instrumentation is measured."""


def per_message(handle: Callable[[Any], Any], records: Sequence[Any]) -> float:
    """Nanoseconds per message of one pass of ``handle`` over ``records``."""
    gc.collect()
    start = time.perf_counter_ns()
    for record in records:
        handle(record)
    return (time.perf_counter_ns() - start) / len(records)


def interleaved(variants: Mapping[str, Pass], rounds: int) -> dict[str, float]:
    """The median ns/message of each variant over ``rounds`` interleaved passes (after one
    warm-up pass each); the order of the variants is rotated every round."""
    names = list(variants)
    for name in names:
        variants[name]()
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
    return {name: statistics.median(values) for name, values in results.items()}


def print_table(title: str, medians: Mapping[str, float], base: str) -> None:
    """One row per variant: ns/message and the instrumentation's cost above ``base``."""
    print(title)
    print(f"{'variant':52} {'ns/msg':>9} {'cost ns':>9}")
    for name, value in medians.items():
        print(f"{name:52} {value:9.0f} {value - medians[base]:9.0f}")


def target_line(label: str, ratio: float, limit: float, *, at_least: bool = False) -> str:
    """``label  ratio  target <= limit  MET|MISSED`` (``>=`` with ``at_least``)."""
    met = ratio >= limit if at_least else ratio <= limit
    sign = ">=" if at_least else "<="
    return f"  {label:58} {ratio:6.2f}  target {sign} {limit:<5} {'MET' if met else 'MISSED'}"


def cost_ratio(medians: Mapping[str, float], variant: str, reference: str, base: str) -> float:
    """(variant - base) / (reference - base): the ratio of the instrumentation's costs."""
    return (medians[variant] - medians[base]) / max(medians[reference] - medians[base], 1e-9)


def print_targets(lines: Iterable[str]) -> None:
    """The targets block, one line per target."""
    print("targets (ratios from this run):")
    for line in lines:
        print(line)


def passes(
    handles: Mapping[str, Callable[[Any], Any]], make_records: Callable[[], Sequence[Any]]
) -> dict[str, Pass]:
    """One :data:`Pass` per handle, each over a fresh ``make_records()``."""

    def one(handle: Callable[[Any], Any]) -> Pass:
        return lambda: per_message(handle, make_records())

    return {name: one(handle) for name, handle in handles.items()}
