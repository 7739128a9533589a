"""configure()'s pre-aggregated per-message histograms through OTLP to a real Collector: the
buckets and the exemplar that ``kafkascope slowest`` follows arrive as the SDK's would."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from devstack import collector as devstack_collector
from devstack._process import free_port
from devstack.collector import Collector
from devstack.wait import wait_until
from kafka.future import Future
from kafka.producer.future import RecordMetadata
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from kafkascope import TracedProducer, configure, traced_handler
from kafkascope.testing import make_record

pytestmark = pytest.mark.integration


class AckingProducer:
    """``KafkaProducer.send`` without a broker: its future is acknowledged at once."""

    def __init__(self) -> None:
        self.config = {"bootstrap_servers": "kafka.internal:9094"}

    def send(self, topic: str, value: bytes, **kwargs: object) -> Future:
        future = Future()
        future.success(RecordMetadata(topic, 0, None, 1, 0, None, 1, 1, 0))
        return future


def test_collector_serves_the_pre_aggregated_histograms_with_the_process_spans_exemplar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    with Collector.start(
        tmp_path,
        jaeger_otlp_endpoint=f"127.0.0.1:{free_port()}",  # no traces are sent
        config_file=devstack_collector.SHIPPED_CONFIG,
    ) as collector:
        telemetry = configure(
            "billing",
            set_global=False,
            traces=False,
            endpoint=collector.otlp_grpc_endpoint,
            protocol="grpc",
            export_interval_ms=3_600_000,
        )
        tracer_provider = TracerProvider(shutdown_on_exit=False)
        seen: list[int] = []

        @traced_handler(
            group="billing",
            tracer_provider=tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        def handle(record: object) -> None:
            seen.append(trace.get_current_span().get_span_context().trace_id)

        try:
            handle(make_record("orders", b"{}", timestamp=1))
            telemetry.meter_provider.force_flush()

            def scraped() -> str | None:
                text = collector.scrape()
                return text if "kafkascope_message_time_in_queue_seconds_bucket{" in text else None

            text = wait_until(scraped, 15, "the pre-aggregated histograms on the scrape")
            # The exporter serves an exemplar until the next export replaces the point.
            request = urllib.request.Request(
                collector.prometheus_metrics_url,
                headers={"Accept": "application/openmetrics-text;version=1.0.0"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                openmetrics = response.read().decode()
        finally:
            telemetry.shutdown()
    count = re.search(r"^messaging_process_duration_seconds_count\{[^}]*\} (\S+)", text, re.M)
    assert count is not None
    assert float(count[1]) == 1
    exemplars = re.findall(
        r"^messaging_process_duration_seconds_bucket\{.*\} \d+ # \{(.*)\} ", openmetrics, re.M
    )
    assert [f'trace_id="{seen[0]:032x}"' in labels for labels in exemplars] == [True]


def test_collector_serves_the_pre_aggregated_send_duration_histogram(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    with Collector.start(
        tmp_path,
        jaeger_otlp_endpoint=f"127.0.0.1:{free_port()}",  # no traces are sent
        config_file=devstack_collector.SHIPPED_CONFIG,
    ) as collector:
        telemetry = configure(
            "billing",
            set_global=False,
            traces=False,
            endpoint=collector.otlp_grpc_endpoint,
            protocol="grpc",
            export_interval_ms=3_600_000,
        )
        producer = TracedProducer(
            AckingProducer(),
            tracer_provider=TracerProvider(shutdown_on_exit=False),
            meter_provider=telemetry.meter_provider,
        )
        try:
            for _ in range(3):
                producer.send("invoices", b"{}")
            telemetry.meter_provider.force_flush()

            def scraped() -> str | None:
                text = collector.scrape()
                wanted = "messaging_client_operation_duration_seconds_count{"
                return text if wanted in text else None

            text = wait_until(scraped, 15, "the pre-aggregated send durations on the scrape")
        finally:
            telemetry.shutdown()
    count = re.search(
        r"^messaging_client_operation_duration_seconds_count\{([^}]*)\} (\S+)", text, re.M
    )
    assert count is not None
    assert 'messaging_operation_name="send"' in count[1]
    assert float(count[2]) == 3
