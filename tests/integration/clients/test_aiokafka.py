"""aiokafka on the real broker: every traced producer's message continued by an aiokafka
consumer, consumer lag and time lag, client ids."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from devstack.kafka import KafkaBroker
from kafka import TopicPartition

from kafkascope import TracedAIOKafkaProducer, observe_lag, process_span, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from tests.integration import _kafka_clients as clients
from tests.integration._kafka_clients import WAIT

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
@pytest.mark.parametrize("sender", clients.SENDERS)
async def test_every_sender_is_continued_by_an_aiokafka_receiver(
    capotel, kafka_broker: KafkaBroker, topic, sender
):
    servers = kafka_broker.bootstrap_servers
    await clients.send_async(sender, servers, topic)
    handled: list[Any] = []

    @traced_handler(group="matrix")
    async def handle(record):
        await asyncio.sleep(0)
        handled.append(record)

    await clients.receive_aiokafka(servers, topic, handle)
    assert len(handled) == 1
    clients.assert_continued(capotel, topic, servers)


# ---------------------------------------------------------------- lag
def _assigned_consumer(servers: str, topic: str, group: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    consumer.assign([TopicPartition(topic, 0)])
    return consumer


@pytest.mark.asyncio
async def test_aiokafka_consumer_lag(capotel, kafka_broker: KafkaBroker, topic):
    clients.fill(kafka_broker.bootstrap_servers, topic, 5)
    group = clients.new_group()
    consumer = _assigned_consumer(kafka_broker.bootstrap_servers, topic, group)
    await consumer.start()
    observer = observe_lag(consumer)  # the group is read from the consumer
    try:
        for _ in range(2):
            await asyncio.wait_for(consumer.getone(), WAIT)
        assert clients.consumer_lag(capotel, topic, group) == 3
        for _ in range(3):
            await asyncio.wait_for(consumer.getone(), WAIT)
        assert clients.consumer_lag(capotel, topic, group) == 0
    finally:
        observer.close()
        await consumer.stop()


@pytest.mark.asyncio
async def test_aiokafka_consumer_time_lag(capotel, kafka_broker: KafkaBroker, topic):
    clients.fill(kafka_broker.bootstrap_servers, topic, 5)
    group = clients.new_group()
    consumer = _assigned_consumer(kafka_broker.bootstrap_servers, topic, group)
    await consumer.start()
    observer = observe_lag(consumer)
    try:
        for _ in range(2):
            record = await asyncio.wait_for(consumer.getone(), WAIT)
            with process_span(record, group=group):
                pass
        age = time.time() - record.timestamp / 1000
        assert capotel.time_lag(topic, 0) == pytest.approx(age, abs=1.0)
        for _ in range(3):
            with process_span(await asyncio.wait_for(consumer.getone(), WAIT), group=group):
                pass
        assert capotel.time_lag(topic, 0) == 0.0
        consumer.unsubscribe()
        assert list(observer.time_lag_observations()) == []  # revoked: no longer reported
    finally:
        observer.close()
        await consumer.stop()


# ---------------------------------------------------------------- client id
@pytest.mark.asyncio
async def test_aiokafka_producer_records_its_client_id(capotel, kafka_broker: KafkaBroker, topic):
    aio = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, client_id="orders-aio")
    async with TracedAIOKafkaProducer(aio) as producer:
        await asyncio.wait_for(producer.send_and_wait(topic, b"d"), WAIT)
    ids = [s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"send {topic}")]
    assert ids == ["orders-aio"]


@pytest.mark.asyncio
async def test_zero_code_aiokafka_consumer_records_its_client_id(capotel, kafka_broker, topic):
    servers = kafka_broker.bootstrap_servers
    clients.fill(servers, topic, 1)
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        aio = AIOKafkaConsumer(
            topic,
            bootstrap_servers=servers,
            group_id=clients.new_group(),
            client_id="billing-aio",
            auto_offset_reset="earliest",
        )
        await aio.start()
        try:
            await asyncio.wait_for(aio.getone(), WAIT)
        finally:
            await aio.stop()
    finally:
        instrumentor.uninstrument()
    ids = {
        s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"process {topic}")
    }
    assert ids == {"billing-aio"}
