"""TracedAIOKafkaProducer without a broker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import RecordMetadata, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from kafkascope import TracedAIOKafkaProducer, extract_context
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_messaging_attributes
from tests.unit._producers import BrokenTracerProvider, RecordingAIOKafkaProducer


def _metadata(partition: int = 1, offset: int = 5) -> RecordMetadata:
    return RecordMetadata("orders", partition, TopicPartition("orders", partition), offset, 0, 0, 0)


def _later(callback: Any, *args: Any) -> None:
    """Resolve a future on the next loop iteration, as aiokafka's sender task does."""
    asyncio.get_running_loop().call_soon(callback, *args)


@pytest.mark.asyncio
async def test_aiokafka_send_span_lasts_until_the_returned_future_resolves(capotel):
    inner = RecordingAIOKafkaProducer()
    producer = TracedAIOKafkaProducer(inner)
    future = await producer.send("orders", b"{}", key=b"k1")
    assert future is inner.futures[0]
    assert capotel.spans == []
    _later(future.set_result, _metadata())
    assert await future == _metadata()
    send = capotel.span("send orders")
    assert_messaging_attributes(
        send,
        operation="send",
        expected={
            sc.MESSAGING_DESTINATION_PARTITION_ID: "1",
            sc.MESSAGING_KAFKA_OFFSET: 5,
            sc.MESSAGING_KAFKA_MESSAGE_KEY: "k1",
            sc.SERVER_ADDRESS: "kafka-a",
            sc.SERVER_PORT: 9095,
        },
    )


@pytest.mark.asyncio
async def test_aiokafka_send_and_wait_returns_the_metadata_and_injects_the_context(capotel):
    inner = RecordingAIOKafkaProducer()
    producer = TracedAIOKafkaProducer(inner, server="broker:9092")
    waiting = asyncio.ensure_future(
        producer.send_and_wait("orders", b"{}", headers=[("app", b"1")])
    )
    while not inner.futures:
        await asyncio.sleep(0)
    _later(inner.futures[0].set_result, _metadata(0, 9))
    assert await waiting == _metadata(0, 9)
    headers = inner.sent[0]["headers"]
    assert [key for key, _ in headers] == ["app", "traceparent", "kafkascope-pipeline-start"]
    remote = trace.get_current_span(extract_context(headers)).get_span_context()
    send = capotel.span("send orders")
    assert remote.span_id == send.context.span_id
    assert send.attributes[sc.SERVER_ADDRESS] == "broker"


@pytest.mark.asyncio
async def test_aiokafka_failed_send_records_the_error(capotel):
    inner = RecordingAIOKafkaProducer()
    future = await TracedAIOKafkaProducer(inner).send("orders", b"{}")
    _later(future.set_exception, KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await future
    send = capotel.span("send orders")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[sc.ERROR_TYPE] == "aiokafka.errors.KafkaTimeoutError"
    failed = capotel.metric(
        sc.METRIC_CLIENT_SENT_MESSAGES, {sc.ERROR_TYPE: "aiokafka.errors.KafkaTimeoutError"}
    )
    assert failed.value == 1


@pytest.mark.asyncio
async def test_aiokafka_cancelled_future_ends_the_span_as_cancelled(capotel):
    inner = RecordingAIOKafkaProducer()
    future = await TracedAIOKafkaProducer(inner).send("orders", b"{}")
    _later(future.cancel)
    with pytest.raises(asyncio.CancelledError):
        await future
    assert capotel.span("send orders").attributes[sc.ERROR_TYPE] == (
        "asyncio.exceptions.CancelledError"
    )


@pytest.mark.asyncio
async def test_aiokafka_send_that_raises_is_recorded_and_reraised(capotel):
    class Exploding(RecordingAIOKafkaProducer):
        async def send(self, *args, **kwargs):
            raise KafkaTimeoutError("no metadata")

    with pytest.raises(KafkaTimeoutError, match="no metadata"):
        await TracedAIOKafkaProducer(Exploding()).send("orders", b"{}")
    assert capotel.span("send orders").status.status_code is StatusCode.ERROR


@pytest.mark.asyncio
async def test_aiokafka_async_with_enters_the_wrapped_producer_and_yields_the_wrapper():
    inner = RecordingAIOKafkaProducer()
    producer = TracedAIOKafkaProducer(inner)
    async with producer as entered:
        assert entered is producer
        assert inner.entered
    assert inner.exited
    assert producer.wrapped is inner
    assert producer.client is inner.client


@pytest.mark.asyncio
@pytest.mark.usefixtures("forgiving")
async def test_aiokafka_instrumentation_failure_never_reaches_send():
    inner = RecordingAIOKafkaProducer()
    producer = TracedAIOKafkaProducer(inner, tracer_provider=BrokenTracerProvider())
    future = await producer.send("orders", b"{}")
    _later(future.set_result, _metadata())
    assert await future == _metadata()
    assert inner.sent[0]["headers"] is None


def test_aiokafka_wrapping_something_without_send_is_a_type_error():
    with pytest.raises(TypeError, match="send"):
        TracedAIOKafkaProducer(object())
