"""Retries and poison messages on the real broker: a re-read offset, and a retry topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafkascope import TracedProducer, traced_handler
from kafkascope._core import semconv as sc
from kafkascope._core.headers import ATTEMPT

pytestmark = pytest.mark.integration

WAIT = 30.0


class PaymentError(Exception):
    pass


def _consumer(servers: str, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    consumer.assign([TopicPartition(topic, 0)])
    return consumer


def _next(consumer: KafkaConsumer) -> Any:
    batch = wait_until(
        lambda: next((r for r in consumer.poll(timeout_ms=200, max_records=1).values() if r), None),
        WAIT,
        "the next record",
        interval=0,  # poll() waits itself
    )
    return batch[0]


def _attempts(capotel: Any, name: str) -> list[Any]:
    return sorted(capotel.spans_named(name), key=lambda s: s.start_time)


def test_a_re_read_offset_failing_three_times_is_one_lineage_and_poison(
    capotel, kafka_broker: KafkaBroker, topic: str
) -> None:
    servers = kafka_broker.bootstrap_servers
    producer = KafkaProducer(bootstrap_servers=servers, acks="all")
    producer.send(topic, b"bad").get(timeout=WAIT)
    producer.close(timeout=10)

    @traced_handler(group="payments")
    def handle(record: Any) -> None:
        raise PaymentError("card declined")

    consumer = _consumer(servers, topic)
    try:
        for _ in range(3):
            record = _next(consumer)
            with pytest.raises(PaymentError):
                handle(record)
            consumer.seek(TopicPartition(topic, 0), record.offset)  # not committed: read again
    finally:
        consumer.close()

    first, second, third = _attempts(capotel, f"process {topic}")
    assert [s.attributes.get(sc.MESSAGE_ATTEMPT) for s in (first, second, third)] == [None, 2, 3]
    assert second.links[-1].context.span_id == first.context.span_id
    assert third.links[-1].context.span_id == second.context.span_id
    assert third.attributes[sc.MESSAGE_POISON] is True
    assert capotel.metric(sc.POISON, {sc.MESSAGING_DESTINATION_NAME: topic}).value == 1
    warning = capotel.log("poison message")
    assert warning.log_record.severity_text == "WARN"
    assert tuple((warning.log_record.attributes or {})[sc.POISON_TRACE_IDS]) == tuple(
        format(s.context.trace_id, "032x") for s in (first, second, third)
    )


def test_retries_through_a_retry_topic_are_one_lineage_and_become_poison(
    capotel, kafka_broker: KafkaBroker, topic_factory: Callable[..., str]
) -> None:
    servers = kafka_broker.bootstrap_servers
    orders, retries = topic_factory("orders"), topic_factory("orders-retry")
    raw = KafkaProducer(bootstrap_servers=servers, acks="all")
    producer = TracedProducer(raw)
    raw.send(orders, b"bad").get(timeout=WAIT)

    @traced_handler(group="payments")
    def handle(record: Any) -> None:
        try:
            raise PaymentError("card declined")
        except PaymentError:
            # The usual retry: same value and headers, to the retry topic.
            producer.send(retries, record.value, headers=list(record.headers)).get(timeout=WAIT)
            raise

    first_consumer, retry_consumer = _consumer(servers, orders), _consumer(servers, retries)
    try:
        with pytest.raises(PaymentError):
            handle(_next(first_consumer))
        received = []
        for _ in range(2):
            record = _next(retry_consumer)
            received.append(dict(record.headers))
            with pytest.raises(PaymentError):
                handle(record)
    finally:
        first_consumer.close()
        retry_consumer.close()
        raw.close(timeout=10)

    assert [h[ATTEMPT] for h in received] == [b"1", b"2"]
    (first,) = capotel.spans_named(f"process {orders}")
    second, third = _attempts(capotel, f"process {retries}")
    assert second.attributes[sc.MESSAGE_ATTEMPT] == 2
    assert third.attributes[sc.MESSAGE_ATTEMPT] == 3
    assert second.links[-1].context.span_id == first.context.span_id
    assert third.links[-1].context.span_id == second.context.span_id
    assert third.attributes[sc.MESSAGE_POISON] is True
    assert capotel.metric(sc.POISON, {sc.MESSAGING_DESTINATION_NAME: retries}).value == 1
