"""kafkascope on the real broker: one trace from TracedProducer to @traced_handler."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from devstack.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from kafkascope import TracedProducer, traced_batch_handler, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import (
    assert_linked,
    assert_messaging_attributes,
    assert_parent,
    assert_same_trace,
)
from tests.integration import _kafka_clients as clients

pytestmark = pytest.mark.integration
log = logging.getLogger("tests.integration.billing")


@dataclass
class ProducerService:
    """A second "service" in this process: its own service.name and span exporter."""

    producer: TracedProducer
    spans: InMemorySpanExporter
    provider: TracerProvider

    def sent(self, topic: str) -> list[object]:
        return [s for s in self.spans.get_finished_spans() if s.name == f"send {topic}"]


@pytest.fixture
def orders_service(kafka_broker: KafkaBroker) -> Iterator[ProducerService]:
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    raw = clients.producer(kafka_broker.bootstrap_servers)
    try:
        yield ProducerService(TracedProducer(raw, tracer_provider=provider), spans, provider)
    finally:
        raw.close(timeout=10)
        provider.shutdown()


def test_one_trace_across_two_services_with_handler_logs_and_nested_spans(
    capotel, kafka_broker, orders_service, topic, span_timings
):
    group = clients.new_group()
    future = orders_service.producer.send(topic, b'{"id": 1}', key=b"order-1")
    metadata = future.get(timeout=30)
    orders_service.producer.flush()

    @traced_handler(group=group, server=kafka_broker.bootstrap_servers)
    def handle(record):
        log.info("charging order %s", record.key.decode())
        with trace.get_tracer("billing").start_as_current_span("charge card"):
            pass

    clients.consume(kafka_broker.bootstrap_servers, topic, group, 1, handle)

    (send,) = orders_service.sent(topic)
    process = capotel.span(f"process {topic}")
    assert send.resource.attributes["service.name"] == "orders"
    assert process.resource.attributes["service.name"] == "capotel"
    assert_same_trace(send, process)
    assert_parent(process, send)
    assert process.links == ()  # the parent is not repeated as a link
    assert_parent(capotel.span("charge card"), process)
    assert_messaging_attributes(
        send,
        operation="send",
        expected={
            sc.MESSAGING_DESTINATION_PARTITION_ID: str(metadata.partition),
            sc.MESSAGING_KAFKA_OFFSET: metadata.offset,
            sc.SERVER_ADDRESS: "127.0.0.1",
            sc.SERVER_PORT: kafka_broker.port,
        },
    )
    assert_messaging_attributes(
        process,
        expected={
            sc.MESSAGING_DESTINATION_NAME: topic,
            sc.MESSAGING_DESTINATION_PARTITION_ID: str(metadata.partition),
            sc.MESSAGING_KAFKA_OFFSET: metadata.offset,
            sc.MESSAGING_CONSUMER_GROUP_NAME: group,
            sc.MESSAGING_KAFKA_MESSAGE_KEY: "order-1",
            sc.SERVER_ADDRESS: "127.0.0.1",
            sc.SERVER_PORT: kafka_broker.port,
        },
    )
    # Clamped at zero, so only the upper bound can fail: sent moments before it was consumed.
    assert 0 <= process.attributes[sc.TIME_IN_QUEUE] < 30
    line = capotel.log("charging order order-1").log_record
    assert (line.trace_id, line.span_id) == (process.context.trace_id, process.context.span_id)
    assert line.attributes[sc.MESSAGING_KAFKA_OFFSET] == metadata.offset
    assert line.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == group


def test_lesson_json_message_arrives_and_is_traced(capotel, kafka_broker, orders_service, topic):
    # The test this project grew from: a JSON message produced to a topic is consumed in a
    # group and arrives intact; now also traced end to end.
    order = {"order_id": "A-17", "amount": 42.5, "items": ["book", "pen"]}
    orders_service.producer.send(topic, json.dumps(order).encode()).get(timeout=30)
    received: list[dict[str, object]] = []

    @traced_handler(group="lesson")
    def handle(record):
        received.append(json.loads(record.value))

    clients.consume(kafka_broker.bootstrap_servers, topic, f"lesson-{topic}", 1, handle)
    assert received == [order]
    (send,) = orders_service.sent(topic)
    assert_parent(capotel.span(f"process {topic}"), send)


def test_batch_handler_on_a_real_poll_links_every_message(
    capotel, kafka_broker, orders_service, topic_factory
):
    topic = topic_factory(partitions=2)
    for i in range(6):
        orders_service.producer.send(topic, f"m{i}".encode(), partition=i % 2)
    orders_service.producer.flush()
    batch = clients.poll_batch(kafka_broker.bootstrap_servers, topic, clients.new_group(), 6)

    @traced_batch_handler(group="bulk")
    def handle(records):
        return sum(len(r) for r in records.values())

    assert handle(batch) == 6
    process = capotel.span(f"process {topic}")
    assert process.attributes[sc.MESSAGING_BATCH_MESSAGE_COUNT] == 6
    sends = orders_service.sent(topic)
    assert len(sends) == 6
    for send in sends:
        assert_linked(process, send)
    offsets = sorted(
        (
            link.attributes[sc.MESSAGING_DESTINATION_PARTITION_ID],
            link.attributes[sc.MESSAGING_KAFKA_OFFSET],
        )
        for link in process.links
    )
    assert offsets == [("0", 0), ("0", 1), ("0", 2), ("1", 0), ("1", 1), ("1", 2)]
    assert (
        capotel.metric(
            sc.METRIC_CLIENT_CONSUMED_MESSAGES, {sc.MESSAGING_DESTINATION_NAME: topic}
        ).value
        == 6
    )


def test_a_raising_handler_is_recorded_and_the_consumer_goes_on(
    capotel, kafka_broker, orders_service, topic
):
    for i in range(3):
        orders_service.producer.send(topic, f"{i}".encode())
    orders_service.producer.flush()
    handled: list[int] = []

    @traced_handler
    def handle(record):
        value = int(record.value)
        if value == 1:
            raise ValueError(f"cannot handle {value}")
        handled.append(value)

    clients.consume(kafka_broker.bootstrap_servers, topic, clients.new_group(), 3, handle)
    assert handled == [0, 2]
    spans = capotel.spans_named(f"process {topic}")
    assert [s.status.status_code for s in spans] == [
        StatusCode.UNSET,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert spans[1].attributes[sc.ERROR_TYPE] == "ValueError"
    errors = capotel.metric(sc.METRIC_PROCESS_DURATION, {sc.ERROR_TYPE: "ValueError"})
    assert errors.count == 1


def test_garbage_headers_from_the_wire_start_a_new_trace(capotel, kafka_broker, topic):
    raw = clients.producer(kafka_broker.bootstrap_servers)
    try:
        raw.send(
            topic,
            b"x",
            headers=[
                ("traceparent", b"\xff\xfe\x00garbage"),
                ("traceparent", b"00-00000000000000000000000000000000-0000000000000000-01"),
                ("tracestate", b"=" * 5000),
                ("baggage", b"\xc3\x28" * 100),
                ("TRACEPARENT", b""),
            ],
        ).get(timeout=30)
    finally:
        raw.close(timeout=10)
    handled = []

    @traced_handler
    def handle(record):
        handled.append(record.offset)

    clients.consume(kafka_broker.bootstrap_servers, topic, clients.new_group(), 1, handle)
    assert handled == [0]
    process = capotel.span(f"process {topic}")
    assert process.parent is None
    assert process.links == ()
