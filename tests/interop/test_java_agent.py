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
