"""EncodingSpanProcessor: spans encoded when they end, queued as bytes, sent in batches by a
worker thread, to a real OTLP/HTTP receiver on loopback."""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Sequence

import pytest
from devstack.wait import wait_until
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, TraceFlags

from kafkascope import ConfigurationError, DirectOTLPSpanExporter, configure
from kafkascope._setup.otlp.encoder import Run
from kafkascope._setup.otlp.processor import EncodingSpanProcessor
from tests.unit.setup.otlp.conftest import Receiver

HOUR_MS = 3_600_000


def _processor(
    url: str,
    *,
    queue: int = 10_000,
    batch: int = 1_000,
    delay_ms: int = HOUR_MS,
    exporter: DirectOTLPSpanExporter | None = None,
    meter_provider: MeterProvider | None = None,
) -> EncodingSpanProcessor:
    if exporter is None:
        exporter = DirectOTLPSpanExporter(endpoint=f"{url}/v1/traces", protocol="http/protobuf")
    return EncodingSpanProcessor(
        exporter,
        max_queue_size=queue,
        max_export_batch_size=batch,
        schedule_delay_millis=delay_ms,
        meter_provider=meter_provider or MeterProvider(),
    )


def _providers(
    processor: EncodingSpanProcessor, seen: InMemorySpanExporter
) -> list[TracerProvider]:
    """Two providers (two resources) sharing ``processor``; ``seen`` gets every span too."""
    providers = []
    for service in ("orders", "billing"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(processor)
        provider.add_span_processor(SimpleSpanProcessor(seen))
        providers.append(provider)
    return providers


def _mixed_spans(providers: list[TracerProvider], count: int) -> None:
    """``count`` spans from two resources and two scopes, in runs of varying length."""
    tracers = [provider.get_tracer(name, "1.0") for provider in providers for name in ("a", "b")]
    pattern = [0, 0, 1, 2, 2, 2, 0, 3, 1, 1]
    for n in range(count):
        tracer = tracers[pattern[n % len(pattern)]]
        with tracer.start_as_current_span(f"process orders {n}") as span:
            span.set_attribute("messaging.kafka.offset", n)
            span.add_event("retried", {"attempt": n})
            span.add_link(span.get_span_context(), {"n": n})


def _bodies(receiver: Receiver) -> list[bytes]:
    return [request.body for request in receiver.requests]


def test_a_flush_sends_the_bytes_the_sdks_encoder_makes_of_the_same_spans(http_receiver):
    processor = _processor(http_receiver.url)
    seen = InMemorySpanExporter()
    _mixed_spans(_providers(processor, seen), 25)
    assert processor.force_flush()
    expected = encode_spans(seen.get_finished_spans()).SerializeToString()
    assert _bodies(http_receiver) == [expected]
    processor.shutdown()


def test_batches_that_cut_a_run_in_two_still_name_its_resource_and_scope(http_receiver):
    processor = _processor(http_receiver.url, batch=3)
    seen = InMemorySpanExporter()
    _mixed_spans(_providers(processor, seen), 20)
    assert processor.force_flush()
    finished = list(seen.get_finished_spans())
    expected = [
        encode_spans(finished[start : start + 3]).SerializeToString() for start in range(0, 20, 3)
    ]
    assert _bodies(http_receiver) == expected
    processor.shutdown()


def test_the_queue_keeps_no_span_object_alive(http_receiver):
    processor = _processor(http_receiver.url)  # a batch of 1,000 and an hour's delay: held
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")
    before = _alive_spans()
    for n in range(500):
        with tracer.start_as_current_span("process orders", links=[Link(_context(n))]):
            pass
    assert _alive_spans() == before
    assert processor.force_flush()
    assert _span_count(_bodies(http_receiver)) == 500
    processor.shutdown()


def _alive_spans() -> int:
    gc.collect()
    return sum(isinstance(obj, ReadableSpan) for obj in gc.get_objects())


def _context(n: int) -> SpanContext:
    return SpanContext(n + 1, n + 1, True, TraceFlags(1))


def _span_count(bodies: Sequence[bytes]) -> int:
    total = 0
    for body in bodies:
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                total += len(scope_spans.spans)
    return total


def test_the_worker_sends_a_small_batch_once_the_schedule_delay_passes(http_receiver):
    processor = _processor(http_receiver.url, delay_ms=50)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("kafkascope.test").start_as_current_span("process orders"):
        pass
    wait_until(lambda: http_receiver.requests, 10, "the delayed export")
    assert _span_count(_bodies(http_receiver)) == 1
    processor.shutdown()


def test_the_worker_sends_whole_batches_without_waiting_for_the_delay(http_receiver):
    processor = _processor(http_receiver.url, batch=10)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")
    for _ in range(25):
        with tracer.start_as_current_span("process orders"):
            pass
    wait_until(lambda: len(http_receiver.requests) >= 2, 10, "two whole batches")
    assert [_span_count([body]) for body in _bodies(http_receiver)] == [10, 10]
    processor.shutdown()
    assert _span_count(_bodies(http_receiver)) == 25  # the rest, on shutdown


def test_unsampled_spans_are_not_queued(http_receiver):
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    processor = _processor(http_receiver.url)
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(processor)
    with provider.get_tracer("kafkascope.test").start_as_current_span("process orders"):
        pass
    assert processor.force_flush()
    assert http_receiver.requests == []
    processor.shutdown()


class HeldExporter(DirectOTLPSpanExporter):
    """The direct exporter whose exports wait until released, noting whether instrumentation
    was suppressed while they ran."""

    def __init__(self, url: str) -> None:
        super().__init__(endpoint=f"{url}/v1/traces", protocol="http/protobuf")
        self.release = threading.Event()
        self.instrumented: list[bool] = []

    def export_runs(self, runs: Sequence[Run], count: int) -> SpanExportResult:
        self.instrumented.append(is_instrumentation_enabled())
        self.release.wait()
        return super().export_runs(runs, count)


def _dropped(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    return sum(
        int(point.value)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "kafkascope.spans.dropped"
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    )


def test_a_full_queue_drops_counts_and_warns_once(http_receiver, caplog):
    reader = InMemoryMetricReader()
    exporter = HeldExporter(http_receiver.url)
    processor = _processor(
        http_receiver.url,
        queue=20,
        batch=5,
        exporter=exporter,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")
    with caplog.at_level(logging.INFO):
        for _ in range(200):
            with tracer.start_as_current_span("process orders"):
                pass
    exporter.release.set()
    assert processor.force_flush()
    dropped = _dropped(reader)
    assert dropped > 0
    assert _span_count(_bodies(http_receiver)) + dropped == 200
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "kafkascope.spans.dropped" in warnings[0].getMessage()
    assert exporter.instrumented
    assert not any(exporter.instrumented)
    processor.shutdown()


def test_after_shutdown_spans_are_ignored_and_a_flush_fails(http_receiver):
    processor = _processor(http_receiver.url)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")
    with tracer.start_as_current_span("before"):
        pass
    processor.shutdown()
    with tracer.start_as_current_span("after"):
        pass
    assert not processor.force_flush()
    assert _span_count(_bodies(http_receiver)) == 1


def test_configure_sends_every_span_of_a_tight_loop_through_the_encoding_queue(http_receiver):
    from kafkascope import traced_handler
    from kafkascope.testing import make_record

    telemetry = configure(
        "orders",
        endpoint=http_receiver.url,
        protocol="http/protobuf",
        metrics=False,
        set_global=False,
        handle_sigterm=False,
    )

    @traced_handler(group="billing", tracer_provider=telemetry.tracer_provider)
    def handle(record: object) -> None:
        return None

    record = make_record("orders", key=b"k", offset=7)
    before = _alive_spans()
    for _ in range(3_000):
        handle(record)
    assert _alive_spans() == before  # the SDK's batch processor would hold up to 1,023
    assert telemetry.force_flush()
    assert _span_count(_bodies(http_receiver)) == 3_000
    telemetry.shutdown()


class RecordingExporter(DirectOTLPSpanExporter):
    """The direct exporter, noting how many spans each export sent."""

    def __init__(self, url: str) -> None:
        super().__init__(endpoint=f"{url}/v1/traces", protocol="http/protobuf")
        self.sent: list[int] = []

    def export_runs(self, runs: Sequence[Run], count: int) -> SpanExportResult:
        result = super().export_runs(runs, count)
        self.sent.append(count)
        return result


def test_a_forked_child_exports_its_own_spans_with_a_worker_of_its_own(http_receiver):
    exporter = RecordingExporter(http_receiver.url)
    processor = _processor(http_receiver.url, batch=2, exporter=exporter)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")
    with tracer.start_as_current_span("in the parent"):
        pass  # queued, below a batch: the parent's to export
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for name in ("in the child 1", "in the child 2"):
                with tracer.start_as_current_span(name):
                    pass
            # A whole batch: the child's own worker sends it, without a flush.
            wait_until(lambda: exporter.sent, 10, "the child's export")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    [request] = http_receiver.requests
    [scope_spans] = ExportTraceServiceRequest.FromString(request.body).resource_spans[0].scope_spans
    assert [span.name for span in scope_spans.spans] == ["in the child 1", "in the child 2"]
    assert processor.force_flush()
    assert _span_count(_bodies(http_receiver)[1:]) == 1  # the parent's, once
    processor.shutdown()


def test_on_a_users_own_provider_it_reads_the_exporters_variables(monkeypatch, http_receiver):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{http_receiver.url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    provider = TracerProvider()
    provider.add_span_processor(EncodingSpanProcessor())
    with provider.get_tracer("kafkascope.test").start_as_current_span("process orders"):
        pass
    provider.shutdown()
    assert _span_count(_bodies(http_receiver)) == 1


def test_the_bsp_variables_size_it_and_arguments_win(monkeypatch, http_receiver):
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", str(HOUR_MS))
    exporter = DirectOTLPSpanExporter(
        endpoint=f"{http_receiver.url}/v1/traces", protocol="http/protobuf"
    )
    processor = EncodingSpanProcessor(exporter, max_export_batch_size=3)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for _ in range(7):
        with provider.get_tracer("kafkascope.test").start_as_current_span("process orders"):
            pass
    assert processor.force_flush()
    assert [_span_count([body]) for body in _bodies(http_receiver)] == [3, 3, 1]
    processor.shutdown()


def test_a_bad_size_fails_naming_the_argument(monkeypatch):
    exporter = DirectOTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    with pytest.raises(ConfigurationError, match="max_queue_size=0 is not a positive"):
        EncodingSpanProcessor(exporter, max_queue_size=0)
    with pytest.raises(ConfigurationError, match="max_export_batch_size=50 exceeds the queue"):
        EncodingSpanProcessor(exporter, max_queue_size=10, max_export_batch_size=50)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "soon")
    with pytest.raises(ConfigurationError, match="OTEL_BSP_SCHEDULE_DELAY"):
        EncodingSpanProcessor(exporter)


def test_a_smaller_queue_alone_caps_the_batch(http_receiver):
    exporter = DirectOTLPSpanExporter(
        endpoint=f"{http_receiver.url}/v1/traces", protocol="http/protobuf"
    )
    processor = EncodingSpanProcessor(
        exporter, max_queue_size=4, schedule_delay_millis=HOUR_MS
    )  # the batch of 1,024 by default
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for _ in range(4):
        with provider.get_tracer("kafkascope.test").start_as_current_span("process orders"):
            pass
    wait_until(lambda: http_receiver.requests, 10, "a whole batch of four")
    processor.shutdown()


def test_a_batch_that_fills_during_an_export_is_sent_right_after_it(http_receiver):
    exporter = HeldExporter(http_receiver.url)
    processor = _processor(http_receiver.url, batch=10, exporter=exporter)  # an hour's delay
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")

    def ten() -> None:
        for _ in range(10):
            with tracer.start_as_current_span("process orders"):
                pass

    ten()
    wait_until(lambda: exporter.instrumented, 10, "the first export to start")
    ten()  # while the first batch is being exported
    exporter.release.set()
    wait_until(lambda: len(http_receiver.requests) == 2, 10, "the second batch, without a flush")
    processor.shutdown()
