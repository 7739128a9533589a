"""The direct OTLP span exporter against a real Collector: every span sent over gRPC, and over
HTTP with gzip, is counted by the Collector's own ``otelcol_receiver_accepted_spans``; so is
every span of a batch larger than the receiver takes in one request (4 MiB)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack._process import free_port
from devstack._support import http_get
from devstack.collector import Collector
from devstack.wait import wait_until
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from kafkascope import DirectOTLPSpanExporter, EncodingSpanProcessor, process_span
from kafkascope.testing import make_record

SPANS = 2_000


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A Collector whose traces pipeline goes nowhere reachable: only its receiver counts."""
    workdir: Path = tmp_path_factory.mktemp("collector")
    with Collector.start(workdir, jaeger_otlp_endpoint=f"127.0.0.1:{free_port()}") as running:
        yield running


def _accepted(collector: Collector, transport: str) -> int:
    status, body = http_get(collector.telemetry_metrics_url, timeout=5.0)
    assert status == 200
    pattern = (
        r'^otelcol_receiver_accepted_spans(?:_total)?\{[^}]*transport="' + transport + r'"[^}]*\}'
        r" ([0-9.e+]+)"
    )
    return sum(int(float(v)) for v in re.findall(pattern, body.decode(), re.MULTILINE))


def _wait_for_all(collector: Collector, transport: str, before: int) -> None:
    wait_until(
        lambda: _accepted(collector, transport) - before == SPANS or None,
        30,
        lambda: f"{SPANS} spans accepted ({_accepted(collector, transport) - before} so far)",
    )


def _send(exporter: DirectOTLPSpanExporter) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=SPANS))
    for offset in range(SPANS):
        record = make_record("orders", b"{}", offset=offset, key=f"k{offset}".encode())
        with process_span(record, group="billing", tracer_provider=provider):
            pass
    provider.shutdown()


def test_every_span_sent_over_grpc_is_accepted_by_the_collector(collector):
    before = _accepted(collector, "grpc")
    _send(DirectOTLPSpanExporter(endpoint=collector.otlp_grpc_endpoint, protocol="grpc"))
    wait_until(
        lambda: _accepted(collector, "grpc") - before == SPANS or None,
        30,
        lambda: (
            f"{SPANS} spans accepted over gRPC (so far {_accepted(collector, 'grpc') - before})"
        ),
    )


def test_every_span_sent_over_http_with_gzip_is_accepted_by_the_collector(collector):
    before = _accepted(collector, "http")
    exporter = DirectOTLPSpanExporter(
        endpoint=collector.otlp_http_endpoint + "/v1/traces",
        protocol="http/protobuf",
        compression="gzip",
    )
    _send(exporter)
    wait_until(
        lambda: _accepted(collector, "http") - before == SPANS or None,
        30,
        lambda: (
            f"{SPANS} spans accepted over HTTP (so far {_accepted(collector, 'http') - before})"
        ),
    )


def test_a_batch_larger_than_the_receivers_limit_is_accepted_whole(collector):
    """2,000 spans of 3 KB each, one batch of about 6.2 MB: the Collector refuses a request
    over 4 MiB, so the exporter sends it in parts."""
    before = _accepted(collector, "grpc")
    exporter = DirectOTLPSpanExporter(
        endpoint=collector.otlp_grpc_endpoint, protocol="grpc", timeout=5
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
    provider.add_span_processor(EncodingSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    for offset in range(SPANS):
        record = make_record("orders", b"{}", offset=offset, key=f"k{offset}".encode())
        with process_span(record, group="billing", tracer_provider=provider) as span:
            span.set_attribute("app.note", "x" * 3_000)
    provider.shutdown()
    _wait_for_all(collector, "grpc", before)
