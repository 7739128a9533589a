"""Chosen headers, the conversation id and body sizes on the real broker, for every client:
a message crossing kafka-python, confluent-kafka and aiokafka, the zero-code hooks, and a
hostile message that keeps every bound."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer
from devstack.kafka import KafkaBroker
from kafka import KafkaProducer
from kafka.serializer import Serializer
from opentelemetry.sdk.trace import ReadableSpan

from kafkascope import (
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
    traced_handler,
)
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import MAX_HEADERS, MAX_VALUE_LENGTH, parse_patterns
from kafkascope.testing import Capotel, assert_parent
from tests.integration import _kafka_clients as clients

pytestmark = pytest.mark.integration

ORIGIN_HEADERS = [
    ("tenant", b"acme"),
    ("correlation-id", b"order-7"),
    ("x-app-zone", b"eu-west"),
    ("authorization", b"Bearer secret"),
    ("x-internal-route", b"r9"),
]
CAPTURED = {
    "messaging.header.tenant": ("acme",),
    "messaging.header.correlation_id": ("order-7",),
    "messaging.header.x_app_zone": ("eu-west",),
}


@pytest.fixture
def chosen() -> None:
    """What an operator sets: a few headers by glob, the conversation id, sizes."""
    _settings.update(
        capture_headers=parse_patterns(
            "tenant,correlation-id,x-*,!x-internal-*", "OTEL_PYTHON_KAFKASCOPE_CAPTURE_HEADERS"
        ),
        conversation_id_header="correlation-id",
        capture_sizes=True,
    )


def _app_headers(headers: Any) -> list[tuple[str, bytes]]:
    """The application's headers of a consumed record, to forward (not the propagation ones)."""
    return [
        (k if isinstance(k, str) else k.decode(), bytes(v))
        for k, v in headers or []
        if k not in ("traceparent", "tracestate", "baggage", "kafkascope-pipeline-start")
    ]


def _assert_chosen(span: ReadableSpan, size: int) -> None:
    attrs = span.attributes or {}
    captured = {k: v for k, v in attrs.items() if k.startswith("messaging.header.")}
    assert captured == CAPTURED, span.name
    assert attrs[sc.MESSAGING_MESSAGE_CONVERSATION_ID] == "order-7"
    assert attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] == size, span.name


def test_a_message_crossing_the_three_clients_carries_its_headers_and_sizes_on_every_span(
    capotel: Capotel, kafka_broker: KafkaBroker, topic_factory: Callable[..., str], chosen: None
) -> None:
    servers = kafka_broker.bootstrap_servers
    first, second, third = topic_factory("hdr-a"), topic_factory("hdr-b"), topic_factory("hdr-c")
    body = b"x" * 900

    raw = clients.producer(servers)
    try:
        TracedProducer(raw).send(first, body, headers=ORIGIN_HEADERS).get(timeout=clients.WAIT)
    finally:
        raw.close(timeout=10)

    @traced_handler
    def forward_with_confluent(msg: Any) -> None:
        sender = TracedConfluentProducer(Producer({"bootstrap.servers": servers}))
        sender.produce(second, msg.value() + b"!", headers=_app_headers(msg.headers()))
        assert sender.flush(clients.WAIT) == 0

    clients.receive_confluent(servers, first, forward_with_confluent)

    @traced_handler
    async def forward_with_aiokafka(record: Any) -> None:
        producer = TracedAIOKafkaProducer(AIOKafkaProducer(bootstrap_servers=servers))
        async with producer:
            await producer.send_and_wait(
                third, record.value + b"?!", headers=_app_headers(record.headers)
            )

    asyncio.run(clients.receive_aiokafka(servers, second, forward_with_aiokafka))

    @traced_handler
    def last(record: Any) -> None:
        return None

    clients.receive_kafka_python(servers, third, last)

    for topic, size in ((first, 900), (second, 901), (third, 903)):
        send, process = capotel.span(f"send {topic}"), capotel.span(f"process {topic}")
        assert_parent(process, send)
        _assert_chosen(send, size)
        _assert_chosen(process, size)
    for topic, size, operation in (
        (first, 900, "send"),
        (first, 900, "process"),
        (third, 903, "process"),
    ):
        point = capotel.metric(
            sc.BODY_SIZE,
            {sc.MESSAGING_DESTINATION_NAME: topic, sc.MESSAGING_OPERATION_TYPE: operation},
        )
        assert (point.count, point.sum) == (1, size)


class _Json(Serializer):  # type: ignore[misc]  # kafka-python ships no type hints
    def serialize(self, topic: str, headers: Any, data: Any) -> bytes:
        return json.dumps(data).encode()


def test_a_serialized_value_has_the_size_of_its_bytes_on_send_and_process(
    capotel: Capotel, kafka_broker: KafkaBroker, topic: str, chosen: None
) -> None:
    servers = kafka_broker.bootstrap_servers
    order = {"order": 7, "items": ["a", "b"]}
    raw = KafkaProducer(bootstrap_servers=servers, value_serializer=_Json())
    try:
        TracedProducer(raw).send(topic, order).get(timeout=clients.WAIT)
    finally:
        raw.close(timeout=10)
    clients.receive_kafka_python(servers, topic, traced_handler(lambda record: None))
    size = len(json.dumps(order).encode())
    for name in (f"send {topic}", f"process {topic}"):
        assert (capotel.span(name).attributes or {})[sc.MESSAGING_MESSAGE_BODY_SIZE] == size


def test_a_tombstone_is_size_zero_and_flagged_on_both_spans(
    capotel: Capotel, kafka_broker: KafkaBroker, topic: str, chosen: None
) -> None:
    servers = kafka_broker.bootstrap_servers
    raw = clients.producer(servers)
    try:
        TracedProducer(raw).send(topic, None, key=b"gone").get(timeout=clients.WAIT)
    finally:
        raw.close(timeout=10)
    clients.receive_confluent(servers, topic, traced_handler(lambda msg: None))
    for name in (f"send {topic}", f"process {topic}"):
        attrs = capotel.span(name).attributes or {}
        assert attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] == 0
        assert attrs[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] is True


def test_zero_code_spans_carry_the_chosen_headers(
    capotel: Capotel, instrumented: None, kafka_broker: KafkaBroker, topic: str, chosen: None
) -> None:
    servers = kafka_broker.bootstrap_servers
    producer = KafkaProducer(bootstrap_servers=servers)
    try:
        producer.send(topic, b"12345", headers=ORIGIN_HEADERS).get(timeout=clients.WAIT)
    finally:
        producer.close(timeout=10)
    reader = clients.consumer(servers, topic, clients.new_group(), consumer_timeout_ms=10_000)
    try:
        next(iter(reader))
        next(iter(reader), None)  # asking for the next record ends the first one's span
    finally:
        reader.close()
    _assert_chosen(capotel.span(f"send {topic}"), 5)
    _assert_chosen(capotel.span(f"process {topic}"), 5)


def test_a_hostile_message_keeps_every_bound(
    capotel: Capotel, kafka_broker: KafkaBroker, topic: str
) -> None:
    _settings.update(capture_headers=parse_patterns("*", "capture_headers"))
    servers = kafka_broker.bootstrap_servers
    headers: list[tuple[str, str | bytes | None]] = [("huge", b"\xff" * 200_000), ("token", b"t")]
    headers += [(f"h{i}", bytes([i % 256]) * 3) for i in range(3000)]
    sender = Producer({"bootstrap.servers": servers, "message.max.bytes": 2_000_000})
    sender.produce(topic, b"v", headers=headers)
    assert sender.flush(clients.WAIT) == 0
    clients.receive_confluent(servers, topic, traced_handler(lambda msg: None))
    attrs = capotel.span(f"process {topic}").attributes or {}
    captured = {k: v for k, v in attrs.items() if k.startswith("messaging.header.")}
    assert len(captured) == MAX_HEADERS
    assert captured["messaging.header.huge"] == ("\ufffd" * MAX_VALUE_LENGTH,)
    assert "messaging.header.token" not in captured
