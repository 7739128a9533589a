"""The client statistics as an on-call engineer reads them: configure() exports them over OTLP
to the shipped Collector, a real Prometheus scrapes its exporter, and PromQL finds them under
the names the dashboard and the alert rules use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import confluent_kafka
import kafka
import pytest
from devstack import collector as devstack_collector
from devstack._process import free_port
from devstack.collector import Collector
from devstack.kafka import KafkaBroker
from devstack.prometheus import Prometheus
from devstack.wait import wait_until

from kafkascope import client_statistics_config, configure, observe_client_statistics
from tests.integration._kafka_clients import WAIT

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def test_prometheus_reads_the_client_statistics_through_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_broker: KafkaBroker, topic: str
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    with Collector.start(
        tmp_path / "collector",
        jaeger_otlp_endpoint=f"127.0.0.1:{free_port()}",  # no traces are sent
        config_file=devstack_collector.SHIPPED_CONFIG,
    ) as collector:
        prometheus = Prometheus.start(
            tmp_path / "prometheus", [("otel-collector", f"127.0.0.1:{collector.prometheus_port}")]
        )
        telemetry = configure(
            "billing",
            set_global=False,
            traces=False,
            endpoint=collector.otlp_grpc_endpoint,
            protocol="grpc",
            export_interval_ms=3_600_000,
        )
        producer = confluent_kafka.Producer(
            client_statistics_config(
                {
                    "bootstrap.servers": kafka_broker.bootstrap_servers,
                    "client.id": "billing-ck",
                    "statistics.interval.ms": 100,
                },
                meter_provider=telemetry.meter_provider,
            )
        )
        kp = kafka.KafkaProducer(
            bootstrap_servers=kafka_broker.bootstrap_servers, client_id="billing-kp"
        )
        observe_client_statistics(kp, meter_provider=telemetry.meter_provider)
        try:
            kp.send(topic, b"x").get(timeout=WAIT)

            def exported() -> bool:
                producer.produce(topic, b"x")
                producer.poll(0.1)
                telemetry.meter_provider.force_flush()
                return (
                    'messaging_client_id="billing-ck"'
                    in collector.scrape().split("kafkascope_client_broker_rtt_seconds{", 1)[-1]
                )

            wait_until(exported, WAIT, "the confluent producer's round-trip time on the scrape")
            producer.flush(WAIT)

            def both() -> list[dict[str, Any]] | None:
                found = prometheus.query("kafkascope_client_broker_rtt_seconds")
                return found if len(found) == 2 else None

            series = wait_until(both, WAIT, "both producers' round-trip times", interval=0.5)
            rtt = {s["metric"]["messaging_client_id"]: float(s["value"][1]) for s in series}
            assert set(rtt) == {"billing-ck", "billing-kp"}
            assert all(0 < seconds < WAIT for seconds in rtt.values())
            usage = prometheus.scalar(
                'kafkascope_client_producer_queue_usage_ratio{messaging_client_id="billing-ck"}'
            )
            assert usage is not None
            assert 0 <= usage <= 1
            retries = prometheus.scalar(
                'sum(kafkascope_client_request_retries_total{messaging_client_id="billing-ck"})'
            )
            assert retries == 0
            timeouts = prometheus.scalar(
                'sum(kafkascope_client_request_timeouts_total{messaging_client_id="billing-ck"})'
            )
            assert timeouts == 0
        finally:
            kp.close(timeout=WAIT)
            telemetry.shutdown()
            prometheus.stop()
