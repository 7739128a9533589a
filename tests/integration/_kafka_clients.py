"""The three clients' producers and consumers for the integration tests, with bounded waits.

One section per client (kafka-python, confluent-kafka, aiokafka): making a producer or
consumer, sending one traced message (``send_<client>``), receiving one into a handler
(``receive_<client>``). Then what tests of several clients share: the sender matrix, the check
that a process span continued its send span, and consumer lag as ``capotel`` reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from devstack.kafka import subscribe_once_visible
from devstack.wait import wait_until
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafkascope import (
    LagObserver,
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
)
from kafkascope._adapters.confluent import ConfluentSnapshot
from kafkascope._core import semconv as sc
from kafkascope.testing import (
    Capotel,
    assert_messaging_attributes,
    assert_parent,
    assert_same_trace,
)

WAIT = 30.0
"""Upper bound of every wait on the broker, in seconds."""


def new_group(prefix: str = "g") -> str:
    """A consumer group no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- kafka-python
def producer(bootstrap_servers: str) -> KafkaProducer:
    """A kafka-python producer that sends at once and waits for every replica."""
    return KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=0)


def consumer(bootstrap_servers: str, topic: str, group: str, **configs: Any) -> KafkaConsumer:
    """A kafka-python group consumer reading ``topic`` from the beginning."""
    found = KafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **configs,
    )
    subscribe_once_visible(found, topic)
    return found


def consume(
    bootstrap_servers: str,
    topic: str,
    group: str,
    count: int,
    handle: Callable[[Any], object],
    *,
    timeout: float = WAIT,
) -> list[Any]:
    """Poll until ``count`` records were handled (each with ``handle``), or fail at ``timeout``.

    A handler's exception is kept and the loop goes on, as a consumer service would.
    """
    seen: list[Any] = []
    reader = consumer(bootstrap_servers, topic, group)

    def poll() -> None:
        for records in reader.poll(timeout_ms=500).values():
            for record in records:
                seen.append(record)
                # A handler's exception is recorded on its span; the service goes on.
                with contextlib.suppress(Exception):
                    handle(record)
        reader.commit()

    try:
        wait_until(
            lambda: len(seen) >= count,
            timeout,
            lambda: f"{count} records from {topic} (consumed {len(seen)})",
            step=poll,
        )
    finally:
        reader.close()
    return seen


def poll_batch(
    bootstrap_servers: str, topic: str, group: str, count: int, *, timeout: float = WAIT
) -> dict[Any, list[Any]]:
    """One ``poll()`` result holding ``count`` records (polls until all have arrived)."""
    reader = consumer(bootstrap_servers, topic, group, max_poll_records=count)
    merged: dict[Any, list[Any]] = {}

    def poll() -> None:
        for partition, records in reader.poll(timeout_ms=500).items():
            merged.setdefault(partition, []).extend(records)

    try:
        wait_until(
            lambda: sum(map(len, merged.values())) >= count,
            timeout,
            f"{count} records polled from {topic}",
            step=poll,
        )
    finally:
        reader.close()
    return merged


def send_kafka_python(servers: str, topic: str) -> None:
    """One message (key ``k``) through a :class:`TracedProducer`, acknowledged."""
    raw = producer(servers)
    try:
        TracedProducer(raw).send(topic, b"m", key=b"k").get(timeout=WAIT)
    finally:
        raw.close(timeout=10)


def receive_kafka_python(servers: str, topic: str, handle: Callable[[Any], object]) -> None:
    """The first record of partition 0 into ``handle`` (assigned, not subscribed: no group
    rebalance to wait for)."""
    reader = KafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    try:
        reader.assign([TopicPartition(topic, 0)])
        record = wait_until(
            lambda: next(
                (batch[0] for batch in reader.poll(timeout_ms=200).values() if batch), None
            ),
            WAIT,
            f"a record from {topic} for a kafka-python consumer",
            interval=0,  # poll() waits itself
        )
        handle(record)
    finally:
        reader.close()


# ---------------------------------------------------------------- confluent-kafka
def confluent_consumer(
    bootstrap_servers: str, topic: str | None = None, *, group: str | None = None
) -> Any:
    """A confluent-kafka group consumer from the beginning, in ``group`` (a fresh one if not
    given), subscribed to ``topic`` if given; kafkascope's instrumented class when the test
    instrumented the clients first."""
    import confluent_kafka  # imported now: the class the application would get

    found = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group or new_group(),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    if topic is not None:
        found.subscribe([topic])
    return found


def poll_confluent(reader: Consumer, topic: str) -> Any:
    """The next message a confluent-kafka consumer polls without error."""

    def polled() -> list[Any]:
        msg = reader.poll(0.2)  # in a list: a Message of an empty value has len() 0
        return [msg] if msg is not None and msg.error() is None else []

    (msg,) = wait_until(
        polled, WAIT, f"a message from {topic} for a confluent consumer", interval=0
    )
    return msg


def send_confluent(servers: str, topic: str) -> None:
    """One message (key ``k``) through a :class:`TracedConfluentProducer`, delivered."""
    reports: list[tuple[Any, Any]] = []
    sender = TracedConfluentProducer(
        Producer({"bootstrap.servers": servers, "linger.ms": 0}), server=servers
    )
    sender.produce(topic, b"m", key=b"k", on_delivery=lambda err, msg: reports.append((err, msg)))
    assert sender.flush(WAIT) == 0
    ((err, _),) = reports
    assert err is None


def receive_confluent(servers: str, topic: str, handle: Callable[[Any], object]) -> None:
    """The first message of partition 0 into ``handle`` (assigned, not subscribed)."""
    reader = confluent_consumer(servers)
    try:
        reader.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        handle(poll_confluent(reader, topic))
    finally:
        reader.close()


# ---------------------------------------------------------------- aiokafka
async def send_aiokafka(servers: str, topic: str) -> None:
    """One message (key ``k``) through a :class:`TracedAIOKafkaProducer`, acknowledged."""
    async with TracedAIOKafkaProducer(AIOKafkaProducer(bootstrap_servers=servers)) as sender:
        await asyncio.wait_for(sender.send_and_wait(topic, b"m", key=b"k"), WAIT)


async def receive_aiokafka(
    servers: str, topic: str, handle: Callable[[Any], Awaitable[object]]
) -> None:
    """The first record of partition 0 into the async ``handle`` (assigned, not subscribed)."""
    reader = AIOKafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    reader.assign([TopicPartition(topic, 0)])
    await reader.start()
    try:
        await handle(await asyncio.wait_for(reader.getone(), WAIT))
    finally:
        await reader.stop()


# ---------------------------------------------------------------- what several clients share
SENDERS = ("kafka-python", "confluent", "aiokafka")


def send(sender: str, servers: str, topic: str) -> None:
    """One message through the traced producer of ``sender`` (one of :data:`SENDERS`)."""
    if sender == "kafka-python":
        send_kafka_python(servers, topic)
    elif sender == "confluent":
        send_confluent(servers, topic)
    else:
        asyncio.run(send_aiokafka(servers, topic))


async def send_async(sender: str, servers: str, topic: str) -> None:
    """:func:`send`, from inside a running event loop."""
    if sender == "aiokafka":
        await send_aiokafka(servers, topic)
    else:
        send(sender, servers, topic)


def assert_continued(capotel: Capotel, topic: str, servers: str) -> None:
    """The process span of the message on partition 0, offset 0, key ``k`` (group ``matrix``)
    is a child of its send span, and both carry the messaging attributes."""
    send_span = capotel.span(f"send {topic}")
    process = capotel.span(f"process {topic}")
    assert_same_trace(send_span, process)
    assert_parent(process, send_span)
    host, port = servers.split(":")
    on_partition_0 = {
        sc.MESSAGING_DESTINATION_NAME: topic,
        sc.MESSAGING_DESTINATION_PARTITION_ID: "0",
        sc.MESSAGING_KAFKA_OFFSET: 0,
        sc.MESSAGING_KAFKA_MESSAGE_KEY: "k",
    }
    assert_messaging_attributes(
        send_span,
        operation="send",
        expected={**on_partition_0, sc.SERVER_ADDRESS: host, sc.SERVER_PORT: int(port)},
    )
    assert_messaging_attributes(
        process, expected={**on_partition_0, sc.MESSAGING_CONSUMER_GROUP_NAME: "matrix"}
    )


def fill(servers: str, topic: str, count: int) -> None:
    """``count`` plain messages on ``topic``, acknowledged."""
    raw = producer(servers)
    try:
        for i in range(count):
            raw.send(topic, f"m{i}".encode())
        raw.flush(timeout=WAIT)
    finally:
        raw.close(timeout=10)


def consumer_lag(capotel: Capotel, topic: str, group: str) -> float | None:
    """The consumer lag gauge of partition 0 of ``topic`` for ``group``."""
    return capotel.metric(
        sc.CONSUMER_LAG,
        {
            sc.MESSAGING_DESTINATION_NAME: topic,
            sc.MESSAGING_DESTINATION_PARTITION_ID: "0",
            sc.MESSAGING_CONSUMER_GROUP_NAME: group,
        },
    ).value


def beat_fresh(observer: LagObserver) -> None:
    """A plain confluent consumer's loop beat, once the last snapshot is due for renewal."""
    time.sleep(ConfluentSnapshot.REFRESH)
    observer.beat()
