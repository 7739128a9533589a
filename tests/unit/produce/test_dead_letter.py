from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from kafkascope import TracedProducer, dead_letter, extract_context, inject_headers, process_span
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_linked, assert_parent, make_record
from tests.unit._producers import RecordingProducer, ack


def _failed_record():
    with trace.get_tracer("t").start_as_current_span("send orders"):
        headers = inject_headers([("tenant", b"acme")])
    return make_record("orders", b'{"id": 7}', key=b"order-7", headers=headers, offset=41)


def test_dead_letter_continues_the_trace_links_the_failed_span_and_carries_the_error(capotel):
    inner = RecordingProducer()
    record = _failed_record()
    futures = []

    def handle() -> None:
        with process_span(record):
            try:
                raise ValueError("card declined")
            except ValueError as exc:
                futures.append(dead_letter(TracedProducer(inner), record, exc))
                raise

    with pytest.raises(ValueError, match="card declined"):
        handle()
    ack(futures[0])
    failed = capotel.span("process orders")
    send = capotel.span("send orders.dlq")
    assert failed.status.status_code is StatusCode.ERROR
    assert send.kind is SpanKind.PRODUCER
    assert send.status.status_code is StatusCode.UNSET
    assert_parent(send, failed)
    assert_linked(send, failed)
    assert dict(send.links[0].attributes) == {sc.ERROR_TYPE: "ValueError"}
    (sent,) = inner.sent
    assert (sent["topic"], sent["value"], sent["key"]) == ("orders.dlq", b'{"id": 7}', b"order-7")
    headers = dict(sent["headers"])
    assert headers["tenant"] == b"acme"
    assert headers["kafkascope.dlq.error.type"] == b"ValueError"
    assert headers["kafkascope.dlq.error.message"] == b"card declined"
    assert headers["kafkascope.dlq.original.topic"] == b"orders"
    assert headers["kafkascope.dlq.original.offset"] == b"41"
    assert [k for k, _ in sent["headers"]].count("traceparent") == 1
    remote = trace.get_current_span(extract_context(sent["headers"])).get_span_context()
    assert remote.span_id == send.context.span_id
    counted = capotel.metric(
        sc.DEAD_LETTERED, {sc.DEAD_LETTER_SOURCE: "orders", sc.ERROR_TYPE: "ValueError"}
    )
    assert counted.value == 1


def test_dead_letter_topic_can_be_named_and_a_failed_send_is_recorded(capotel):
    from kafka.errors import KafkaTimeoutError

    inner = RecordingProducer()
    future = dead_letter(inner, make_record("orders"), KeyError("sku"), topic="poison")
    future.failure(KafkaTimeoutError("no ack"))
    send = capotel.span("send poison")
    assert send.status.status_code is StatusCode.ERROR
    assert send.links == ()  # no failed span was current


def test_dead_letter_needs_a_topic_for_records_without_one():
    with pytest.raises(ValueError, match="topic="):
        dead_letter(RecordingProducer(), object(), RuntimeError())
