from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from kafkascope import traced_rebalance_callbacks, traced_rebalance_listener
from kafkascope._core import semconv as sc

PARTITIONS = [TopicPartition("orders", 0), TopicPartition("orders", 1)]


class MineError(Exception):
    pass


@pytest.fixture
def kafka_consumer() -> Iterator[KafkaConsumer]:
    consumer = KafkaConsumer(
        bootstrap_servers="127.0.0.1:9", group_id="billing", api_version=(2, 5), client_id="c1"
    )
    yield consumer
    consumer.close()


@pytest.fixture
def confluent_consumer() -> Iterator[Any]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9", "group.id": "billing"})
    yield consumer
    consumer.close()


class Failing(ConsumerRebalanceListener):  # type: ignore[misc]
    def on_partitions_revoked(self, revoked: Any) -> str:
        return "revoked by the app"

    def on_partitions_assigned(self, assigned: Any) -> None:
        raise MineError("the app's own")


def test_the_apps_listener_runs_after_recording_and_its_exception_is_unchanged(
    capotel, kafka_consumer: KafkaConsumer
) -> None:
    listener = traced_rebalance_listener(Failing(), consumer=kafka_consumer)
    with pytest.raises(MineError, match="the app's own"):
        listener.on_partitions_assigned(set(PARTITIONS))
    assert listener.on_partitions_revoked(set(PARTITIONS[:1])) == "revoked by the app"
    assigned = {sc.MESSAGING_CONSUMER_GROUP_NAME: "billing", sc.REBALANCE_TYPE: "assigned"}
    assert capotel.metric(sc.REBALANCES, assigned).value == 1
    gauge = capotel.metric(sc.ASSIGNED_PARTITIONS, {sc.MESSAGING_CLIENT_ID: "c1"})
    assert gauge.value == 1  # two assigned, one revoked
    record = capotel.log("revoked partitions").log_record
    assert "revoked partitions orders-0" in str(record.body)
    # Not in a group yet: no member id, and no None offered as an attribute value.
    assert sc.CONSUMER_MEMBER_ID not in (record.attributes or {})
    assert (record.attributes or {})[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"


def test_lost_partitions_count_as_revoked_and_reach_the_apps_on_partitions_lost(
    capotel, kafka_consumer: KafkaConsumer
) -> None:
    class Mine(Failing):
        lost: Any = None

        def on_partitions_lost(self, lost: Any) -> None:
            Mine.lost = lost

    listener = traced_rebalance_listener(Mine(), consumer=kafka_consumer)
    listener.on_partitions_lost(set(PARTITIONS))
    assert Mine.lost == set(PARTITIONS)
    revoked = {sc.MESSAGING_CONSUMER_GROUP_NAME: "billing", sc.REBALANCE_TYPE: "revoked"}
    assert capotel.metric(sc.REBALANCES, revoked).value == 1
    assert "lost partitions" in str(capotel.log("lost partitions").log_record.body)


def test_empty_changes_are_not_counted(capotel, kafka_consumer: KafkaConsumer) -> None:
    traced_rebalance_listener(consumer=kafka_consumer).on_partitions_revoked(set())
    assert all(p.name != sc.REBALANCES for p in capotel.metrics())


def test_bad_arguments_are_refused_when_wrapping(
    kafka_consumer: KafkaConsumer, confluent_consumer: Any
) -> None:
    with pytest.raises(TypeError, match="listener must be a ConsumerRebalanceListener"):
        traced_rebalance_listener(object(), consumer=kafka_consumer)
    with pytest.raises(TypeError, match="traced_rebalance_callbacks"):
        traced_rebalance_listener(consumer=confluent_consumer)
    with pytest.raises(TypeError, match="traced_rebalance_listener"):
        traced_rebalance_callbacks(consumer=kafka_consumer)
    with pytest.raises(TypeError, match="on_revoke must be callable"):
        traced_rebalance_callbacks(consumer=confluent_consumer, on_revoke="nope")  # type: ignore[arg-type]


def test_confluent_lost_partitions_go_to_on_revoke_without_on_lost(
    capotel, confluent_consumer: Any
) -> None:
    from confluent_kafka import TopicPartition as Partition

    seen: list[str] = []
    callbacks = traced_rebalance_callbacks(
        consumer=confluent_consumer,
        group="billing",
        on_revoke=lambda consumer, partitions: seen.append(f"revoke {len(partitions)}"),
    )
    partitions = [Partition("orders", 0), Partition("orders", 1)]
    assert callbacks["on_assign"](confluent_consumer, partitions) is None
    callbacks["on_lost"](confluent_consumer, partitions)
    assert seen == ["revoke 2"]
    revoked = {sc.MESSAGING_CONSUMER_GROUP_NAME: "billing", sc.REBALANCE_TYPE: "revoked"}
    assert capotel.metric(sc.REBALANCES, revoked).value == 1


def test_aiokafka_listener_awaits_the_apps_coroutine_and_returns_its_result(capotel) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka import ConsumerRebalanceListener as AIOListener

    class Mine(AIOListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> str:
            await asyncio.sleep(0)
            return "done"

        def on_partitions_assigned(self, assigned: Any) -> None:
            raise MineError("sync and failing")

    async def run() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", group_id="billing")
        try:
            listener = traced_rebalance_listener(Mine(), consumer=consumer)
            assert await listener.on_partitions_revoked(set()) == "done"
            with pytest.raises(MineError):
                await listener.on_partitions_assigned(set(PARTITIONS))
        finally:
            await consumer.stop()

    asyncio.run(run())
    assigned = {sc.MESSAGING_CONSUMER_GROUP_NAME: "billing", sc.REBALANCE_TYPE: "assigned"}
    assert capotel.metric(sc.REBALANCES, assigned).value == 1


def test_zero_code_does_not_wrap_callbacks_that_are_traced_already(confluent_consumer: Any) -> None:
    from kafkascope._observe.rebalance_listeners import confluent_subscribe_args

    traced = traced_rebalance_callbacks(consumer=confluent_consumer, group="billing")
    args, kwargs = confluent_subscribe_args(confluent_consumer, "billing", None, (["t"],), traced)
    assert (args, kwargs) == ((["t"],), traced)
    _, wrapped = confluent_subscribe_args(confluent_consumer, "billing", None, (["t"],), {})
    assert set(wrapped) == {"on_assign", "on_revoke", "on_lost"}


def test_zero_code_does_not_wrap_a_listener_that_is_traced_already(
    capotel, kafka_consumer: KafkaConsumer
) -> None:
    from kafkascope._observe.rebalance_listeners import subscribe_hook

    traced = traced_rebalance_listener(consumer=kafka_consumer)
    given: list[Any] = []

    def subscribe(topics: Any = (), pattern: Any = None, listener: Any = None) -> None:
        given.append(listener)

    subscribe_hook(None)(subscribe, kafka_consumer, (["orders"],), {"listener": traced})
    assert given == [traced]
    given[0].on_partitions_assigned(set(PARTITIONS))
    assigned = {sc.MESSAGING_CONSUMER_GROUP_NAME: "billing", sc.REBALANCE_TYPE: "assigned"}
    assert capotel.metric(sc.REBALANCES, assigned).value == 1  # counted once
