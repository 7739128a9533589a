"""Rebalance telemetry for every client on the real broker, explicit and zero-code; the
application's own listener or callbacks still run, and their exceptions still reach it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from devstack.kafka import KafkaBroker, subscribe_once_visible
from devstack.wait import wait_until

from kafkascope import traced_rebalance_callbacks, traced_rebalance_listener
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from tests.integration import _kafka_clients as clients

pytestmark = pytest.mark.integration

WAIT = 30.0


@pytest.fixture
def two_partitions(topic_factory: Callable[..., str]) -> str:
    return topic_factory(partitions=2)


def _assert_recorded(capotel: Any, group: str, topic: str, kind: str, times: int = 1) -> None:
    wanted = {sc.MESSAGING_CONSUMER_GROUP_NAME: group, sc.REBALANCE_TYPE: kind}
    assert capotel.metric(sc.REBALANCES, wanted).value == times
    logs = [
        r
        for r in capotel.logs
        if (r.log_record.attributes or {}).get(sc.MESSAGING_CONSUMER_GROUP_NAME) == group
        and (r.log_record.attributes or {}).get(sc.REBALANCE_TYPE) == kind
    ]
    assert len(logs) == times
    attributes = logs[-1].log_record.attributes or {}
    assert tuple(attributes[sc.REBALANCE_PARTITIONS]) == (f"{topic}-0", f"{topic}-1")
    assert attributes[sc.CONSUMER_MEMBER_ID]


def _assigned_gauge(capotel: Any, group: str) -> int:
    return int(
        capotel.metric(sc.ASSIGNED_PARTITIONS, {sc.MESSAGING_CONSUMER_GROUP_NAME: group}).value
    )


# ---------------------------------------------------------------- confluent-kafka
def _confluent(servers: str, group: str) -> Any:
    import confluent_kafka

    return confluent_kafka.Consumer(
        {"bootstrap.servers": servers, "group.id": group, "auto.offset.reset": "earliest"}
    )


def test_confluent_callbacks_record_assignment_and_revocation_and_still_run_the_apps(
    capotel, kafka_broker: KafkaBroker, two_partitions: str
) -> None:
    group = clients.new_group("rb")
    consumer = _confluent(kafka_broker.bootstrap_servers, group)
    seen: list[tuple[str, int]] = []
    callbacks = traced_rebalance_callbacks(
        consumer=consumer,
        group=group,
        on_assign=lambda c, ps: seen.append(("assign", len(ps))),
        on_revoke=lambda c, ps: seen.append(("revoke", len(ps))),
    )
    consumer.subscribe([two_partitions], **callbacks)
    try:
        wait_until(lambda: bool(seen), WAIT, "an assignment", step=lambda: consumer.poll(0.2))
        assert consumer.assignment()  # the client still assigned by itself after our callback
        _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_ASSIGNED)
        assert _assigned_gauge(capotel, group) == 2
    finally:
        consumer.close()
    assert seen == [("assign", 2), ("revoke", 2)]
    _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_REVOKED)


def test_zero_code_confluent_subscribe_records_and_the_apps_exception_surfaces_from_poll(
    capotel, instrumented: None, kafka_broker: KafkaBroker, two_partitions: str
) -> None:
    group = clients.new_group("rb")
    consumer = _confluent(kafka_broker.bootstrap_servers, group)

    def on_assign(client: Any, partitions: list[Any]) -> None:
        raise ValueError("the application's own failure")

    consumer.subscribe([two_partitions], on_assign=on_assign)
    try:
        with pytest.raises(ValueError, match="the application's own failure"):
            wait_until(
                lambda: False, WAIT, "the callback's exception", step=lambda: consumer.poll(0.2)
            )
        _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_ASSIGNED)
    finally:
        consumer.close()


# ---------------------------------------------------------------- aiokafka
async def _aiokafka_run(
    servers: str, topic: str, group: str, listener: Any, wrap: bool
) -> list[str]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        given = traced_rebalance_listener(listener, consumer=consumer) if wrap else listener
        consumer.subscribe([topic], listener=given)

        async def assigned() -> None:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)

        await asyncio.wait_for(assigned(), WAIT)
    finally:
        await consumer.stop()
    return listener.calls  # type: ignore[no-any-return]


def _aiokafka_listener() -> Any:
    from aiokafka import ConsumerRebalanceListener

    class Mine(ConsumerRebalanceListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def on_partitions_revoked(self, revoked: Any) -> None:
            await asyncio.sleep(0)
            self.calls.append(f"revoked {len(revoked)}")

        def on_partitions_assigned(self, assigned: Any) -> None:  # a sync one is allowed too
            self.calls.append(f"assigned {len(assigned)}")

    return Mine()


@pytest.mark.parametrize("zero_code", [False, True], ids=["explicit", "zero-code"])
def test_aiokafka_listener_records_rebalances_and_still_runs_the_apps(
    capotel, kafka_broker: KafkaBroker, two_partitions: str, zero_code: bool
) -> None:
    group = clients.new_group("rb")
    listener = _aiokafka_listener()
    instrumentor = KafkascopeInstrumentor()
    if zero_code:
        instrumentor.instrument()
    try:
        calls = asyncio.run(
            _aiokafka_run(
                kafka_broker.bootstrap_servers, two_partitions, group, listener, not zero_code
            )
        )
    finally:
        if zero_code:
            instrumentor.uninstrument()
    assert calls == ["revoked 0", "assigned 2"]  # aiokafka revokes nothing when it stops
    _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_ASSIGNED)
    # A stopped consumer's partitions are no longer reported.
    assert all(p.name != sc.ASSIGNED_PARTITIONS or not p.value for p in capotel.metrics())


# ---------------------------------------------------------------- kafka-python, zero-code
def test_zero_code_kafka_python_subscribe_wraps_the_apps_listener(
    capotel, instrumented: None, kafka_broker: KafkaBroker, two_partitions: str
) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer

    class Mine(ConsumerRebalanceListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.assigned: list[int] = []

        def on_partitions_revoked(self, revoked: Any) -> None:
            return None

        def on_partitions_assigned(self, assigned: Any) -> None:
            self.assigned.append(len(assigned))

    group = clients.new_group("rb")
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    mine = Mine()
    try:
        subscribe_once_visible(consumer, two_partitions, listener=mine)
        assert consumer._subscription.rebalance_listener is not mine  # wrapped, not replaced
        wait_until(
            lambda: bool(mine.assigned),
            WAIT,
            "an assignment",
            step=lambda: consumer.poll(timeout_ms=200),
        )
        # A fresh group may settle in more than one round: as many as the app's listener saw.
        rounds = len(mine.assigned)
        _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_ASSIGNED, rounds)
        assert _assigned_gauge(capotel, group) == 2
    finally:
        consumer.close()
    assert set(mine.assigned) == {2}
    # close() told the wrapped listener; the assignment diff did not count it again.
    _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_REVOKED)


def test_zero_code_kafka_python_without_a_listener_installs_none_and_records_the_assignment(
    capotel, instrumented: None, kafka_broker: KafkaBroker, two_partitions: str
) -> None:
    from kafka import KafkaConsumer

    group = clients.new_group("rb")
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    try:
        subscribe_once_visible(consumer, two_partitions)
        wait_until(
            lambda: bool(consumer.assignment()),
            WAIT,
            "an assignment",
            step=lambda: consumer.poll(200),
        )
        assert consumer._subscription.rebalance_listener is None
        _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_ASSIGNED)
        assert _assigned_gauge(capotel, group) == 2
    finally:
        consumer.close()
    _assert_recorded(capotel, group, two_partitions, sc.REBALANCE_REVOKED)


def test_uninstrument_unwraps_subscribe() -> None:
    import aiokafka
    import kafka

    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        assert hasattr(vars(kafka.KafkaConsumer)["subscribe"], "__wrapped__")
        assert hasattr(vars(aiokafka.AIOKafkaConsumer)["subscribe"], "__wrapped__")
    finally:
        instrumentor.uninstrument()
    assert not hasattr(vars(kafka.KafkaConsumer)["subscribe"], "__wrapped__")
    assert not hasattr(vars(aiokafka.AIOKafkaConsumer)["subscribe"], "__wrapped__")
