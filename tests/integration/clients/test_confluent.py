"""confluent-kafka on the real broker: every traced producer's message continued by a confluent
consumer, delivery failures, consumer lag and time lag, client ids."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from devstack.kafka import KafkaBroker
from opentelemetry.trace import StatusCode

from kafkascope import TracedConfluentProducer, observe_lag, process_span, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from tests.integration import _kafka_clients as clients
from tests.integration._kafka_clients import WAIT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sender", clients.SENDERS)
def test_every_sender_is_continued_by_a_confluent_receiver(
    capotel, kafka_broker: KafkaBroker, topic, sender
):
    servers = kafka_broker.bootstrap_servers
    clients.send(sender, servers, topic)
    handled: list[Any] = []

    @traced_handler(group="matrix")
    def handle(record):
        handled.append(record)

    clients.receive_confluent(servers, topic, handle)
    assert len(handled) == 1
    clients.assert_continued(capotel, topic, servers)


# ---------------------------------------------------------------- failures
def test_confluent_delivery_failure_is_recorded_and_the_users_callback_still_called(
    capotel, kafka_broker: KafkaBroker, request
):
    # The broker refuses the record (the topic's limit is below the producer's): the failure
    # arrives in the delivery report, not from produce().
    topic = kafka_broker.create_topic(
        f"small-{uuid.uuid4().hex[:10]}", configs={"max.message.bytes": "1000"}
    )
    reports: list[tuple[Any, Any]] = []
    producer = TracedConfluentProducer(
        Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "linger.ms": 0})
    )
    producer.produce(topic, b"x" * 5000, callback=lambda err, msg: reports.append((err, msg)))
    assert producer.flush(WAIT) == 0
    ((err, msg),) = reports
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert msg.topic() == topic
    send = capotel.span(f"send {topic}")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[sc.ERROR_TYPE] == "MSG_SIZE_TOO_LARGE"
    assert sc.MESSAGING_KAFKA_OFFSET not in send.attributes
    assert [event.name for event in send.events] == ["exception"]
    failed = capotel.metric(
        sc.METRIC_CLIENT_SENT_MESSAGES,
        {sc.MESSAGING_DESTINATION_NAME: topic, sc.ERROR_TYPE: "MSG_SIZE_TOO_LARGE"},
    )
    assert failed.value == 1


def test_confluent_unknown_partition_fails_in_the_report_then_in_produce(
    capotel, kafka_broker: KafkaBroker, topic
):
    reports: list[tuple[Any, Any]] = []
    producer = TracedConfluentProducer(
        Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    )
    # Before the producer has the topic's metadata the message is queued, then fails.
    producer.produce(topic, b"x", partition=7, on_delivery=lambda e, m: reports.append((e, m)))
    assert producer.flush(WAIT) == 0
    assert [err.code() for err, _ in reports] == [KafkaError._UNKNOWN_PARTITION]
    # Once it knows the topic has one partition, produce() itself raises.
    with pytest.raises(KafkaException):
        producer.produce(topic, b"y", partition=7)
    spans = capotel.spans_named(f"send {topic}")
    assert [s.attributes[sc.ERROR_TYPE] for s in spans] == ["_UNKNOWN_PARTITION"] * 2
    assert all(s.attributes[sc.MESSAGING_DESTINATION_PARTITION_ID] == "7" for s in spans)


# ---------------------------------------------------------------- lag
def test_confluent_consumer_lag(capotel, kafka_broker: KafkaBroker, topic):
    clients.fill(kafka_broker.bootstrap_servers, topic, 5)
    group = clients.new_group()
    consumer = clients.confluent_consumer(kafka_broker.bootstrap_servers, group=group)
    observer = observe_lag(consumer, group=group)
    try:
        consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(2):
            clients.poll_confluent(consumer, topic)
        clients.beat_fresh(observer)
        assert clients.consumer_lag(capotel, topic, group) == 3
        for _ in range(3):
            clients.poll_confluent(consumer, topic)
        clients.beat_fresh(observer)
        assert clients.consumer_lag(capotel, topic, group) == 0
    finally:
        observer.close()
        consumer.close()


def test_confluent_consumer_time_lag(capotel, kafka_broker: KafkaBroker, topic):
    clients.fill(kafka_broker.bootstrap_servers, topic, 5)
    group = clients.new_group()
    consumer = clients.confluent_consumer(kafka_broker.bootstrap_servers, group=group)
    observer = observe_lag(consumer, group=group)
    try:
        consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(2):
            msg = clients.poll_confluent(consumer, topic)
            with process_span(msg, group=group):
                pass
        clients.beat_fresh(observer)
        age = time.time() - msg.timestamp()[1] / 1000
        assert capotel.time_lag(topic, 0) == pytest.approx(age, abs=1.0)
        for _ in range(3):
            with process_span(clients.poll_confluent(consumer, topic), group=group):
                pass
        clients.beat_fresh(observer)
        assert capotel.time_lag(topic, 0) == 0.0
        consumer.unassign()
        clients.beat_fresh(observer)
        assert list(observer.time_lag_observations()) == []
    finally:
        observer.close()
        consumer.close()


# ---------------------------------------------------------------- client id
def test_confluent_producer_records_its_client_id(capotel, kafka_broker: KafkaBroker, topic):
    servers = kafka_broker.bootstrap_servers
    rd = TracedConfluentProducer(
        Producer({"bootstrap.servers": servers, "client.id": "orders-rd"}), client_id="orders-rd"
    )
    rd.produce(topic, b"c")
    assert rd.flush(WAIT) == 0
    ids = [s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"send {topic}")]
    assert ids == ["orders-rd"]


def test_zero_code_confluent_producer_records_its_client_id(capotel, kafka_broker, topic):
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        import confluent_kafka

        servers = kafka_broker.bootstrap_servers
        for config in ({"client.id": "orders-rd"}, {}):
            producer = confluent_kafka.Producer({"bootstrap.servers": servers, **config})
            producer.produce(topic, b"m")
            assert producer.flush(WAIT) == 0
    finally:
        instrumentor.uninstrument()
    ids = [s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"send {topic}")]
    assert ids == ["orders-rd", "rdkafka"]  # librdkafka's default when none is configured


def test_zero_code_confluent_consumer_records_its_client_id(capotel, kafka_broker, topic):
    servers = kafka_broker.bootstrap_servers
    clients.fill(servers, topic, 1)
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        import confluent_kafka

        rd = confluent_kafka.Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": clients.new_group(),
                "client.id": "billing-rd",
            }
        )
        rd.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        assert clients.poll_confluent(rd, topic) is not None
        rd.close()
    finally:
        instrumentor.uninstrument()
    ids = {
        s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"process {topic}")
    }
    assert ids == {"billing-rd"}
