"""kafka-python producers and consumers for the integration tests, with bounded waits."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from devstack.kafka import subscribe_once_visible
from kafka import KafkaConsumer, KafkaProducer


def producer(bootstrap_servers: str) -> KafkaProducer:
    """A producer that sends at once and waits for every replica."""
    return KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=0)


def consumer(bootstrap_servers: str, topic: str, group: str, **configs: Any) -> KafkaConsumer:
    """A group consumer reading ``topic`` from the beginning."""
    found = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **configs,
    )
    subscribe_once_visible(found, topic)
    return found


def confluent_consumer(bootstrap_servers: str, topic: str) -> Any:
    """A confluent-kafka group consumer of ``topic`` from the beginning, in a fresh group
    (kafkascope's instrumented class when the test instrumented the clients first)."""
    import confluent_kafka  # imported now: the class the application would get

    found = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    found.subscribe([topic])
    return found


def consume(
    bootstrap_servers: str,
    topic: str,
    group: str,
    count: int,
    handle: Callable[[Any], object],
    *,
    timeout: float = 30.0,
) -> list[Any]:
    """Poll until ``count`` records were handled (each with ``handle``), or fail at ``timeout``.

    A handler's exception is kept and the loop goes on, as a consumer service would.
    """
    seen: list[Any] = []
    reader = consumer(bootstrap_servers, topic, group)
    try:
        deadline = time.monotonic() + timeout
        while len(seen) < count and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=500).values():
                for record in records:
                    seen.append(record)
                    # A handler's exception is recorded on its span; the service goes on.
                    with contextlib.suppress(Exception):
                        handle(record)
            reader.commit()
    finally:
        reader.close()
    if len(seen) < count:
        raise AssertionError(f"consumed {len(seen)} of {count} records from {topic} in {timeout}s")
    return seen


def poll_batch(
    bootstrap_servers: str, topic: str, group: str, count: int, *, timeout: float = 30.0
) -> dict[Any, list[Any]]:
    """One ``poll()`` result holding ``count`` records (polls until all have arrived)."""
    reader = consumer(bootstrap_servers, topic, group, max_poll_records=count)
    merged: dict[Any, list[Any]] = {}
    try:
        deadline = time.monotonic() + timeout
        while sum(map(len, merged.values())) < count and time.monotonic() < deadline:
            for partition, records in reader.poll(timeout_ms=500).items():
                merged.setdefault(partition, []).extend(records)
    finally:
        reader.close()
    if sum(map(len, merged.values())) < count:
        raise AssertionError(f"polled fewer than {count} records from {topic}")
    return merged
