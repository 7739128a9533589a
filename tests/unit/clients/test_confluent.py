"""TracedConfluentProducer without a broker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from kafkascope import TracedConfluentProducer, extract_context, inject_headers, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_messaging_attributes, assert_parent, make_record
from tests.unit._producers import (
    BrokenTracerProvider,
    FakeConfluentMessage,
    RecordingConfluentProducer,
)

# A port nothing listens on: librdkafka queues messages and keeps retrying the connection
# (quietly: it would log each refused connection to stderr).
NOWHERE = {"bootstrap.servers": "127.0.0.1:1", "log_level": 0}


def _calls() -> tuple[list[tuple[Any, Any]], Any]:
    calls: list[tuple[Any, Any]] = []
    return calls, lambda err, msg: calls.append((err, msg))


def test_confluent_send_span_lasts_until_the_delivery_report(capotel):
    inner = RecordingConfluentProducer()
    calls, callback = _calls()
    producer = TracedConfluentProducer(inner, server="kafka.internal:9094")
    producer.produce("orders", b"{}", key=b"k1", on_delivery=callback)
    assert capotel.spans == []
    message = FakeConfluentMessage(partition=2, offset=17)
    inner.deliver(msg=message)
    assert calls == [(None, message)]
    send = capotel.span("send orders")
    assert send.kind is SpanKind.PRODUCER
    assert send.status.status_code is StatusCode.UNSET
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
    attrs = {sc.MESSAGING_DESTINATION_NAME: "orders", sc.SERVER_PORT: 9094}
    assert capotel.metric(sc.METRIC_CLIENT_SENT_MESSAGES, attrs).value == 1
    assert capotel.metric(sc.METRIC_CLIENT_OPERATION_DURATION, attrs).count == 1


@pytest.mark.parametrize(
    "headers", [[("app", b"1")], {"app": "1"}], ids=["list", "dict with str values"]
)
def test_confluent_injects_the_send_span_context_after_existing_headers(capotel, headers):
    inner = RecordingConfluentProducer()
    TracedConfluentProducer(inner).produce("orders", b"{}", headers=headers)
    inner.deliver()
    sent = inner.produced[0]["headers"]
    assert sent[0] == ("app", b"1")
    assert [key for key, _ in sent] == ["app", "traceparent", "kafkascope-pipeline-start"]

    @traced_handler
    def handle(record):
        return None

    handle(make_record("orders", headers=sent))
    assert_parent(capotel.span("process orders"), capotel.span("send orders"))


def test_confluent_replaces_a_traceparent_already_in_the_headers(capotel):
    with trace.get_tracer("upstream").start_as_current_span("upstream"):
        upstream = inject_headers([("app", b"1")])
    inner = RecordingConfluentProducer()
    TracedConfluentProducer(inner).produce("orders", b"{}", headers=upstream)
    inner.deliver()
    sent = inner.produced[0]["headers"]
    assert [key for key, _ in sent] == ["app", "traceparent", "kafkascope-pipeline-start"]
    remote = trace.get_current_span(extract_context(sent)).get_span_context()
    assert remote.span_id == capotel.span("send orders").context.span_id
    assert [key for key, _ in upstream] == ["app", "traceparent"]


def test_confluent_partition_given_to_produce_is_on_the_span_and_minus_one_is_not(capotel):
    inner = RecordingConfluentProducer()
    producer = TracedConfluentProducer(inner)
    producer.produce("orders", b"a", partition=3)
    producer.produce("unassigned", b"b")
    assert inner.produced[0]["partition"] == 3
    assert inner.produced[1]["partition"] == -1
    inner.deliver(0, msg=FakeConfluentMessage(3, 0))
    inner.deliver(1, msg=FakeConfluentMessage(None, None))
    assert capotel.span("send orders").attributes[sc.MESSAGING_DESTINATION_PARTITION_ID] == "3"
    assert sc.MESSAGING_DESTINATION_PARTITION_ID not in capotel.span("send unassigned").attributes


def test_confluent_callback_wins_over_on_delivery_as_in_confluent_kafka(capotel):
    inner = RecordingConfluentProducer()
    called_back, callback = _calls()
    on_delivery_calls, on_delivery = _calls()
    TracedConfluentProducer(inner).produce(
        "orders", b"{}", callback=callback, on_delivery=on_delivery
    )
    inner.deliver()
    assert len(called_back) == 1
    assert on_delivery_calls == []


def test_confluent_configured_callback_is_called_when_produce_gets_none(capotel):
    inner = RecordingConfluentProducer()
    configured, on_delivery = _calls()
    producer = TracedConfluentProducer(inner, on_delivery=on_delivery)
    producer.produce("orders", b"a")
    explicit, callback = _calls()
    producer.produce("orders", b"b", callback=callback)
    inner.deliver(0)
    inner.deliver(1)
    assert (len(configured), len(explicit)) == (1, 1)
    assert len(capotel.spans_named("send orders")) == 2


def test_confluent_failed_delivery_records_the_error_and_calls_the_callback(capotel):
    producer = TracedConfluentProducer(Producer(NOWHERE))
    calls, callback = _calls()
    producer.produce("orders", b"{}", on_delivery=callback)
    assert len(producer) >= 1  # queued messages and events, as len(Producer)
    producer.purge()
    producer.poll(0)
    ((err, msg),) = calls
    assert err.code() == KafkaError._PURGE_QUEUE
    assert msg.topic() == "orders"
    send = capotel.span("send orders")
    assert send.status.status_code is StatusCode.ERROR
    assert send.attributes[sc.ERROR_TYPE] == "_PURGE_QUEUE"
    assert sc.MESSAGING_KAFKA_OFFSET not in send.attributes
    (event,) = send.events
    assert event.name == "exception"
    assert "KafkaException" in event.attributes["exception.type"]
    failed = capotel.metric(sc.METRIC_CLIENT_SENT_MESSAGES, {sc.ERROR_TYPE: "_PURGE_QUEUE"})
    assert failed.value == 1


def test_confluent_produce_that_raises_is_recorded_with_librdkafkas_error_name(capotel):
    producer = TracedConfluentProducer(Producer({**NOWHERE, "message.max.bytes": 1000}))
    with pytest.raises(KafkaException) as raised:
        producer.produce("orders", b"x" * 5000)
    assert raised.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    send = capotel.span("send orders")
    assert send.attributes[sc.ERROR_TYPE] == "MSG_SIZE_TOO_LARGE"
    assert send.status.status_code is StatusCode.ERROR


def test_confluent_produce_raising_another_error_records_its_class(capotel):
    class Full(RecordingConfluentProducer):
        def produce(self, *args, **kwargs):
            raise BufferError("Local: Queue full")

    with pytest.raises(BufferError, match="Queue full"):
        TracedConfluentProducer(Full()).produce("orders", b"{}")
    assert capotel.span("send orders").attributes[sc.ERROR_TYPE] == "BufferError"


def test_confluent_users_callback_exception_reaches_the_caller_and_the_span_ends(capotel):
    inner = RecordingConfluentProducer()

    def explode(err, msg):
        raise RuntimeError("callback failed")

    TracedConfluentProducer(inner).produce("orders", b"{}", on_delivery=explode)
    with pytest.raises(RuntimeError, match="callback failed"):
        inner.deliver()
    assert capotel.span("send orders").status.status_code is StatusCode.UNSET


@pytest.mark.usefixtures("forgiving")
def test_confluent_instrumentation_failure_never_reaches_produce_or_the_callback():
    inner = RecordingConfluentProducer()
    calls, callback = _calls()
    producer = TracedConfluentProducer(inner, tracer_provider=BrokenTracerProvider())
    producer.produce("orders", b"{}", headers=[("app", b"1")], on_delivery=callback)
    assert inner.produced[0]["on_delivery"] is callback
    assert inner.produced[0]["headers"] == [("app", b"1")]
    inner.deliver()
    assert len(calls) == 1


def test_confluent_other_methods_and_len_are_the_wrapped_producers():
    inner = RecordingConfluentProducer()
    producer = TracedConfluentProducer(inner)
    assert producer.flush(1) == 0
    assert inner.flushed
    assert len(producer) == 7
    assert producer.wrapped is inner


def test_confluent_wrapper_checks_its_arguments():
    with pytest.raises(TypeError, match="produce"):
        TracedConfluentProducer(object())
    with pytest.raises(ValueError, match="port"):
        TracedConfluentProducer(RecordingConfluentProducer(), server="kafka:http")
    with pytest.raises(TypeError, match="on_delivery"):
        TracedConfluentProducer(RecordingConfluentProducer(), on_delivery="print")  # type: ignore[arg-type]
