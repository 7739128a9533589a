"""kafkascope never breaks the application: a failing exporter reaches neither handler nor send."""

from __future__ import annotations

from collections.abc import Sequence

from kafka.future import Future
from kafka.producer.future import RecordMetadata
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from kafkascope import TracedProducer, traced_handler
from kafkascope.testing import make_record


class ExplodingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        raise ConnectionError("collector unreachable")

    def shutdown(self) -> None:
        return None


def test_an_exporter_that_raises_never_reaches_the_handler_or_the_send():
    exporter = ExplodingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])

    @traced_handler(tracer_provider=provider, meter_provider=meters)
    def handle(rec):
        return rec.offset

    assert [handle(make_record("orders", offset=i)) for i in range(3)] == [0, 1, 2]

    class Producer:
        def send(self, topic, **kwargs):
            future = Future()
            future.success(RecordMetadata(topic, 0, None, 1, 0, None, 1, 1, 0))
            return future

    future = TracedProducer(Producer(), tracer_provider=provider).send("orders", b"x")
    assert future.value.offset == 1
    assert exporter.calls == 4
