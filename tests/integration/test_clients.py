"""kafka-python, confluent-kafka and aiokafka together on the real broker.

Every traced producer's message is continued into its trace by a handler on every client's
consumer; contrib's kafka-python instrumentation interoperates both ways; confluent delivery
failures and consumer lag of the other clients are measured.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from devstack.kafka import KafkaBroker
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from opentelemetry.instrumentation.kafka import KafkaInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kafkascope import (
    LagObserver,
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
    observe_lag,
    process_span,
    traced_handler,
)
from kafkascope._adapters.confluent import ConfluentSnapshot
from kafkascope._core import semconv as sc
from kafkascope.testing import (
    Capotel,
    assert_messaging_attributes,
    assert_parent,
    assert_same_trace,
)

from . import _kafka_clients as clients

pytestmark = pytest.mark.integration

WAIT = 30.0
"""Upper bound of every wait on the broker, in seconds."""
SENDERS = ("kafka-python", "confluent", "aiokafka")


def _group() -> str:
    return f"group-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- senders
def _send_kafka_python(servers: str, topic: str) -> None:
    raw = clients.producer(servers)
    try:
        TracedProducer(raw).send(topic, b"m", key=b"k").get(timeout=WAIT)
    finally:
        raw.close(timeout=10)


def _send_confluent(servers: str, topic: str) -> None:
    reports: list[tuple[Any, Any]] = []
    producer = TracedConfluentProducer(
        Producer({"bootstrap.servers": servers, "linger.ms": 0}), server=servers
    )
    producer.produce(topic, b"m", key=b"k", on_delivery=lambda err, msg: reports.append((err, msg)))
    assert producer.flush(WAIT) == 0
    ((err, _),) = reports
    assert err is None


async def _send_aiokafka(servers: str, topic: str) -> None:
    async with TracedAIOKafkaProducer(AIOKafkaProducer(bootstrap_servers=servers)) as producer:
        await asyncio.wait_for(producer.send_and_wait(topic, b"m", key=b"k"), WAIT)


def _send(sender: str, servers: str, topic: str) -> None:
    if sender == "kafka-python":
        _send_kafka_python(servers, topic)
    elif sender == "confluent":
        _send_confluent(servers, topic)
    else:
        asyncio.run(_send_aiokafka(servers, topic))


async def _send_async(sender: str, servers: str, topic: str) -> None:
    if sender == "aiokafka":
        await _send_aiokafka(servers, topic)
    else:
        _send(sender, servers, topic)


# ---------------------------------------------------------------- receivers
# Partitions are assigned, not subscribed: no group rebalance to wait for.
def _receive_kafka_python(servers: str, topic: str, handle: Callable[[Any], object]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition(topic, 0)])
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    handle(record)
                    return
    finally:
        consumer.close()
    raise AssertionError(f"kafka-python consumer got nothing from {topic} in {WAIT}s")


def _confluent_consumer(servers: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def _confluent_poll(consumer: Consumer, topic: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            return msg
    raise AssertionError(f"confluent consumer got nothing from {topic} in {WAIT}s")


def _receive_confluent(servers: str, topic: str, handle: Callable[[Any], object]) -> None:
    consumer = _confluent_consumer(servers, _group())
    try:
        consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        handle(_confluent_poll(consumer, topic))
    finally:
        consumer.close()


async def _receive_aiokafka(
    servers: str, topic: str, handle: Callable[[Any], Awaitable[object]]
) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    try:
        await handle(await asyncio.wait_for(consumer.getone(), WAIT))
    finally:
        await consumer.stop()


def _assert_continued(capotel, topic: str, servers: str) -> None:
    send = capotel.span(f"send {topic}")
    process = capotel.span(f"process {topic}")
    assert_same_trace(send, process)
    assert_parent(process, send)
    host, port = servers.split(":")
    on_partition_0 = {
        sc.MESSAGING_DESTINATION_NAME: topic,
        sc.MESSAGING_DESTINATION_PARTITION_ID: "0",
        sc.MESSAGING_KAFKA_OFFSET: 0,
        sc.MESSAGING_KAFKA_MESSAGE_KEY: "k",
    }
    assert_messaging_attributes(
        send,
        operation="send",
        expected={**on_partition_0, sc.SERVER_ADDRESS: host, sc.SERVER_PORT: int(port)},
    )
    assert_messaging_attributes(
        process, expected={**on_partition_0, sc.MESSAGING_CONSUMER_GROUP_NAME: "matrix"}
    )


# ---------------------------------------------------------------- (a) the matrix
@pytest.mark.parametrize("receiver", ["kafka-python", "confluent"])
@pytest.mark.parametrize("sender", SENDERS)
def test_every_sender_is_continued_by_a_sync_receiver(
    capotel, kafka_broker: KafkaBroker, topic, sender, receiver
):
    servers = kafka_broker.bootstrap_servers
    _send(sender, servers, topic)
    handled: list[Any] = []

    @traced_handler(group="matrix")
    def handle(record):
        handled.append(record)

    if receiver == "kafka-python":
        _receive_kafka_python(servers, topic, handle)
    else:
        _receive_confluent(servers, topic, handle)
    assert len(handled) == 1
    _assert_continued(capotel, topic, servers)


@pytest.mark.asyncio
@pytest.mark.parametrize("sender", SENDERS)
async def test_every_sender_is_continued_by_an_aiokafka_receiver(
    capotel, kafka_broker: KafkaBroker, topic, sender
):
    servers = kafka_broker.bootstrap_servers
    await _send_async(sender, servers, topic)
    handled: list[Any] = []

    @traced_handler(group="matrix")
    async def handle(record):
        await asyncio.sleep(0)
        handled.append(record)

    await _receive_aiokafka(servers, topic, handle)
    assert len(handled) == 1
    _assert_continued(capotel, topic, servers)


# ---------------------------------------------------------------- (b) contrib
@dataclass
class Contrib:
    """contrib's kafka-python instrumentation, into its own provider, turned on on demand."""

    spans: InMemorySpanExporter
    provider: TracerProvider

    def instrument(self) -> None:
        KafkaInstrumentor().instrument(tracer_provider=self.provider)


@pytest.fixture
def contrib() -> Iterator[Contrib]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    try:
        yield Contrib(spans, provider)
    finally:
        instrumentor = KafkaInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        provider.shutdown()


def test_contribs_instrumented_producer_is_continued_by_our_handler(
    capotel, kafka_broker: KafkaBroker, topic, contrib
):
    contrib.instrument()
    raw = clients.producer(kafka_broker.bootstrap_servers)
    try:
        raw.send(topic, b"from contrib").get(timeout=WAIT)
    finally:
        raw.close(timeout=10)
    (contrib_send,) = contrib.spans.get_finished_spans()
    assert (contrib_send.name, contrib_send.kind) == (f"{topic} send", SpanKind.PRODUCER)

    @traced_handler
    def handle(record):
        return None

    clients.consume(kafka_broker.bootstrap_servers, topic, _group(), 1, handle)
    process = capotel.span(f"process {topic}")
    assert_same_trace(contrib_send, process)
    assert_parent(process, contrib_send)


def test_our_producer_is_continued_by_contribs_instrumented_consumer(
    capotel, kafka_broker: KafkaBroker, topic, contrib
):
    _send_kafka_python(kafka_broker.bootstrap_servers, topic)
    contrib.instrument()
    consumer = clients.consumer(
        kafka_broker.bootstrap_servers, topic, _group(), consumer_timeout_ms=int(WAIT * 1000)
    )
    try:
        record = next(consumer)  # contrib instruments KafkaConsumer.__next__, not poll()
    finally:
        consumer.close()
    assert record.value == b"m"
    (receive,) = contrib.spans.get_finished_spans()
    assert (receive.name, receive.kind) == (f"{topic} receive", SpanKind.CONSUMER)
    send = capotel.span(f"send {topic}")
    assert_same_trace(send, receive)
    assert_parent(receive, send)


def test_with_contrib_also_on_one_traceparent_and_one_trace(
    capotel, kafka_broker: KafkaBroker, topic, contrib
):
    # contrib wraps KafkaProducer.send itself and appends its traceparent unconditionally, so
    # under TracedProducer kafkascope leaves injection to it and keeps its own span current:
    # contrib's send span is a child of ours, and the record carries one traceparent.
    contrib.instrument()
    _send_kafka_python(kafka_broker.bootstrap_servers, topic)
    (contrib_send,) = contrib.spans.get_finished_spans()
    keys: list[list[str]] = []

    @traced_handler
    def handle(record):
        keys.append([key for key, _ in record.headers])

    clients.consume(kafka_broker.bootstrap_servers, topic, _group(), 1, handle)
    assert keys == [["traceparent"]]
    send = capotel.span(f"send {topic}")
    process = capotel.span(f"process {topic}")
    assert_parent(contrib_send, send)
    assert_parent(process, contrib_send)
    assert_same_trace(send, contrib_send, process)


# ---------------------------------------------------------------- (c) confluent failures
def test_confluent_delivery_failure_is_recorded_and_the_users_callback_still_called(
    capotel, kafka_broker: KafkaBroker, request
):
    # The broker refuses the record (the topic's limit is below the producer's): the failure
    # arrives in the delivery report, not from produce().
    topic = kafka_broker.create_topic(
        f"small-{uuid.uuid4().hex[:10]}", configs={"max.message.bytes": "1000"}
    )
    reports: list[tuple[Any, Any]] = []
    producer = TracedConfluentProducer(
        Producer({"bootstrap.servers": kafka_broker.bootstrap_servers, "linger.ms": 0})
    )
    producer.produce(topic, b"x" * 5000, callback=lambda err, msg: reports.append((err, msg)))
    assert producer.flush(WAIT) == 0
    ((err, msg),) = reports
    assert err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert msg.topic() == topic
    send = capotel.span(f"send {topic}")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[sc.ERROR_TYPE] == "MSG_SIZE_TOO_LARGE"
    assert sc.MESSAGING_KAFKA_OFFSET not in send.attributes
    assert [event.name for event in send.events] == ["exception"]
    failed = capotel.metric(
        sc.METRIC_CLIENT_SENT_MESSAGES,
        {sc.MESSAGING_DESTINATION_NAME: topic, sc.ERROR_TYPE: "MSG_SIZE_TOO_LARGE"},
    )
    assert failed.value == 1


def test_confluent_unknown_partition_fails_in_the_report_then_in_produce(
    capotel, kafka_broker: KafkaBroker, topic
):
    reports: list[tuple[Any, Any]] = []
    producer = TracedConfluentProducer(
        Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    )
    # Before the producer has the topic's metadata the message is queued, then fails.
    producer.produce(topic, b"x", partition=7, on_delivery=lambda e, m: reports.append((e, m)))
    assert producer.flush(WAIT) == 0
    assert [err.code() for err, _ in reports] == [KafkaError._UNKNOWN_PARTITION]
    # Once it knows the topic has one partition, produce() itself raises.
    with pytest.raises(KafkaException):
        producer.produce(topic, b"y", partition=7)
    spans = capotel.spans_named(f"send {topic}")
    assert [s.attributes[sc.ERROR_TYPE] for s in spans] == ["_UNKNOWN_PARTITION"] * 2
    assert all(s.attributes[sc.MESSAGING_DESTINATION_PARTITION_ID] == "7" for s in spans)


# ---------------------------------------------------------------- (d) lag
def _fill(servers: str, topic: str, count: int) -> None:
    raw = clients.producer(servers)
    try:
        for i in range(count):
            raw.send(topic, f"m{i}".encode())
        raw.flush(timeout=WAIT)
    finally:
        raw.close(timeout=10)


def _lag(capotel: Capotel, topic: str, group: str) -> float | None:
    return capotel.metric(
        sc.CONSUMER_LAG,
        {
            sc.MESSAGING_DESTINATION_NAME: topic,
            sc.MESSAGING_DESTINATION_PARTITION_ID: "0",
            sc.MESSAGING_CONSUMER_GROUP_NAME: group,
        },
    ).value


@pytest.mark.asyncio
async def test_aiokafka_consumer_lag(capotel, kafka_broker: KafkaBroker, topic):
    _fill(kafka_broker.bootstrap_servers, topic, 5)
    group = _group()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    observer = observe_lag(consumer)  # the group is read from the consumer
    try:
        for _ in range(2):
            await asyncio.wait_for(consumer.getone(), WAIT)
        assert _lag(capotel, topic, group) == 3
        for _ in range(3):
            await asyncio.wait_for(consumer.getone(), WAIT)
        assert _lag(capotel, topic, group) == 0
    finally:
        observer.close()
        await consumer.stop()


def _beat_fresh(observer: LagObserver) -> None:
    """A plain confluent consumer's loop beat, once the last snapshot is due for renewal."""
    time.sleep(ConfluentSnapshot.REFRESH)
    observer.beat()


def test_confluent_consumer_lag(capotel, kafka_broker: KafkaBroker, topic):
    _fill(kafka_broker.bootstrap_servers, topic, 5)
    group = _group()
    consumer = _confluent_consumer(kafka_broker.bootstrap_servers, group)
    observer = observe_lag(consumer, group=group)
    try:
        consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(2):
            _confluent_poll(consumer, topic)
        _beat_fresh(observer)
        assert _lag(capotel, topic, group) == 3
        for _ in range(3):
            _confluent_poll(consumer, topic)
        _beat_fresh(observer)
        assert _lag(capotel, topic, group) == 0
    finally:
        observer.close()
        consumer.close()


def _time_lag(capotel: Capotel, topic: str) -> float:
    return capotel.time_lag(topic, 0)


@pytest.mark.asyncio
async def test_aiokafka_consumer_time_lag(capotel, kafka_broker: KafkaBroker, topic):
    _fill(kafka_broker.bootstrap_servers, topic, 5)
    group = _group()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    observer = observe_lag(consumer)
    try:
        for _ in range(2):
            record = await asyncio.wait_for(consumer.getone(), WAIT)
            with process_span(record, group=group):
                pass
        age = time.time() - record.timestamp / 1000
        assert _time_lag(capotel, topic) == pytest.approx(age, abs=1.0)
        for _ in range(3):
            with process_span(await asyncio.wait_for(consumer.getone(), WAIT), group=group):
                pass
        assert _time_lag(capotel, topic) == 0.0
        consumer.unsubscribe()
        assert list(observer.time_lag_observations()) == []  # revoked: no longer reported
    finally:
        observer.close()
        await consumer.stop()


def test_confluent_consumer_time_lag(capotel, kafka_broker: KafkaBroker, topic):
    _fill(kafka_broker.bootstrap_servers, topic, 5)
    group = _group()
    consumer = _confluent_consumer(kafka_broker.bootstrap_servers, group)
    observer = observe_lag(consumer, group=group)
    try:
        consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        for _ in range(2):
            msg = _confluent_poll(consumer, topic)
            with process_span(msg, group=group):
                pass
        _beat_fresh(observer)
        age = time.time() - msg.timestamp()[1] / 1000
        assert _time_lag(capotel, topic) == pytest.approx(age, abs=1.0)
        for _ in range(3):
            with process_span(_confluent_poll(consumer, topic), group=group):
                pass
        _beat_fresh(observer)
        assert _time_lag(capotel, topic) == 0.0
        consumer.unassign()
        _beat_fresh(observer)
        assert list(observer.time_lag_observations()) == []
    finally:
        observer.close()
        consumer.close()


# ---------------------------------------------------------------- client id
@pytest.mark.asyncio
async def test_every_producer_records_its_own_client_id(capotel, kafka_broker: KafkaBroker, topic):
    servers = kafka_broker.bootstrap_servers
    named = KafkaProducer(bootstrap_servers=servers, client_id="orders-py", linger_ms=0)
    unnamed = KafkaProducer(bootstrap_servers=servers, linger_ms=0)
    try:
        TracedProducer(named).send(topic, b"a").get(timeout=WAIT)
        TracedProducer(unnamed).send(topic, b"b").get(timeout=WAIT)
    finally:
        named.close(timeout=10)
        unnamed.close(timeout=10)
    rd = TracedConfluentProducer(
        Producer({"bootstrap.servers": servers, "client.id": "orders-rd"}), client_id="orders-rd"
    )
    rd.produce(topic, b"c")
    assert rd.flush(WAIT) == 0
    aio = AIOKafkaProducer(bootstrap_servers=servers, client_id="orders-aio")
    async with TracedAIOKafkaProducer(aio) as producer:
        await asyncio.wait_for(producer.send_and_wait(topic, b"d"), WAIT)
    ids = [s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"send {topic}")]
    assert ids[0] == "orders-py"
    assert str(ids[1]).startswith("kafka-python-producer-")  # kafka-python's own default
    assert ids[2:] == ["orders-rd", "orders-aio"]


def test_zero_code_confluent_producer_records_its_client_id(capotel, kafka_broker, topic):
    from kafkascope.instrumentor import KafkascopeInstrumentor

    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        import confluent_kafka

        servers = kafka_broker.bootstrap_servers
        for config in ({"client.id": "orders-rd"}, {}):
            producer = confluent_kafka.Producer({"bootstrap.servers": servers, **config})
            producer.produce(topic, b"m")
            assert producer.flush(WAIT) == 0
    finally:
        instrumentor.uninstrument()
    ids = [s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"send {topic}")]
    assert ids == ["orders-rd", "rdkafka"]  # librdkafka's default when none is configured


@pytest.mark.asyncio
async def test_zero_code_consumers_record_their_client_id(capotel, kafka_broker, topic):
    from kafkascope.instrumentor import KafkascopeInstrumentor

    servers = kafka_broker.bootstrap_servers
    raw = clients.producer(servers)
    try:
        raw.send(topic, b"m").get(timeout=WAIT)
    finally:
        raw.close(timeout=10)
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        import confluent_kafka

        py = KafkaConsumer(
            topic,
            bootstrap_servers=servers,
            group_id=_group(),
            client_id="billing-py",
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(WAIT * 1000),
        )
        next(iter(py))
        py.close()
        rd = confluent_kafka.Consumer(
            {"bootstrap.servers": servers, "group.id": _group(), "client.id": "billing-rd"}
        )
        rd.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
        assert _confluent_poll(rd, topic) is not None
        rd.close()
        aio = AIOKafkaConsumer(
            topic,
            bootstrap_servers=servers,
            group_id=_group(),
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
    assert ids == {"billing-py", "billing-rd", "billing-aio"}
