"""The clients' own statistics on the real broker: confluent-kafka and kafka-python clients
made under the zero-code instrumentation report ``kafkascope.client.*`` metrics, read back
from an in-memory reader; the application's ``stats_cb`` keeps every document; a consumer of
300 partitions stays under the cap; the setting turns it all off."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import kafka
import pytest
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from kafkascope import TracedProducer, observe_lag
from kafkascope._core import client_metrics as cm
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope.instrumentor import KafkascopeInstrumentor
from tests.integration._kafka_clients import WAIT, new_group

pytestmark = pytest.mark.integration


class Metrics:
    """The zero-code instrumentation of all three clients, on its own in-memory reader."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def series(self, name: str) -> list[tuple[dict[str, Any], float]]:
        data = self.reader.get_metrics_data()
        return [
            (dict(p.attributes or {}), float(p.value))
            for r in (data.resource_metrics if data else ())
            for s in r.scope_metrics
            for m in s.metrics
            if m.name == name
            for p in m.data.data_points
            if isinstance(p, NumberDataPoint)
        ]

    def names(self) -> set[str]:
        data = self.reader.get_metrics_data()
        return {
            m.name
            for r in (data.resource_metrics if data else ())
            for s in r.scope_metrics
            for m in s.metrics
        }


@pytest.fixture
def metrics() -> Iterator[Metrics]:
    found = Metrics()
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument(meter_provider=found.provider)
    try:
        yield found
    finally:
        instrumentor.uninstrument()
        found.provider.shutdown()


@pytest.fixture
def client_metrics_off() -> Iterator[None]:
    _settings.update(client_metrics=False)
    try:
        yield
    finally:
        _settings.reset()


def _broker_address(kafka_broker: KafkaBroker) -> tuple[str, int]:
    host, port = kafka_broker.bootstrap_servers.rsplit(":", 1)
    return host, int(port)


def test_confluent_producer_reports_broker_round_trip_time_and_its_queue(
    metrics: Metrics, kafka_broker: KafkaBroker, topic: str
) -> None:
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "client.id": "billing",
            "statistics.interval.ms": 100,
        }
    )

    def send() -> None:
        producer.produce(topic, b"x")
        producer.poll(0.05)

    rtt = wait_until(
        lambda: metrics.series(cm.BROKER_RTT.name), WAIT, "a broker round-trip time", step=send
    )
    producer.flush(WAIT)
    host, port = _broker_address(kafka_broker)
    [(attributes, seconds)] = rtt
    assert attributes == {
        sc.MESSAGING_SYSTEM: "kafka",
        sc.MESSAGING_CLIENT_ID: "billing",
        sc.SERVER_ADDRESS: host,
        sc.SERVER_PORT: port,
    }
    assert 0 < seconds < WAIT
    [(_, usage)] = metrics.series(cm.PRODUCER_QUEUE_USAGE.name)
    assert 0 <= usage <= 1
    [(_, retries)] = metrics.series(cm.REQUEST_RETRIES.name)
    assert retries >= 0


def test_kafka_python_producer_reports_broker_round_trip_time(
    metrics: Metrics, kafka_broker: KafkaBroker, topic: str
) -> None:
    producer = kafka.KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, client_id="billing-kp"
    )
    try:
        producer.send(topic, b"x").get(timeout=WAIT)
        host, port = _broker_address(kafka_broker)
        [(attributes, seconds)] = metrics.series(cm.BROKER_RTT.name)
        assert attributes == {
            sc.MESSAGING_SYSTEM: "kafka",
            sc.MESSAGING_CLIENT_ID: "billing-kp",
            sc.SERVER_ADDRESS: host,
            sc.SERVER_PORT: port,
        }
        assert 0 < seconds < WAIT
    finally:
        producer.close(timeout=WAIT)
    assert metrics.series(cm.BROKER_RTT.name) == []  # closed: no longer reported


def test_kafka_python_consumer_reports_its_largest_lag(
    metrics: Metrics, kafka_broker: KafkaBroker, topic: str
) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    for _ in range(20):
        producer.send(topic, b"x")
    producer.flush(WAIT)
    producer.close(timeout=WAIT)
    group = new_group()
    consumer = kafka.KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        max_poll_records=1,
    )
    try:
        lag = wait_until(
            lambda: metrics.series(cm.CONSUMER_LAG_MAX.name),
            WAIT,
            "records-lag-max",
            step=lambda: consumer.poll(200),
        )
        [(attributes, value)] = lag
        assert attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == group
        assert 0 <= value <= 20
    finally:
        consumer.close()


def test_the_applications_stats_cb_still_receives_every_document(
    metrics: Metrics, kafka_broker: KafkaBroker, topic: str
) -> None:
    received: list[str] = []
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "statistics.interval.ms": 100,
            "stats_cb": received.append,
        }
    )
    wait_until(
        lambda: len(received) >= 5,
        WAIT,
        "five statistics documents",
        step=lambda: producer.poll(0.1),
    )
    producer.flush(WAIT)
    ages = [json.loads(document)["age"] for document in received]
    steps = [b - a for a, b in itertools.pairwise(ages)]
    # One document per 100 ms interval, none skipped (age is in microseconds).
    assert all(0 < step < 200_000 for step in steps), steps
    assert metrics.series(cm.PRODUCER_QUEUE_MESSAGES.name)


def test_a_consumer_of_300_partitions_stays_under_the_partition_cap(
    metrics: Metrics, kafka_broker: KafkaBroker, topic_factory: Any
) -> None:
    topic = topic_factory(partitions=300)
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    for partition in range(300):
        producer.produce(topic, b"x", partition=partition)
    producer.flush(WAIT)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": new_group(),
            "auto.offset.reset": "earliest",
            "statistics.interval.ms": 200,
        }
    )
    consumer.subscribe([topic])
    cap = cm.CAPS["partition"]
    try:

        def past_the_cap() -> list[tuple[dict[str, Any], float]] | None:
            found = metrics.series(cm.CONSUMER_LAG.name)
            return found if len(found) > cap else None

        lag = wait_until(
            past_the_cap,
            WAIT * 2,
            "the lag of more partitions than the cap",
            step=lambda: consumer.poll(0.2),
        )
    finally:
        consumer.close()
    assert len(lag) == cap + 1
    assert [a[sc.MESSAGING_DESTINATION_PARTITION_ID] for a, _ in lag].count(cm.OTHER) == 1
    assert metrics.series(cm.CONSUMER_LAG.name) == []  # closed: its series end at once


def test_client_metrics_off_leaves_the_clients_and_their_stats_cb_alone(
    client_metrics_off: None, metrics: Metrics, kafka_broker: KafkaBroker, topic: str
) -> None:
    received: list[str] = []
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "statistics.interval.ms": 100,
            "stats_cb": received.append,
        }
    )
    wait_until(
        lambda: len(received) >= 3,
        WAIT,
        "three statistics documents",
        step=lambda: producer.poll(0.1),
    )
    kp = kafka.KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        kp.send(topic, b"x").get(timeout=WAIT)
        assert not {n for n in metrics.names() if n.startswith("kafkascope.client.")}
    finally:
        kp.close(timeout=WAIT)
        producer.flush(WAIT)


def test_a_kafka_python_producer_wrapped_by_kafkascope_reports_its_statistics(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    metrics = Metrics()  # no zero-code instrumentation: the wrapper alone
    raw = kafka.KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    producer = TracedProducer(raw, meter_provider=metrics.provider)
    try:
        producer.send(topic, b"x").get(timeout=WAIT)
        [(attributes, seconds)] = metrics.series(cm.BROKER_RTT.name)
        assert attributes[sc.SERVER_PORT] == _broker_address(kafka_broker)[1]
        assert 0 < seconds < WAIT
    finally:
        raw.close(timeout=WAIT)
        metrics.provider.shutdown()


def _consumer_observed_for_lag(
    kafka_broker: KafkaBroker, topic: str, metrics: Metrics
) -> kafka.KafkaConsumer:
    producer = kafka.KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    producer.send(topic, b"x").get(timeout=WAIT)
    producer.close(timeout=WAIT)
    consumer = kafka.KafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=new_group(),
        auto_offset_reset="earliest",
    )
    observe_lag(consumer, meter_provider=metrics.provider)
    wait_until(
        lambda: metrics.series(sc.CONSUMER_LAG),
        WAIT,
        "the lag gauge",
        step=lambda: consumer.poll(200),
    )
    return consumer


def test_a_kafka_python_consumer_observed_for_lag_reports_its_statistics(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    metrics = Metrics()  # configure()'s way: no zero-code instrumentation, observe_lag alone
    consumer = _consumer_observed_for_lag(kafka_broker, topic, metrics)
    try:
        rtts = metrics.series(cm.BROKER_RTT.name)
        assert rtts
        assert all(a[sc.SERVER_PORT] == _broker_address(kafka_broker)[1] for a, _ in rtts)
        assert all(0 < seconds < WAIT for _, seconds in rtts)
    finally:
        consumer.close()
        metrics.provider.shutdown()


def test_client_metrics_off_keeps_observe_lag_to_the_lag(
    client_metrics_off: None, kafka_broker: KafkaBroker, topic: str
) -> None:
    metrics = Metrics()
    consumer = _consumer_observed_for_lag(kafka_broker, topic, metrics)
    try:
        assert not {n for n in metrics.names() if n.startswith("kafkascope.client.")}
    finally:
        consumer.close()
        metrics.provider.shutdown()
