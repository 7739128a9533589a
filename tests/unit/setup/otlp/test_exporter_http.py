"""The direct exporter over HTTP/protobuf, against a real recording server on loopback."""

from __future__ import annotations

import gzip
import threading

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SpanExportResult

from kafkascope import DirectOTLPSpanExporter

from .conftest import Receiver


def _http(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)


def test_spans_are_posted_to_v1_traces_as_the_sdk_encoders_bytes(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    exporter = DirectOTLPSpanExporter()
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    [request] = http_receiver.requests
    assert request.path == "/v1/traces"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.body == encode_spans(spans).SerializeToString()


def test_the_traces_endpoint_variable_is_used_as_is(monkeypatch, http_receiver, spans):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", http_receiver.url + "/custom/path")
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS
    assert [r.path for r in http_receiver.requests] == ["/custom/path"]


def test_headers_come_from_the_headers_variable(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Api-Key=secret,x-team=a%20b")
    DirectOTLPSpanExporter().export(spans)
    headers = http_receiver.requests[0].headers
    assert (headers["api-key"], headers["x-team"]) == ("secret", "a b")


def test_the_traces_headers_variable_wins_over_the_general_one(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=general")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=traces")
    DirectOTLPSpanExporter().export(spans)
    assert http_receiver.requests[0].headers["api-key"] == "traces"


def test_gzip_compression_sends_gzipped_bytes(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    DirectOTLPSpanExporter().export(spans)
    [request] = http_receiver.requests
    assert request.headers["content-encoding"] == "gzip"
    assert gzip.decompress(request.body) == encode_spans(spans).SerializeToString()


def test_a_503_is_retried_then_succeeds(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    http_receiver.statuses.append(503)
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS
    assert len(http_receiver.requests) == 2
    assert http_receiver.requests[0].body == http_receiver.requests[1].body


def test_a_400_is_not_retried(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    http_receiver.statuses.append(400)
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.FAILURE
    assert len(http_receiver.requests) == 1


def test_shutdown_ends_an_export_waiting_to_retry(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "600")
    http_receiver.statuses.extend([503] * 6)
    exporter = DirectOTLPSpanExporter()
    results: list[SpanExportResult] = []
    worker = threading.Thread(target=lambda: results.append(exporter.export(spans)))
    worker.start()
    assert http_receiver.arrived.wait(30)
    exporter.shutdown()
    worker.join(30)  # a safety bound, not a measurement: the wait for a retry ends at once
    assert results == [SpanExportResult.FAILURE]
    assert len(http_receiver.requests) == 1


def test_after_shutdown_export_fails_without_sending(monkeypatch, http_receiver, spans):
    _http(monkeypatch, http_receiver)
    exporter = DirectOTLPSpanExporter()
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert http_receiver.requests == []


def test_tls_with_the_certificate_and_client_key_variables(
    monkeypatch, mtls_receiver, certificate, spans
):
    cert, key = certificate
    _http(monkeypatch, mtls_receiver)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(cert))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", str(key))
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.SUCCESS
    [request] = mtls_receiver.requests
    assert request.client_certificate
    assert request.body == encode_spans(spans).SerializeToString()


def test_tls_without_the_servers_certificate_fails(monkeypatch, mtls_receiver, spans):
    _http(monkeypatch, mtls_receiver)
    assert DirectOTLPSpanExporter().export(spans) is SpanExportResult.FAILURE
    assert mtls_receiver.requests == []
