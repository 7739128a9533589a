"""The direct exporter over gRPC, against a real recording gRPC server on loopback."""

from __future__ import annotations

import grpc
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SpanExportResult

from kafkascope import DirectOTLPSpanExporter


def test_spans_are_sent_to_the_trace_service_as_the_sdk_encoders_bytes(
    monkeypatch, grpc_receiver, spans
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", grpc_receiver.url)
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS
    [request] = grpc_receiver.requests
    assert request.body == encode_spans(spans).SerializeToString()


def test_headers_are_sent_as_metadata(monkeypatch, grpc_receiver, spans):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "Api-Key=secret")
    DirectOTLPSpanExporter().export(spans)
    assert grpc_receiver.requests[0].headers["api-key"] == "secret"


def test_unavailable_is_retried_then_succeeds(monkeypatch, grpc_receiver, spans):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_receiver.url)
    grpc_receiver.statuses.append(grpc.StatusCode.UNAVAILABLE)
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS
    assert len(grpc_receiver.requests) == 2


def test_invalid_argument_is_not_retried(monkeypatch, grpc_receiver, spans):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_receiver.url)
    grpc_receiver.statuses.append(grpc.StatusCode.INVALID_ARGUMENT)
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.FAILURE
    assert len(grpc_receiver.requests) == 1


def test_gzip_compression_is_accepted_by_the_server(monkeypatch, grpc_receiver, spans):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", grpc_receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS
    assert grpc_receiver.requests[0].body == encode_spans(spans).SerializeToString()
