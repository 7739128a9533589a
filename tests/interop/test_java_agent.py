"""One trace across Java services under the OpenTelemetry Java agent and kafkascope services.

Java apps (plain kafka-clients 4.2, ``tests/interop/java``) run under the agent 2.33.1 in both
of its naming modes; the Python side uses kafkascope in this process (or, for zero-code, an
unmodified script under ``opentelemetry-instrument``). Parents are asserted on the spans read
back from Jaeger.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from kafka import KafkaProducer
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import TracerProvider

from kafkascope import TracedProducer, traced_handler
from tests.integration._kafka_clients import consume
from tests.interop.conftest import NAMINGS, JavaApps, Traces, one

pytestmark = pytest.mark.interop

APPS = Path(__file__).resolve().parent.parent / "integration" / "apps"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"

JAVA_SEND_NAME = {"default": "{topic} publish", "messaging": "send {topic}"}
JAVA_PROCESS_NAME = {"default": "{topic} process", "messaging": "process {topic}"}


@pytest.fixture(params=NAMINGS)
def naming(request: pytest.FixtureRequest) -> str:
    """The Java agent's naming mode."""
    return str(request.param)


def _py_handler(
    provider: TracerProvider, group: str, seen: list[dict[str, Any]]
) -> Callable[[Any], None]:
    @traced_handler(group=group, tracer_provider=provider)
    def handle(record: Any) -> None:
        span = trace.get_current_span().get_span_context()
        seen.append(
            {
                "trace_id": format(span.trace_id, "032x"),
                "span_id": format(span.span_id, "016x"),
                "tenant": baggage.get_baggage("tenant"),
                "region": baggage.get_baggage("region"),
            }
        )

    return handle


def test_java_producer_to_traced_handler(
    kafka_broker: KafkaBroker,
    java_apps: JavaApps,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    naming: str,
    unique: str,
) -> None:
    topic = kafka_broker.create_topic(f"j2p-{unique}")
    producer, consumer = f"java-orders-{unique}", f"py-billing-{unique}"
    java_apps.run(
        "InteropProducer",
        kafka_broker.bootstrap_servers,
        topic,
        "1",
        "tenant=acme",
        "orders-producer",
        service=producer,
        naming=naming,
    )
    seen: list[dict[str, Any]] = []
    handle = _py_handler(python_service(consumer), "billing", seen)
    consume(kafka_broker.bootstrap_servers, topic, f"billing-{unique}", 1, handle)

    spans = traces.of_service(consumer, spans=2)
    send = one(spans, service=producer, kind="producer")
    process = one(spans, service=consumer, kind="consumer")
    assert process.parent_id == send.span_id
    assert process.trace_id == send.trace_id == seen[0]["trace_id"]
    assert seen[0]["tenant"] == "acme"
    assert send.name == JAVA_SEND_NAME[naming].format(topic=topic)
    assert process.name == f"process {topic}"


def test_traced_producer_to_java_for_loop(
    kafka_broker: KafkaBroker,
    java_apps: JavaApps,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    naming: str,
    unique: str,
) -> None:
    topic = kafka_broker.create_topic(f"p2j-{unique}")
    producer, consumer = f"py-orders-{unique}", f"java-billing-{unique}"
    reader = java_apps.start(
        "InteropConsumer",
        kafka_broker.bootstrap_servers,
        topic,
        f"billing-{unique}",
        "1",
        "60",
        "billing-consumer",
        service=consumer,
        naming=naming,
    )
    sender = TracedProducer(
        KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=0),
        tracer_provider=python_service(producer),
    )
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        sender.send(topic, b'{"order": 1}').get(timeout=30)
    finally:
        context.detach(token)
        sender.close()
    lines = reader.wait()

    spans = traces.of_service(producer, spans=2)
    send = one(spans, service=producer, kind="producer")
    process = one(spans, service=consumer, kind="consumer")
    assert process.parent_id == send.span_id
    assert (lines[0]["trace_id"], lines[0]["span_id"]) == (send.trace_id, process.span_id)
    assert lines[0]["baggage"] == {"tenant": "acme"}
    assert process.name == JAVA_PROCESS_NAME[naming].format(topic=topic)


def test_java_producer_to_unmodified_script_under_opentelemetry_instrument(
    kafka_broker: KafkaBroker,
    java_apps: JavaApps,
    traces: Traces,
    jaeger: Any,
    naming: str,
    unique: str,
) -> None:
    topic = kafka_broker.create_topic(f"j2zero-{unique}")
    producer, consumer = f"java-orders-{unique}", f"py-zero-{unique}"
    java_apps.run(
        "InteropProducer",
        kafka_broker.bootstrap_servers,
        topic,
        "1",
        "tenant=acme",
        "orders-producer",
        service=producer,
        naming=naming,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_SERVICE_NAME=consumer,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_http_endpoint,
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="kafka",
    )
    done = subprocess.run(
        [
            str(INSTRUMENT),
            sys.executable,
            str(APPS / "plain_consumer.py"),
            kafka_broker.bootstrap_servers,
            topic,
            f"zero-{unique}",
            "1",
            "iterate",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    spans = traces.of_service(consumer, spans=2)
    send = one(spans, service=producer, kind="producer")
    process = one(spans, service=consumer, kind="consumer")
    assert process.parent_id == send.span_id
    assert process.name == f"process {topic}"


def test_python_relay_forwarding_headers_between_java_services(
    kafka_broker: KafkaBroker,
    java_apps: JavaApps,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    naming: str,
    unique: str,
) -> None:
    inbound = kafka_broker.create_topic(f"in-{unique}")
    outbound = kafka_broker.create_topic(f"out-{unique}")
    producer, relay, consumer = (
        f"java-orders-{unique}",
        f"py-enrich-{unique}",
        f"java-ship-{unique}",
    )
    reader = java_apps.start(
        "InteropConsumer",
        kafka_broker.bootstrap_servers,
        outbound,
        f"ship-{unique}",
        "1",
        "60",
        "ship-consumer",
        service=consumer,
        naming=naming,
    )
    java_apps.run(
        "InteropProducer",
        kafka_broker.bootstrap_servers,
        inbound,
        "1",
        "tenant=acme",
        "orders-producer",
        service=producer,
        naming=naming,
    )
    provider = python_service(relay)
    sender = TracedProducer(
        KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=0),
        tracer_provider=provider,
    )

    @traced_handler(group="enrich", tracer_provider=provider)
    def enrich(record: Any) -> None:
        # The enrichment pattern: forward what came in, headers included.
        sender.send(outbound, record.value + b" enriched", headers=record.headers).get(timeout=30)

    try:
        consume(kafka_broker.bootstrap_servers, inbound, f"enrich-{unique}", 1, enrich)
    finally:
        sender.close()
    lines = reader.wait()

    spans = traces.of_service(consumer, spans=4)
    java_send = one(spans, service=producer, kind="producer")
    py_process = one(spans, service=relay, kind="consumer")
    py_send = one(spans, service=relay, kind="producer")
    java_process = one(spans, service=consumer, kind="consumer")
    assert py_process.parent_id == java_send.span_id
    assert py_send.parent_id == py_process.span_id
    assert java_process.parent_id == py_send.span_id
    assert len({s.trace_id for s in spans}) == 1
    assert [name for name, _ in lines[0]["headers"]].count("traceparent") == 1
    assert lines[0]["baggage"] == {"tenant": "acme"}


def test_java_relay_between_python_services(
    kafka_broker: KafkaBroker,
    java_apps: JavaApps,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    naming: str,
    unique: str,
) -> None:
    inbound = kafka_broker.create_topic(f"in-{unique}")
    outbound = kafka_broker.create_topic(f"out-{unique}")
    producer, relay, consumer = f"py-orders-{unique}", f"java-enrich-{unique}", f"py-ship-{unique}"
    forwarder = java_apps.start(
        "InteropRelay",
        kafka_broker.bootstrap_servers,
        inbound,
        outbound,
        f"enrich-{unique}",
        "1",
        "60",
        "enrich",
        service=relay,
        naming=naming,
    )
    sender = TracedProducer(
        KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=0),
        tracer_provider=python_service(producer),
    )
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        sender.send(inbound, b'{"order": 1}').get(timeout=30)
    finally:
        context.detach(token)
        sender.close()
    seen: list[dict[str, Any]] = []
    handle = _py_handler(python_service(consumer), "ship", seen)
    consume(kafka_broker.bootstrap_servers, outbound, f"ship-{unique}", 1, handle, timeout=60)
    forwarder.wait()

    spans = traces.of_service(producer, spans=4)
    py_send = one(spans, service=producer, kind="producer")
    java_process = one(spans, service=relay, kind="consumer")
    java_send = one(spans, service=relay, kind="producer")
    py_process = one(spans, service=consumer, kind="consumer")
    assert java_process.parent_id == py_send.span_id
    assert java_send.parent_id == java_process.span_id
    assert py_process.parent_id == java_send.span_id
    assert len({s.trace_id for s in spans}) == 1
    assert seen[0]["tenant"] == "acme"


STALE = (0xA1 << 120 | 1, 0x0A)
FRESH = (0xB2 << 120 | 2, 0x0B)


def _traceparent(ids: tuple[int, int]) -> bytes:
    return f"00-{ids[0]:032x}-{ids[1]:016x}-01".encode()


def test_record_with_two_traceparents_is_read_by_both_sides_as_the_last(
    kafka_broker: KafkaBroker,
    java_apps: JavaApps,
    python_service: Callable[[str], TracerProvider],
    traces: Traces,
    naming: str,
    unique: str,
) -> None:
    topic = kafka_broker.create_topic(f"dup-{unique}")
    java_consumer, py_consumer = f"java-dup-{unique}", f"py-dup-{unique}"
    # What a relay that appends leaves behind: the stale hop's fields, then the fresh hop's.
    headers = [
        ("traceparent", _traceparent(STALE)),
        ("baggage", b"tenant=stale,region=eu"),
        ("traceparent", _traceparent(FRESH)),
        ("baggage", b"tenant=fresh"),
    ]
    plain = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, linger_ms=0)
    try:
        plain.send(topic, b'{"order": 1}', headers=headers).get(timeout=30)
    finally:
        plain.close()
    lines = java_apps.run(
        "InteropConsumer",
        kafka_broker.bootstrap_servers,
        topic,
        f"java-dup-{unique}",
        "1",
        "60",
        "dup-consumer",
        service=java_consumer,
        naming=naming,
    )
    seen: list[dict[str, Any]] = []
    consume(
        kafka_broker.bootstrap_servers,
        topic,
        f"py-dup-{unique}",
        1,
        _py_handler(python_service(py_consumer), "dup", seen),
    )

    fresh_trace, fresh_span = format(FRESH[0], "032x"), format(FRESH[1], "016x")
    java_process = one(
        traces.of_service(java_consumer, spans=1), service=java_consumer, kind="consumer"
    )
    py_process = one(traces.of_service(py_consumer, spans=1), service=py_consumer, kind="consumer")
    assert (java_process.trace_id, java_process.parent_id) == (fresh_trace, fresh_span)
    assert (py_process.trace_id, py_process.parent_id) == (fresh_trace, fresh_span)
    assert lines[0]["trace_id"] == seen[0]["trace_id"] == fresh_trace
    # Repeated baggage headers combine, a later entry winning: the agent and kafkascope alike.
    assert lines[0]["baggage"] == {"tenant": "fresh", "region": "eu"}
    assert (seen[0]["tenant"], seen[0]["region"]) == ("fresh", "eu")
