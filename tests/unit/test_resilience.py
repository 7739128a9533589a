"""kafkascope never breaks the application: failing exporters, logging coexistence."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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


LOGGING_SCRIPT = textwrap.dedent(
    """
    import logging
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    import kafkascope

    LoggingInstrumentor().instrument()
    (theirs,) = logging.getLogger().handlers
    kafkascope.configure("svc", logs=True)
    kafkascope.configure("svc", logs=True)
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, LoggingHandler)]
    filters = [f for h in handlers for f in h.filters if isinstance(f, kafkascope.MessageLogFilter)]
    print(len(handlers), len(filters), handlers[0] is theirs)
    """
)


def test_no_duplicate_log_handlers_beside_the_logging_instrumentation():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    done = subprocess.run(
        [sys.executable, "-c", LOGGING_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "True"]
