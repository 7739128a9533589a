from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError
from opentelemetry.trace import SpanKind, StatusCode

from kafkascope import TracedProducer, extract_context, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_messaging_attributes, assert_parent, make_record
from tests.unit._producers import RecordingProducer, ack


def test_send_span_lasts_until_the_broker_acknowledges(capotel):
    inner = RecordingProducer()
    producer = TracedProducer(inner)
    future = producer.send("orders", b"{}", key=b"k1")
    assert future is inner.futures[0]
    assert capotel.spans == []
    ack(future)
    send = capotel.span("send orders")
    assert send.kind is SpanKind.PRODUCER
    assert_messaging_attributes(
        send,
        operation="send",
        expected={
            sc.MESSAGING_DESTINATION_PARTITION_ID: "2",
            sc.MESSAGING_KAFKA_OFFSET: 17,
            sc.MESSAGING_KAFKA_MESSAGE_KEY: "k1",
            sc.SERVER_ADDRESS: "kafka.internal",
            sc.SERVER_PORT: 9094,
        },
    )


def test_send_injects_the_send_span_context(capotel):
    inner = RecordingProducer()
    TracedProducer(inner).send("orders", b"{}", headers=[("app", b"1")])
    ack(inner.futures[0])
    headers = inner.sent[0]["headers"]
    assert headers[0] == ("app", b"1")

    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders", headers=headers))
    assert_parent(capotel.span("process orders"), capotel.span("send orders"))
    from opentelemetry import trace

    remote = trace.get_current_span(extract_context(headers)).get_span_context()
    assert remote.span_id == capotel.span("send orders").context.span_id


def test_failed_send_records_the_error(capotel):
    inner = RecordingProducer()
    TracedProducer(inner).send("orders", b"{}")
    inner.futures[0].failure(KafkaTimeoutError("no ack"))
    send = capotel.span("send orders")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[sc.ERROR_TYPE] == "kafka.errors.KafkaTimeoutError"
    failed = capotel.metric(
        sc.METRIC_CLIENT_SENT_MESSAGES, {sc.ERROR_TYPE: "kafka.errors.KafkaTimeoutError"}
    )
    assert failed.value == 1


def test_send_that_raises_is_recorded_and_reraised(capotel):
    class Exploding(RecordingProducer):
        def send(self, *args, **kwargs):
            raise BufferError("queue full")

    with pytest.raises(BufferError, match="queue full"):
        TracedProducer(Exploding()).send("orders", b"{}")
    assert capotel.span("send orders").attributes[sc.ERROR_TYPE] == "BufferError"


def test_failed_send_exception_event_has_no_deprecated_escaped_attribute(capotel):
    class Exploding(RecordingProducer):
        def send(self, *args, **kwargs):
            raise BufferError("queue full")

    with pytest.raises(BufferError):
        TracedProducer(Exploding()).send("orders", b"{}")
    (event,) = capotel.span("send orders").events
    assert event.name == "exception"
    assert dict(event.attributes, **{"exception.stacktrace": "-"}) == {
        "exception.type": "BufferError",
        "exception.message": "queue full",
        "exception.stacktrace": "-",
    }
    assert "BufferError: queue full" in event.attributes["exception.stacktrace"]


def test_other_methods_are_the_wrapped_producers():
    inner = RecordingProducer()
    producer = TracedProducer(inner)
    producer.flush()
    assert inner.flushed
    assert producer.wrapped is inner


def test_wrapping_something_without_send_is_a_type_error():
    with pytest.raises(TypeError, match="send"):
        TracedProducer(object())


def test_send_metrics_count_and_time_acknowledged_sends(capotel):
    inner = RecordingProducer()
    producer = TracedProducer(inner)
    for _ in range(3):
        producer.send("orders", b"{}")
    for future in inner.futures:
        ack(future)
    attrs = {sc.MESSAGING_DESTINATION_NAME: "orders", sc.MESSAGING_OPERATION_NAME: "send"}
    assert capotel.metric(sc.METRIC_CLIENT_SENT_MESSAGES, attrs).value == 3
    duration = capotel.metric(sc.METRIC_CLIENT_OPERATION_DURATION, attrs)
    assert duration.count == 3
    assert duration.bounds == sc.DURATION_BUCKETS


def test_unsendable_headers_reach_the_client_unchanged_and_are_not_our_error(capotel):
    inner = RecordingProducer()
    bad = [("n", 5)]
    TracedProducer(inner).send("orders", b"{}", headers=bad)  # type: ignore[arg-type]
    assert inner.sent[0]["headers"] is bad
