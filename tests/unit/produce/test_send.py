from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from kafkascope import TracedProducer
from kafkascope._core import semconv as sc
from tests.unit._producers import RecordingProducer, ack


class SeeingSampler(Sampler):
    """Samples everything and keeps the attributes each decision was given."""

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        self.seen.append(dict(attributes or {}))
        return ALWAYS_ON.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "SeeingSampler"


def _producer(sampler: Sampler, exporter: InMemorySpanExporter) -> TracedProducer:
    tracer_provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    raw = RecordingProducer()
    raw._metadata = SimpleNamespace(cluster_id="cluster-7")  # type: ignore[attr-defined]
    return TracedProducer(
        raw,
        tracer_provider=tracer_provider,
        meter_provider=MeterProvider(shutdown_on_exit=False),
    )


def test_a_sampler_sees_the_sampling_relevant_attributes_only() -> None:
    sampler = SeeingSampler()
    producer = _producer(sampler, InMemorySpanExporter())
    ack(producer.send("orders", b"v", key=b"customer-1"))
    (seen,) = sampler.seen
    # The key and cluster id are set once the span is known to record (not read otherwise).
    assert seen[sc.MESSAGING_DESTINATION_NAME] == "orders"
    assert sc.MESSAGING_KAFKA_MESSAGE_KEY not in seen
    assert sc.MESSAGING_KAFKA_CLUSTER_ID not in seen


def test_an_acknowledged_send_span_carries_key_cluster_partition_and_offset() -> None:
    exporter = InMemorySpanExporter()
    producer = _producer(ALWAYS_ON, exporter)
    ack(producer.send("orders", b"v", key=b"customer-1"), partition=2, offset=17)
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes[sc.MESSAGING_KAFKA_MESSAGE_KEY] == "customer-1"
    assert attributes[sc.MESSAGING_KAFKA_CLUSTER_ID] == "cluster-7"
    assert attributes[sc.MESSAGING_DESTINATION_PARTITION_ID] == "2"
    assert attributes[sc.MESSAGING_KAFKA_OFFSET] == 17
