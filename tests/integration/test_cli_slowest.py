"""`kafkascope slowest` against real servers: services -> the shipped Collector config ->
Prometheus (exemplar storage on, as devstack and the compose file run it) and Jaeger."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devstack import collector as devstack_collector
from devstack import jaeger as devstack_jaeger
from devstack._process import free_port
from devstack.collector import Collector
from devstack.jaeger import Jaeger
from devstack.prometheus import Prometheus
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from kafkascope import traced_handler
from kafkascope.cli import EXIT_NOT_FOUND, EXIT_OK, EXIT_UNAVAILABLE, main
from kafkascope.testing import make_record, pipeline_stamp

pytestmark = pytest.mark.integration


@dataclass
class Servers:
    jaeger: Jaeger
    collector: Collector
    prometheus: Prometheus


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = Path(tmp_path_factory.mktemp("slowest"))
    with Jaeger.start(root / "jaeger", config_file=devstack_jaeger.SHIPPED_CONFIG) as jaeger:
        collector = Collector.start(
            root / "collector",
            jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
            config_file=devstack_collector.SHIPPED_CONFIG,
        )
        target = f"127.0.0.1:{collector.prometheus_port}"
        with collector, Prometheus.start(root / "prometheus", [("otel-collector", target)]) as prom:
            yield Servers(jaeger, collector, prom)


def _handle_three_messages(servers: Servers) -> dict[str, str]:
    """billing handles three messages whose chains started 0.1 s, 1 s and 40 s ago; the trace id
    of each process span, by age."""
    endpoint = servers.collector.otlp_grpc_endpoint
    resource = Resource.create({"service.name": "billing"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    )
    # Exported once (force_flush): the SDK sends each exemplar in one export only, and the
    # exporter serves it until the next export replaces the point; Prometheus scrapes every 1 s.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=60_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace_ids: dict[str, str] = {}

    @traced_handler(group="billing", tracer_provider=tracer_provider, meter_provider=meter_provider)
    def handle(record: object) -> str:
        return format(trace.get_current_span().get_span_context().trace_id, "032x")

    now = time.time() * 1000
    try:
        for age, age_ms in (("fast", 100), ("medium", 1000), ("slow", 40_000)):
            record = make_record("invoices", headers=[pipeline_stamp(now - age_ms, "orders")])
            trace_ids[age] = handle(record)
        meter_provider.force_flush()
        for trace_id in trace_ids.values():
            servers.jaeger.wait_for_trace(trace_id, timeout=30)
        servers.prometheus.wait_for(
            "count(kafkascope_pipeline_latency_seconds_count)", lambda v: v is not None
        )
        time.sleep(2)  # a scrape after the samples arrived keeps the exemplars too
    finally:
        meter_provider.shutdown()
        tracer_provider.shutdown()
    return trace_ids


def test_slowest_shows_the_trace_of_the_slowest_message(servers, capsys):
    trace_ids = _handle_three_messages(servers)
    status = main(
        [
            "slowest",
            "--prometheus",
            servers.prometheus.url,
            "--jaeger",
            servers.jaeger.query_url,
            "--window",
            "5m",
        ]
    )
    out = capsys.readouterr().out
    assert status == EXIT_OK, out
    lines = out.splitlines()
    assert lines[0].startswith("slowest exemplar of kafkascope_pipeline_latency_seconds in the ")
    assert "in bucket le=60 s, service=billing group=billing topic=invoices origin=orders" in out
    assert float(lines[0].split(": ")[1].split(" s ")[0]) >= 40.0
    assert lines[1].startswith(f"trace {trace_ids['slow']} ")
    assert lines[2].startswith("billing: process invoices ")


def test_no_exemplar_of_a_metric_exits_1(servers, capsys):
    status = main(
        [
            "slowest",
            "--metric",
            "kafkascope_nothing_recorded_seconds",
            "--prometheus",
            servers.prometheus.url,
            "--jaeger",
            servers.jaeger.query_url,
        ]
    )
    assert status == EXIT_NOT_FOUND
    assert "has no exemplar of kafkascope_nothing_recorded_seconds" in capsys.readouterr().err


def test_prometheus_unreachable_exits_3(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["slowest", "--prometheus", url]) == EXIT_UNAVAILABLE
    assert f"cannot reach Prometheus at {url}" in capsys.readouterr().err
