"""One trace between a FastStream service (its ``KafkaTelemetryMiddleware``) and kafkascope.

FastStream runs in this process on aiokafka against the real broker; spans of both sides go to
Jaeger under their own service names and are read back from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from faststream.kafka import KafkaBroker as FastStreamBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from kafka import KafkaProducer
from opentelemetry.sdk.trace import TracerProvider

from kafkascope import TracedProducer, traced_handler
from tests.integration._kafka_clients import consume
from tests.interop.conftest import Traces, one

pytestmark = pytest.mark.interop


@pytest.mark.asyncio
async def test_faststream_publisher_to_traced_handler(
    kafka_broker: KafkaBroker,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    unique: str,
) -> None:
    topic = kafka_broker.create_topic(f"fs2k-{unique}")
    publisher, consumer = f"faststream-orders-{unique}", f"py-billing-{unique}"
    broker = FastStreamBroker(
        kafka_broker.bootstrap_servers,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=python_service(publisher))],
    )
    await broker.start()
    try:
        await broker.publish(b'{"order": 1}', topic)
    finally:
        await broker.stop()

    @traced_handler(group="billing", tracer_provider=python_service(consumer))
    def handle(record: Any) -> None:
        return None

    await asyncio.to_thread(
        consume, kafka_broker.bootstrap_servers, topic, f"billing-{unique}", 1, handle
    )

    spans = traces.of_service(consumer, spans=3)
    process = one(spans, service=consumer, kind="consumer")
    faststream = {s.span_id: s for s in spans if s.service == publisher}
    # FastStream injects the context of its "{topic} create" span; "{topic} publish" is its child.
    parent = faststream[process.parent_id or ""]
    assert (parent.name, parent.kind) == (f"{topic} create", "producer")
    assert {s.name for s in faststream.values()} == {f"{topic} create", f"{topic} publish"}
    assert len({s.trace_id for s in spans}) == 1


@pytest.mark.asyncio
async def test_traced_producer_to_faststream_subscriber(
    kafka_broker: KafkaBroker,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    unique: str,
) -> None:
    topic = kafka_broker.create_topic(f"k2fs-{unique}")
    producer, subscriber = f"py-orders-{unique}", f"faststream-billing-{unique}"
    broker = FastStreamBroker(
        kafka_broker.bootstrap_servers,
        middlewares=[KafkaTelemetryMiddleware(tracer_provider=python_service(subscriber))],
    )
    received = asyncio.Event()

    @broker.subscriber(topic, group_id=f"billing-{unique}", auto_offset_reset="earliest")
    async def billing(body: dict[str, int]) -> None:
        received.set()

    await broker.start()
    try:
        sender = TracedProducer(
            KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=0),
            tracer_provider=python_service(producer),
        )
        try:
            await asyncio.to_thread(lambda: sender.send(topic, b'{"order": 1}').get(timeout=30))
        finally:
            sender.close()
        await asyncio.wait_for(received.wait(), timeout=60)
    finally:
        await broker.stop()

    spans = traces.of_service(producer, spans=2)
    send = one(spans, service=producer, kind="producer")
    process = one(spans, service=subscriber, kind="consumer")
    assert process.parent_id == send.span_id
    assert process.name == f"{topic} process"
