"""One client id per consumer, whatever reads it: the rebalance counter, the assigned-partitions
gauge and the process spans of a zero-code consumer carry the same ``messaging.client.id``, for
each client; and a dead letter's send span carries its producer's client and cluster ids."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from devstack.kafka import KafkaBroker, subscribe_once_visible
from kafka import KafkaProducer

from kafkascope import TracedProducer, dead_letter, process_span
from kafkascope._core import semconv as sc

pytestmark = pytest.mark.integration

WAIT = 30.0


def _produce_one(servers: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=servers)
    try:
        producer.send(topic, b"one").get(timeout=WAIT)
    finally:
        producer.close()


def _poll_until(condition: Callable[[], bool], step: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {WAIT:.0f}s")
        step()


def _client_ids(capotel: Any, group: str) -> dict[str, object]:
    """The client id on each signal of the consumer in ``group``."""
    by_group = {sc.MESSAGING_CONSUMER_GROUP_NAME: group}
    process = [
        s
        for s in capotel.spans
        if s.name.startswith("process ")
        and (s.attributes or {}).get(sc.MESSAGING_CONSUMER_GROUP_NAME) == group
    ]
    assert process, "no process span"
    return {
        "process span": process[0].attributes.get(sc.MESSAGING_CLIENT_ID),
        "rebalance counter": capotel.metric(sc.REBALANCES, by_group).attributes.get(
            sc.MESSAGING_CLIENT_ID
        ),
        "assigned-partitions gauge": capotel.metric(
            sc.ASSIGNED_PARTITIONS, by_group
        ).attributes.get(sc.MESSAGING_CLIENT_ID),
    }


def _expect(client_id: str) -> dict[str, object]:
    return dict.fromkeys(
        ("process span", "rebalance counter", "assigned-partitions gauge"), client_id
    )


def test_kafka_python_consumer_has_one_client_id_on_every_signal(
    capotel, instrumented: None, kafka_broker: KafkaBroker, topic: str
) -> None:
    from kafka import KafkaConsumer

    _produce_one(kafka_broker.bootstrap_servers, topic)
    group = f"ids-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        client_id="ids-kafka-python",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(WAIT * 1000),
    )
    try:
        subscribe_once_visible(consumer, topic)
        assert next(consumer).value == b"one"  # handed out one by one: a process span each
        consumer.poll(timeout_ms=100)  # ends the record's process span
        assert _client_ids(capotel, group) == _expect("ids-kafka-python")
    finally:
        consumer.close()


def test_aiokafka_consumer_has_one_client_id_on_every_signal(
    capotel, instrumented: None, kafka_broker: KafkaBroker, topic: str
) -> None:
    from aiokafka import AIOKafkaConsumer

    _produce_one(kafka_broker.bootstrap_servers, topic)
    group = f"ids-{uuid.uuid4().hex[:8]}"

    async def consume() -> dict[str, object]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_broker.bootstrap_servers,
            group_id=group,
            client_id="ids-aiokafka",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.subscribe([topic])
            await asyncio.wait_for(consumer.getone(), WAIT)
            await consumer.getmany(timeout_ms=100)  # ends the record's process span
            return _client_ids(capotel, group)
        finally:
            await consumer.stop()

    assert asyncio.run(consume()) == _expect("ids-aiokafka")


def test_confluent_consumer_has_one_client_id_on_every_signal(
    capotel, instrumented: None, kafka_broker: KafkaBroker, topic: str
) -> None:
    import confluent_kafka

    _produce_one(kafka_broker.bootstrap_servers, topic)
    group = f"ids-{uuid.uuid4().hex[:8]}"
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": group,
            "client.id": "ids-confluent",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        got: list[Any] = []
        _poll_until(
            lambda: bool(got), lambda: got.extend(filter(None, [consumer.poll(0.2)])), "a record"
        )
        consumer.poll(0.1)  # ends the record's process span
        assert _client_ids(capotel, group) == _expect("ids-confluent")
    finally:
        consumer.close()


def test_a_dead_letter_send_span_carries_the_producers_client_and_cluster_ids(
    capotel, kafka_broker: KafkaBroker, topic: str
) -> None:
    from kafkascope.testing import make_record

    producer = TracedProducer(
        KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, client_id="ids-dlq")
    )
    try:
        producer.send(topic, b"first").get(timeout=WAIT)  # the producer learns the cluster id
        record = make_record(topic, b"failed", offset=3)
        with process_span(record):
            dead_letter(producer, record, ValueError("bad"), topic=topic).get(timeout=WAIT)
        producer.flush()
    finally:
        producer.close()
    first = capotel.spans_named(f"send {topic}")[0]
    (dlq,) = [s for s in capotel.spans_named(f"send {topic}") if s.links]
    assert first.attributes[sc.MESSAGING_KAFKA_CLUSTER_ID]
    assert (
        dlq.attributes.get(sc.MESSAGING_CLIENT_ID),
        dlq.attributes.get(sc.MESSAGING_KAFKA_CLUSTER_ID),
    ) == ("ids-dlq", first.attributes[sc.MESSAGING_KAFKA_CLUSTER_ID])
