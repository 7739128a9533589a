"""The real Kafka broker works end to end with kafka-python: produce, group-consume, commit."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devstack._process import port_open
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

from tests.integration import _kafka_clients as clients

pytestmark = pytest.mark.integration


def _produce(bootstrap_servers: str, topic: str, value: dict[str, Any]) -> Any:
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=0)
    try:
        future = producer.send(
            topic,
            key=b"order-1",
            value=json.dumps(value).encode(),
            headers=[("content-type", b"application/json")],
        )
        metadata = future.get(timeout=30)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return metadata


def _consume_one(bootstrap_servers: str, topic: str, group_id: str, timeout: float = 30) -> Any:
    """Join ``group_id``, poll until one record arrives (bounded), commit it, return it."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        batch = wait_until(
            lambda: next(
                (r for r in consumer.poll(timeout_ms=500, max_records=1).values() if r), None
            ),
            timeout,
            f"a record on {topic}",
            interval=0,  # poll() waits itself
        )
        consumer.commit()
        tp = TopicPartition(batch[0].topic, batch[0].partition)
        assert consumer.committed(tp) == batch[0].offset + 1
        return batch[0]
    finally:
        consumer.close()


def test_json_message_roundtrip_through_a_consumer_group(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    payload = {"order_id": 42, "items": ["a", "b"], "total": 9.5, "note": "ünïcödé"}

    sent = _produce(kafka_broker.bootstrap_servers, topic, payload)
    record = _consume_one(kafka_broker.bootstrap_servers, topic, clients.new_group())

    assert json.loads(record.value) == payload
    assert record.key == b"order-1"
    assert list(record.headers) == [("content-type", b"application/json")]
    assert (record.topic, record.partition, record.offset) == (topic, sent.partition, sent.offset)


def test_topic_factory_creates_topics_with_partitions(
    kafka_broker: KafkaBroker, topic_factory: Callable[..., str]
) -> None:
    name = topic_factory("orders", partitions=3)

    admin = kafka_broker.admin()
    try:
        (described,) = admin.describe_topics([name])
    finally:
        admin.close()
    assert name.startswith("orders-")
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]


def test_restart_keeps_port_and_data_and_stop_ends_the_process(tmp_path: Path) -> None:
    """A private, short-lived broker: restart keeps what was written, stop ends its PID."""
    broker = KafkaBroker.start(tmp_path / "kafka")
    try:
        port, first_pid = broker.port, broker.pid
        topic = broker.create_topic("restart-test")
        _produce(broker.bootstrap_servers, topic, {"before": "restart"})

        broker.restart()

        assert broker.port == port
        assert broker.pid != first_pid
        record = _consume_one(broker.bootstrap_servers, topic, "restart-group")
        assert json.loads(record.value) == {"before": "restart"}
        pid = broker.pid
    finally:
        broker.stop()

    assert pid is not None
    assert not broker.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_open(port)


def _poll_until_all_assigned(consumer: KafkaConsumer, timeout: float) -> float:
    """Poll until ``consumer`` holds every partition of its topics; seconds it took."""
    from examples.pipeline.service import holds_all_partitions

    started = time.monotonic()
    wait_until(
        lambda: holds_all_partitions(consumer),
        timeout,
        lambda: f"every partition assigned (holds {sorted(consumer.assignment())})",
        step=lambda: consumer.poll(timeout_ms=100),
    )
    return time.monotonic() - started


def test_a_topic_created_after_the_subscription_is_assigned_within_seconds(
    kafka_broker: KafkaBroker,
) -> None:
    from examples.pipeline.service import CONSUMER_OPTIONS

    name = f"late-{uuid.uuid4().hex[:10]}"
    consumer = KafkaConsumer(
        name,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=clients.new_group(),
        **CONSUMER_OPTIONS,
    )
    try:
        for _ in range(10):  # joined its group without the topic: nothing to hold yet
            consumer.poll(timeout_ms=100)
        assert consumer.assignment() == set()
        kafka_broker.create_topic(name, partitions=3)
        took = _poll_until_all_assigned(consumer, timeout=10)
        held = {tp.partition for tp in consumer.assignment()}
    finally:
        consumer.close()
    assert held == {0, 1, 2}
    assert took < 10


def test_the_broker_does_not_create_topics_behind_a_subscription(
    kafka_broker: KafkaBroker,
) -> None:
    name = f"never-created-{uuid.uuid4().hex[:10]}"
    consumer = KafkaConsumer(
        name, bootstrap_servers=kafka_broker.bootstrap_servers, group_id=clients.new_group()
    )
    try:
        for _ in range(10):
            consumer.poll(timeout_ms=100)
    finally:
        consumer.close()
    admin = kafka_broker.admin()
    try:
        assert name not in admin.list_topics()
    finally:
        admin.close()


def test_create_topics_returns_once_a_client_sees_every_partition(
    kafka_broker: KafkaBroker,
) -> None:
    from devstack.kafka import create_topics

    names = {f"vis-{uuid.uuid4().hex[:8]}": n for n in (1, 3, 5)}
    create_topics(kafka_broker.bootstrap_servers, names)
    probe = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        probe.topics()
        seen = {name: probe.partitions_for_topic(name) for name in names}
    finally:
        probe.close()
    assert seen == {name: set(range(n)) for name, n in names.items()}


class _FirstAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """Remembers the partitions of a consumer's first assignment."""

    def __init__(self) -> None:
        self.first: set[TopicPartition] | None = None

    def on_partitions_revoked(self, revoked: object) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.first is None:
            self.first = set(assigned)


@pytest.mark.parametrize("attempt", range(3))
def test_subscribing_once_visible_makes_the_first_assignment_complete(
    kafka_broker: KafkaBroker, attempt: int
) -> None:
    # Subscribed straight after creating the topics, a fresh group's first assignment held no
    # partition in 14 of 15 tries here: the member joined before its metadata had the topics.
    from devstack.kafka import create_topics, subscribe_once_visible

    orders, dead_letters = f"first-{uuid.uuid4().hex[:8]}", f"first-dlq-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker.bootstrap_servers, {orders: 3, dead_letters: 1})
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=clients.new_group(),
        auto_offset_reset="earliest",
    )
    listener = _FirstAssignment()
    try:
        subscribe_once_visible(consumer, orders, dead_letters, listener=listener)
        wait_until(
            lambda: listener.first is not None,
            20,
            "the first assignment",
            step=lambda: consumer.poll(timeout_ms=100),
        )
    finally:
        consumer.close()
    assert listener.first == {
        TopicPartition(orders, 0),
        TopicPartition(orders, 1),
        TopicPartition(orders, 2),
        TopicPartition(dead_letters, 0),
    }
