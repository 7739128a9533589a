"""Captured headers, the conversation id and body sizes on process spans and batch links."""

from __future__ import annotations

from opentelemetry import trace

from kafkascope import inject_headers, process_span, traced_batch_handler, traced_handler
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.header_capture import parse_patterns
from kafkascope.testing import make_record

HEADERS = [("tenant", b"acme"), ("correlation-id", b"c-42"), ("authorization", b"Bearer x")]


def _capture(patterns: str) -> None:
    _settings.update(capture_headers=parse_patterns(patterns, "capture_headers"))


def test_the_configured_headers_are_on_the_process_span(capotel):
    _capture("*")

    @traced_handler
    def handle(record):
        return None

    handle(make_record("orders", headers=HEADERS))
    attrs = capotel.span("process orders").attributes
    assert attrs["messaging.header.tenant"] == ("acme",)
    assert attrs["messaging.header.correlation_id"] == ("c-42",)
    assert "messaging.header.authorization" not in attrs


def test_no_header_is_on_the_process_span_unless_named(capotel):
    @traced_handler
    def handle(record):
        return None

    handle(make_record("orders", headers=HEADERS))
    attrs = capotel.span("process orders").attributes
    assert [k for k in attrs if k.startswith("messaging.header.")] == []


def test_the_decorators_capture_headers_overrides_the_setting(capotel):
    _capture("*")

    @traced_handler(capture_headers=["authorization"])
    def handle(record):
        return None

    handle(make_record("orders", headers=HEADERS))
    attrs = capotel.span("process orders").attributes
    assert attrs["messaging.header.authorization"] == ("Bearer x",)
    assert "messaging.header.tenant" not in attrs


def test_the_conversation_header_is_the_conversation_id_of_the_process_span(capotel):
    _settings.update(conversation_id_header="correlation-id")
    with process_span(make_record("orders", headers=HEADERS)):
        pass
    attrs = capotel.span("process orders").attributes
    assert attrs[sc.MESSAGING_MESSAGE_CONVERSATION_ID] == "c-42"


def test_each_batch_link_carries_its_messages_headers_and_size(capotel):
    _capture("tenant")
    _settings.update(capture_sizes=True)

    @traced_batch_handler
    def handle(batch):
        return None

    with trace.get_tracer("t").start_as_current_span("upstream"):
        records = [
            make_record("orders", b"x" * (n + 3), headers=[*inject_headers(), ("tenant", t)])
            for n, t in enumerate((b"acme", b"globex"))
        ]
    handle(records)
    links = capotel.span("process orders").links
    assert [link.attributes["messaging.header.tenant"] for link in links] == [
        ("acme",),
        ("globex",),
    ]
    assert [link.attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] for link in links] == [3, 4]


def test_the_body_size_is_on_the_process_span_and_in_the_histogram(capotel):
    _settings.update(capture_sizes=True)

    @traced_handler(group="billing")
    def handle(record):
        return None

    handle(make_record("orders", b"12345"))
    handle(make_record("orders", None, offset=1))
    first, tombstone = capotel.spans_named("process orders")
    assert first.attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] == 5
    assert tombstone.attributes[sc.MESSAGING_MESSAGE_BODY_SIZE] == 0
    assert tombstone.attributes[sc.MESSAGING_KAFKA_MESSAGE_TOMBSTONE] is True
    point = capotel.metric(sc.BODY_SIZE, {sc.MESSAGING_OPERATION_TYPE: "process"})
    assert (point.count, point.sum) == (2, 5)
    assert point.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"


def test_sizes_are_off_by_default(capotel):
    @traced_handler
    def handle(record):
        return None

    handle(make_record("orders", b"12345"))
    assert sc.MESSAGING_MESSAGE_BODY_SIZE not in capotel.span("process orders").attributes
    assert [m for m in capotel.metrics() if m.name == sc.BODY_SIZE] == []
