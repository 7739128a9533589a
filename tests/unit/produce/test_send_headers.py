"""Captured headers, the conversation id and body sizes on send spans of every traced producer
and of dead letters."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from kafkascope import (
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
    dead_letter,
    process_span,
)
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import parse_patterns
from kafkascope.testing import make_record
from tests.unit._producers import (
    RecordingAIOKafkaProducer,
    RecordingConfluentProducer,
    RecordingProducer,
    ack,
)

HEADERS = [("tenant", b"acme"), ("correlation-id", b"c-42"), ("api-key", b"k")]


def _capture(patterns: str) -> None:
    _settings.update(capture_headers=parse_patterns(patterns, "capture_headers"))


def test_kafka_python_send_span_carries_the_chosen_headers_not_ours(capotel):
    _capture("*")
    _settings.update(conversation_id_header="correlation-id")
    producer = RecordingProducer()
    ack(TracedProducer(producer).send("orders", b"{}", headers=HEADERS))
    attrs = capotel.span("send orders").attributes
    captured = {k: v for k, v in attrs.items() if k.startswith("messaging.header.")}
    assert captured == {
        "messaging.header.tenant": ("acme",),
        "messaging.header.correlation_id": ("c-42",),
    }
    assert attrs[sc.MESSAGING_MESSAGE_CONVERSATION_ID] == "c-42"
    assert any(name == "traceparent" for name, _ in producer.sent[0]["headers"])


def test_the_producers_capture_headers_overrides_the_setting(capotel):
    _capture("tenant")
    ack(TracedProducer(RecordingProducer(), capture_headers="api-key").send(
        "orders", b"{}", headers=HEADERS
    ))  # fmt: skip
    attrs = capotel.span("send orders").attributes
    assert attrs["messaging.header.api_key"] == ("k",)
    assert "messaging.header.tenant" not in attrs


def test_kafka_python_send_span_and_histogram_carry_the_body_size(capotel):
    _settings.update(capture_sizes=True)
    producer = TracedProducer(RecordingProducer())
    ack(producer.send("orders", b"123456"))
    send = capotel.span("send orders")
    assert send.attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] == 6
    point = capotel.metric(sc.BODY_SIZE, {sc.MESSAGING_OPERATION_TYPE: "send"})
    assert (point.count, point.sum) == (1, 6)


def test_a_serialized_value_takes_its_size_from_the_acknowledgement(capotel):
    from kafka.producer.future import RecordMetadata as KafkaMetadata

    _settings.update(capture_sizes=True)
    future = TracedProducer(RecordingProducer()).send("orders", {"id": 1})
    future.success(KafkaMetadata("orders", 0, None, 3, 0, None, 1, 11, 0))
    assert capotel.span("send orders").attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] == 11


def test_a_tombstone_send_is_flagged_and_of_size_zero(capotel):
    _settings.update(capture_sizes=True)
    ack(TracedProducer(RecordingProducer()).send("orders", None, key=b"k"))
    attrs = capotel.span("send orders").attributes
    assert attrs[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] is True
    assert attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] == 0


def test_no_size_or_header_without_the_settings(capotel):
    ack(TracedProducer(RecordingProducer()).send("orders", b"123", headers=HEADERS))
    attrs = capotel.span("send orders").attributes
    assert sc.MESSAGING_MESSAGE_BODY_SIZE not in attrs
    assert [k for k in attrs if k.startswith("messaging.")] == [
        k for k in attrs if k.startswith("messaging.") and not k.startswith("messaging.header.")
    ]
    assert sc.MESSAGING_MESSAGE_CONVERSATION_ID not in attrs


def test_confluent_send_span_carries_headers_and_size(capotel):
    _capture("tenant")
    _settings.update(capture_sizes=True)
    inner = RecordingConfluentProducer()
    TracedConfluentProducer(inner).produce("orders", "héllo", headers=HEADERS)
    inner.deliver()
    attrs = capotel.span("send orders").attributes
    assert attrs["messaging.header.tenant"] == ("acme",)
    assert attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] == len("héllo".encode())


@pytest.mark.asyncio
async def test_aiokafka_send_span_carries_headers_and_size(capotel):
    _capture("tenant")
    _settings.update(capture_sizes=True)
    producer = TracedAIOKafkaProducer(RecordingAIOKafkaProducer())
    future = await producer.send("orders", b"1234", headers=HEADERS)
    future.set_result(RecordMetadata("orders", 0, TopicPartition("orders", 0), 1, 0, 0, 0))
    await future
    await asyncio.sleep(0)  # the done-callbacks run on the next loop iteration
    attrs = capotel.span("send orders").attributes
    assert attrs["messaging.header.tenant"] == ("acme",)
    assert attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] == 4


def test_the_dead_letter_send_span_carries_the_records_headers_and_size(capotel):
    _capture("tenant")
    _settings.update(capture_sizes=True)
    record = make_record("orders", b"1234567", headers=HEADERS)
    with process_span(record):
        future = dead_letter(TracedProducer(RecordingProducer()), record, ValueError("no"))
    ack(future)
    attrs = capotel.span("send orders.dlq").attributes
    assert attrs["messaging.header.tenant"] == ("acme",)
    assert attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] == 7
