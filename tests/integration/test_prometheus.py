"""The messaging metrics as a Prometheus user reads them: a real Prometheus scrapes an
instrumented consumer on the real broker, and PromQL returns what was processed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from devstack._process import free_port
from devstack.prometheus import Prometheus
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import start_http_server

from kafkascope import TracedProducer, observe_lag, process_span, traced_handler
from tests.integration import _kafka_clients as clients

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


@dataclass
class Scraped:
    prometheus: Prometheus
    meter_provider: MeterProvider
    tracer_provider: TracerProvider


@pytest.fixture
def scraped(tmp_path) -> Iterator[Scraped]:
    """A meter provider exposed on /metrics, scraped every second by a real Prometheus."""
    reader = PrometheusMetricReader()
    meter_provider = MeterProvider(
        resource=Resource.create({"service.name": "billing"}), metric_readers=[reader]
    )
    port = free_port()
    httpd, thread = start_http_server(port, addr="127.0.0.1")
    prometheus = Prometheus.start(tmp_path / "prometheus", [("billing", f"127.0.0.1:{port}")])
    try:
        yield Scraped(prometheus, meter_provider, TracerProvider())
    finally:
        prometheus.stop()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        meter_provider.shutdown()


def test_promql_counts_equal_what_the_consumer_processed(scraped, kafka_broker, topic):
    group = f"billing-{uuid.uuid4().hex[:6]}"
    raw = clients.producer(kafka_broker.bootstrap_servers)
    producer = TracedProducer(
        raw, meter_provider=scraped.meter_provider, tracer_provider=scraped.tracer_provider
    )
    for i in range(20):
        producer.send(topic, str(i).encode())
    producer.flush()
    raw.close(timeout=10)

    @traced_handler(
        group=group,
        meter_provider=scraped.meter_provider,
        tracer_provider=scraped.tracer_provider,
    )
    def handle(record):
        if int(record.value) % 7 == 3:
            raise ValueError("rejected")

    clients.consume(kafka_broker.bootstrap_servers, topic, group, 20, handle)

    prom = scraped.prometheus
    where = f'messaging_destination_name="{topic}"'
    consumed = prom.wait_for(
        f"sum(messaging_client_consumed_messages_total{{{where}}})", lambda v: v == 20
    )
    assert consumed == 20
    assert prom.scalar(f"sum(messaging_process_duration_seconds_count{{{where}}})") == 20
    assert prom.scalar(f"sum(messaging_client_sent_messages_total{{{where}}})") == 20
    errors = prom.scalar(
        f'sum(messaging_process_duration_seconds_count{{{where},error_type="ValueError"}})'
    )
    assert errors == 3  # values 3, 10 and 17
    assert prom.scalar(f"sum(kafkascope_message_time_in_queue_seconds_count{{{where}}})") == 20
    p95 = prom.scalar(
        "histogram_quantile(0.95, sum by (le) "
        f"(messaging_process_duration_seconds_bucket{{{where}}}))"
    )
    assert p95 is not None
    assert 0 < p95 <= 0.005  # a no-op handler lands in the first advised bucket
    (series,) = prom.query(f'messaging_client_consumed_messages_total{{{where},error_type=""}}')
    assert series["metric"]["job"] == "billing"
    assert series["metric"]["messaging_consumer_group_name"] == group


def test_consumer_lag_gauge_follows_the_consumer(scraped, kafka_broker, topic):
    raw = clients.producer(kafka_broker.bootstrap_servers)
    for i in range(10):
        raw.send(topic, str(i).encode())
    raw.flush()
    raw.close(timeout=10)
    group = f"lagging-{uuid.uuid4().hex[:6]}"
    consumer = clients.consumer(kafka_broker.bootstrap_servers, topic, group, max_poll_records=3)
    observer = observe_lag(consumer, meter_provider=scraped.meter_provider)
    prom = scraped.prometheus
    lag_query = f'kafkascope_consumer_lag{{messaging_destination_name="{topic}"}}'
    try:
        got = 0
        for _ in range(40):
            got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
            if got:
                break
        assert got == 3
        lag = prom.wait_for(f"sum({lag_query})", lambda v: v == 7)
        assert lag == 7
        (series,) = prom.query(lag_query)
        assert series["metric"]["messaging_consumer_group_name"] == group
        assert series["metric"]["messaging_destination_partition_id"] == "0"
        while got < 10:
            got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
        assert prom.wait_for(f"sum({lag_query})", lambda v: v == 0) == 0
        consumer.unsubscribe()
        # The revoked partition is no longer reported, so Prometheus marks its series stale.
        assert prom.wait_for(f"count({lag_query})", lambda v: v is None) is None
    finally:
        observer.close()
        consumer.close()


def test_time_lag_grows_while_a_consumer_stalls_and_reads_zero_once_caught_up(
    scraped, kafka_broker, topic
):
    raw = clients.producer(kafka_broker.bootstrap_servers)
    for i in range(10):
        raw.send(topic, str(i).encode())
    raw.flush()
    raw.close(timeout=10)
    provider = scraped.meter_provider
    stalled_group = f"stalled-{uuid.uuid4().hex[:6]}"
    caught_up_group = f"caught-up-{uuid.uuid4().hex[:6]}"
    stalled = clients.consumer(
        kafka_broker.bootstrap_servers, topic, stalled_group, max_poll_records=3
    )
    caught_up = clients.consumer(kafka_broker.bootstrap_servers, topic, caught_up_group)
    observers = [
        observe_lag(stalled, meter_provider=provider),
        observe_lag(caught_up, meter_provider=provider),
    ]
    prom = scraped.prometheus

    def time_lag(group: str) -> str:
        return (
            f'kafkascope_consumer_time_lag_seconds{{messaging_destination_name="{topic}",'
            f'messaging_consumer_group_name="{group}"}}'
        )

    def consume(consumer, group: str, wanted: int) -> None:
        got = 0
        for _ in range(40):
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    with process_span(record, group=group, meter_provider=provider):
                        got += 1
            if got >= wanted:
                return
        raise AssertionError(f"{group} consumed {got} of {wanted}")

    try:
        consume(stalled, stalled_group, 3)  # then it stops polling: 7 messages wait
        consume(caught_up, caught_up_group, 10)
        first = prom.wait_for(time_lag(stalled_group), lambda v: v is not None)
        assert first is not None
        # Stalled, its oldest waiting message keeps ageing, second for second.
        later = prom.wait_for(time_lag(stalled_group), lambda v: v is not None and v > first + 3)
        assert later is not None
        assert later > first + 3
        assert prom.wait_for(time_lag(caught_up_group), lambda v: v == 0) == 0
        assert (
            prom.scalar(
                f'kafkascope_consumer_lag{{messaging_consumer_group_name="{stalled_group}"}}'
            )
            == 7
        )
        # It catches up: the time lag falls to 0.
        consume(stalled, stalled_group, 7)
        assert prom.wait_for(time_lag(stalled_group), lambda v: v == 0) == 0
        # Revoked, the partition is no longer reported and its series goes stale.
        stalled.unsubscribe()
        count = f"count({time_lag(stalled_group)})"
        assert prom.wait_for(count, lambda v: v is None) is None
    finally:
        for observer in observers:
            observer.close()
        stalled.close()
        caught_up.close()
