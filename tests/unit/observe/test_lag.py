"""Consumer lag read from each client's own state, without a broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from confluent_kafka import Consumer

from kafkascope import observe_lag
from kafkascope._core import semconv as sc

# A port nothing listens on: librdkafka keeps retrying the connection (quietly: log_level 0).
NOWHERE = {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}


@pytest.mark.asyncio
async def test_aiokafka_lag_is_read_from_the_consumers_own_state(capotel):
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="billing")
    observer = observe_lag(consumer)
    try:
        tp = TopicPartition("orders", 0)
        consumer.assign([tp])
        # What the fetcher records from a fetch response and a consumed batch (no broker here).
        state = consumer._subscription.subscription.assignment.state_value(tp)
        state.seek(4)
        state.highwater = 10
        lag = capotel.metric(sc.CONSUMER_LAG, {sc.MESSAGING_DESTINATION_NAME: "orders"})
        assert lag.value == 6
        assert lag.attributes == {
            sc.MESSAGING_SYSTEM: "kafka",
            sc.MESSAGING_DESTINATION_NAME: "orders",
            sc.MESSAGING_DESTINATION_PARTITION_ID: "0",
            sc.MESSAGING_CONSUMER_GROUP_NAME: "billing",
        }
    finally:
        await consumer.stop()
    capotel.clear()
    assert [p for p in capotel.metrics() if p.name == sc.CONSUMER_LAG] == []
    observer.close()


def test_a_beat_that_finds_the_confluent_consumer_closed_ends_its_lag_and_releases_it(capotel):
    # confluent-kafka's Consumer cannot be weakly referenced, unlike the other clients'.
    consumer = Consumer({**NOWHERE, "group.id": "billing"})
    observer = observe_lag(consumer, group="billing")
    consumer.close()
    observer.beat()  # the first beat: a snapshot is due
    assert observer.observations() == []
    assert observer._consumer() is None  # released: it is not held after close


def test_closing_the_observer_releases_a_confluent_consumer_it_was_not_told_closed(capotel):
    consumer = Consumer({**NOWHERE, "group.id": "billing"})
    observer = observe_lag(consumer, group="billing")
    observer.beat()
    consumer.close()
    observer.beat()  # not due yet (once a second): the close is not seen
    assert observer._consumer() is consumer
    observer.close()
    assert observer._consumer() is None
