"""Requests within the receiver's limit, and the batch in front of the direct exporter.

A batch whose request would exceed 4 MiB goes as several requests: the recording gRPC server
keeps gRPC's default limit (4 MiB), as the Collector's receiver does, and refuses anything
larger with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from itertools import chain

import grpc
from devstack.wait import wait_until
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import DirectOTLPSpanExporter
from kafkascope._setup.otlp.encoder import Run
from kafkascope._setup.otlp.exporter import MAX_REQUEST_BYTES, _runs_halves
from kafkascope._setup.otlp.processor import EncodingSpanProcessor, span_processor
from tests.unit.setup.otlp.conftest import Receiver

HOUR_MS = 3_600_000


def _large_spans(count: int, size: int) -> list[ReadableSpan]:
    """``count`` spans of two resources, taking turns in runs of three, each carrying ``size``
    bytes in an attribute."""
    seen = InMemorySpanExporter()
    providers = []
    for service in ("orders", "billing"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(seen))
        providers.append(provider)
    for n in range(count):
        tracer = providers[n // 3 % 2].get_tracer("kafkascope.test")
        with tracer.start_as_current_span(f"process orders {n}") as span:
            span.set_attribute("payload", "x" * size)
    return list(seen.get_finished_spans())


def _span_counts(receiver: Receiver) -> list[int]:
    counts = []
    for request in receiver.requests:
        decoded = ExportTraceServiceRequest.FromString(request.body)
        counts.append(
            sum(len(scope.spans) for rs in decoded.resource_spans for scope in rs.scope_spans)
        )
    return counts


def _assert_sent_as_the_sdks_bytes_in_order(receiver: Receiver, spans: list[ReadableSpan]) -> None:
    """Each request carries the next spans, as the SDK encoder's bytes for them alone."""
    start = 0
    for request, count in zip(receiver.requests, _span_counts(receiver), strict=True):
        assert len(request.body) <= MAX_REQUEST_BYTES
        assert request.body == encode_spans(spans[start : start + count]).SerializeToString()
        start += count
    assert start == len(spans)


def test_a_batch_over_the_limit_goes_as_several_requests_within_it(grpc_receiver):
    spans = _large_spans(24, 300_000)  # about 7.2 MB in one request
    exporter = DirectOTLPSpanExporter(endpoint=grpc_receiver.url, timeout=3)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(grpc_receiver.requests) > 1
    _assert_sent_as_the_sdks_bytes_in_order(grpc_receiver, spans)


def test_the_processors_queued_runs_are_split_as_well(grpc_receiver):
    spans = _large_spans(30, 250_000)
    exporter = DirectOTLPSpanExporter(endpoint=grpc_receiver.url, timeout=3)
    processor = EncodingSpanProcessor(
        exporter, schedule_delay_millis=HOUR_MS, meter_provider=MeterProvider()
    )
    for span in spans:
        processor.on_end(span)
    assert processor.force_flush()
    assert len(grpc_receiver.requests) > 1
    _assert_sent_as_the_sdks_bytes_in_order(grpc_receiver, spans)
    processor.shutdown()


def test_a_batch_within_the_limit_goes_as_one_request(grpc_receiver):
    spans = _large_spans(12, 300_000)  # about 3.6 MB
    exporter = DirectOTLPSpanExporter(endpoint=grpc_receiver.url)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert _span_counts(grpc_receiver) == [12]


def test_a_refused_half_fails_the_export(grpc_receiver):
    grpc_receiver.statuses.append(grpc.StatusCode.INVALID_ARGUMENT)  # the first half's
    exporter = DirectOTLPSpanExporter(endpoint=grpc_receiver.url, timeout=3)
    assert exporter.export(_large_spans(24, 300_000)) is SpanExportResult.FAILURE
    assert _span_counts(grpc_receiver) == [12, 12]  # the second half is still sent


@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8))
def test_halves_of_runs_keep_every_span_in_order(lengths: list[int]) -> None:
    resource = Resource.create({})
    runs: list[Run] = []
    n = 0
    for length in lengths:
        runs.append((resource, None, [b"%d" % (n + i) for i in range(length)]))
        n += length
    first, second = _runs_halves(runs, n // 2)

    def spans_of(part: list[Run] | tuple[Run, ...]) -> list[bytes]:
        return list(chain.from_iterable(fields for _, _, fields in part))

    assert len(spans_of(list(first))) == n // 2
    assert spans_of(list(first)) + spans_of(list(second)) == spans_of(runs)
    assert all(fields for _, _, fields in chain(first, second))


def _first_request_spans(processor: EncodingSpanProcessor, receiver: Receiver, ended: int) -> int:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("kafkascope.test")
    for _ in range(ended):
        with tracer.start_as_current_span("process orders"):
            pass
    wait_until(lambda: receiver.requests or None, 30, "a whole batch sent")
    processor.shutdown()
    return _span_counts(receiver)[0]


def _http_exporter(receiver: Receiver) -> DirectOTLPSpanExporter:
    return DirectOTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", protocol="http/protobuf")


def test_the_encoding_processor_sends_batches_of_4096_by_default(http_receiver):
    processor = EncodingSpanProcessor(
        _http_exporter(http_receiver),
        schedule_delay_millis=HOUR_MS,
        meter_provider=MeterProvider(),
    )
    assert _first_request_spans(processor, http_receiver, 5_000) == 4_096


def test_configures_processor_for_the_direct_exporter_sends_batches_of_4096(http_receiver):
    chosen = span_processor(
        _http_exporter(http_receiver), {"OTEL_BSP_SCHEDULE_DELAY": str(HOUR_MS)}, MeterProvider()
    )
    assert isinstance(chosen, EncodingSpanProcessor)
    assert _first_request_spans(chosen, http_receiver, 5_000) == 4_096


def test_the_batch_size_variable_still_decides_it(http_receiver):
    env = {"OTEL_BSP_SCHEDULE_DELAY": str(HOUR_MS), "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "100"}
    chosen = span_processor(_http_exporter(http_receiver), env, MeterProvider())
    assert isinstance(chosen, EncodingSpanProcessor)
    assert _first_request_spans(chosen, http_receiver, 150) == 100
