"""kafka-python on the real broker: every traced producer's message continued by a kafka-python
consumer; contrib's kafka-python instrumentation interoperates both ways; client ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from kafka import KafkaConsumer, KafkaProducer
from opentelemetry.instrumentation.kafka import KafkaInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kafkascope import TracedProducer, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.instrumentor import KafkascopeInstrumentor
from kafkascope.testing import assert_parent, assert_same_trace
from tests.integration import _kafka_clients as clients
from tests.integration._kafka_clients import WAIT

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sender", clients.SENDERS)
def test_every_sender_is_continued_by_a_kafka_python_receiver(
    capotel, kafka_broker: KafkaBroker, topic, sender
):
    servers = kafka_broker.bootstrap_servers
    clients.send(sender, servers, topic)
    handled: list[Any] = []

    @traced_handler(group="matrix")
    def handle(record):
        handled.append(record)

    clients.receive_kafka_python(servers, topic, handle)
    assert len(handled) == 1
    clients.assert_continued(capotel, topic, servers)


# ---------------------------------------------------------------- contrib
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

    clients.consume(kafka_broker.bootstrap_servers, topic, clients.new_group(), 1, handle)
    process = capotel.span(f"process {topic}")
    assert_same_trace(contrib_send, process)
    assert_parent(process, contrib_send)


def test_our_producer_is_continued_by_contribs_instrumented_consumer(
    capotel, kafka_broker: KafkaBroker, topic, contrib
):
    clients.send_kafka_python(kafka_broker.bootstrap_servers, topic)
    contrib.instrument()
    consumer = clients.consumer(
        kafka_broker.bootstrap_servers,
        topic,
        clients.new_group(),
        consumer_timeout_ms=int(WAIT * 1000),
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
    clients.send_kafka_python(kafka_broker.bootstrap_servers, topic)
    (contrib_send,) = contrib.spans.get_finished_spans()
    keys: list[list[str]] = []

    @traced_handler
    def handle(record):
        keys.append([key for key, _ in record.headers])

    clients.consume(kafka_broker.bootstrap_servers, topic, clients.new_group(), 1, handle)
    assert keys == [["traceparent"]]
    send = capotel.span(f"send {topic}")
    process = capotel.span(f"process {topic}")
    assert_parent(contrib_send, send)
    assert_parent(process, contrib_send)
    assert_same_trace(send, contrib_send, process)


# ---------------------------------------------------------------- client id
def test_kafka_python_producer_records_its_client_id_or_kafka_pythons_default(
    capotel, kafka_broker: KafkaBroker, topic
):
    servers = kafka_broker.bootstrap_servers
    named = KafkaProducer(bootstrap_servers=servers, client_id="orders-py", linger_ms=0)
    unnamed = KafkaProducer(bootstrap_servers=servers, linger_ms=0)
    try:
        TracedProducer(named).send(topic, b"a").get(timeout=WAIT)
        TracedProducer(unnamed).send(topic, b"b").get(timeout=WAIT)
    finally:
        named.close(timeout=10)
        unnamed.close(timeout=10)
    ids = [s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"send {topic}")]
    assert ids[0] == "orders-py"
    assert str(ids[1]).startswith("kafka-python-producer-")  # kafka-python's own default


def test_zero_code_kafka_python_consumer_records_its_client_id(capotel, kafka_broker, topic):
    servers = kafka_broker.bootstrap_servers
    clients.fill(servers, topic, 1)
    instrumentor = KafkascopeInstrumentor()
    instrumentor.instrument()
    try:
        py = KafkaConsumer(
            topic,
            bootstrap_servers=servers,
            group_id=clients.new_group(),
            client_id="billing-py",
            auto_offset_reset="earliest",
            consumer_timeout_ms=int(WAIT * 1000),
        )
        next(iter(py))
        py.close()
    finally:
        instrumentor.uninstrument()
    ids = {
        s.attributes.get(sc.MESSAGING_CLIENT_ID) for s in capotel.spans_named(f"process {topic}")
    }
    assert ids == {"billing-py"}
