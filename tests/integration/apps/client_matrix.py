"""Run in a virtual environment holding the *oldest* supported client versions: each client's
traced producer sends one message, each client's consumer handles it with kafkascope, and the
script prints, as JSON, the send and process spans it saw.

Usage: client_matrix.py BOOTSTRAP PREFIX
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from importlib.metadata import version
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import (
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
    observe_lag,
    traced_handler,
)

SENDERS = ("kafka-python", "confluent", "aiokafka")


def send_all(bootstrap: str, prefix: str) -> None:
    kp = TracedProducer(KafkaProducer(bootstrap_servers=bootstrap))
    kp.send(f"{prefix}kafka-python", b"m").get(timeout=30)
    kp.close()
    ck = TracedConfluentProducer(Producer({"bootstrap.servers": bootstrap}))
    ck.produce(f"{prefix}confluent", b"m")
    ck.flush(30)

    async def aio() -> None:
        producer = TracedAIOKafkaProducer(AIOKafkaProducer(bootstrap_servers=bootstrap))
        await producer.start()
        try:
            await producer.send_and_wait(f"{prefix}aiokafka", b"m")
        finally:
            await producer.stop()

    asyncio.run(aio())


@traced_handler
def handle(record: Any) -> None:
    return None


def consume_kafka_python(bootstrap: str, topic: str) -> None:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}-kp",
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    observe_lag(consumer)
    for record in consumer:
        handle(record)
        break
    consumer.close()


def consume_confluent(bootstrap: str, topic: str) -> None:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-ck", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                handle(message)
                return
    finally:
        consumer.close()


def consume_aiokafka(bootstrap: str, topic: str) -> None:
    @traced_handler
    async def ahandle(record: Any) -> None:
        return None

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{topic}-aio",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
            await ahandle(record)
        finally:
            await consumer.stop()

    asyncio.run(run())


def main() -> None:
    bootstrap, prefix = sys.argv[1], sys.argv[2]
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    send_all(bootstrap, prefix)
    for sender in SENDERS:
        topic = f"{prefix}{sender}"
        consume_kafka_python(bootstrap, topic)
        consume_confluent(bootstrap, topic)
        consume_aiokafka(bootstrap, topic)
    out = {
        "versions": {n: version(n) for n in ("kafka-python", "confluent-kafka", "aiokafka")},
        "spans": [
            {
                "name": s.name,
                "span_id": s.context.span_id,
                "parent_id": s.parent.span_id if s.parent else None,
                "trace_id": s.context.trace_id,
            }
            for s in spans.get_finished_spans()
        ],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
