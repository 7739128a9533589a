"""Zero-code instrumentation: unmodified scripts under ``opentelemetry-instrument``, on the
real broker; the test reads the spans and logs they export to the console."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest
from devstack.kafka import KafkaBroker

from tests.integration._zero_code import (
    command,
    console_logs,
    console_objects,
    console_spans,
    zero_code_env,
)

pytestmark = pytest.mark.integration


def _run(service: str, script: str, *args: str, **env: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        command(script, *args),
        env=zero_code_env(service, **env),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return console_objects(done.stdout)


def test_unmodified_producer_and_consumer_make_one_trace_per_message(kafka_broker: KafkaBroker):
    topic = kafka_broker.create_topic(f"zero-{uuid.uuid4().hex[:8]}")
    sent = console_spans(
        _run("orders", "plain_producer.py", kafka_broker.bootstrap_servers, topic, "2")
    )
    objects = _run(
        "billing",
        "plain_consumer.py",
        kafka_broker.bootstrap_servers,
        topic,
        "billing",
        "2",
        "iterate",
    )
    processed = [s for s in console_spans(objects) if s["name"] == f"process {topic}"]
    sends = [s for s in sent if s["name"] == f"send {topic}"]
    assert len(sends) == 2
    assert len(processed) == 2
    by_span = {s["context"]["span_id"]: s for s in sends}
    for process in processed:
        send = by_span[process["parent_id"]]
        assert process["context"]["trace_id"] == send["context"]["trace_id"]
        assert process["kind"] == "SpanKind.CONSUMER"
        assert process["resource"]["attributes"]["service.name"] == "billing"
        assert send["resource"]["attributes"]["service.name"] == "orders"
        assert process["attributes"]["messaging.consumer.group.name"] == "billing"
        assert process["attributes"]["messaging.destination.name"] == topic
    lines = [entry for entry in console_logs(objects) if "handled order" in entry["body"]]
    assert len(lines) == 2
    spans_by_id = {p["context"]["span_id"]: p for p in processed}
    for line in lines:
        process = spans_by_id[line["span_id"]]
        assert line["trace_id"] == process["context"]["trace_id"]
        offset = int(line["body"].rsplit(" ", 1)[1])
        assert process["attributes"]["messaging.kafka.offset"] == offset
        assert line["attributes"]["messaging.kafka.offset"] == offset


def test_poll_gets_one_batch_span_linked_to_every_message(kafka_broker: KafkaBroker):
    topic = kafka_broker.create_topic(f"zero-poll-{uuid.uuid4().hex[:8]}")
    sent = console_spans(
        _run("orders", "plain_producer.py", kafka_broker.bootstrap_servers, topic, "3")
    )
    objects = _run(
        "billing", "plain_consumer.py", kafka_broker.bootstrap_servers, topic, "bulk", "3", "poll"
    )
    sends = {s["context"]["span_id"] for s in sent if s["name"] == f"send {topic}"}
    assert len(sends) == 3
    # The consumer starts after all three were produced: its first fetch returns them all.
    (batch,) = [s for s in console_spans(objects) if s["name"] == f"process {topic}"]
    assert {link["context"]["span_id"] for link in batch["links"]} == sends
    assert batch["attributes"]["messaging.batch.message_count"] == 3
    lines = [line for line in console_logs(objects) if "in a batch" in line["body"]]
    assert len(lines) == 3
    for line in lines:
        assert (line["trace_id"], line["span_id"]) == (
            batch["context"]["trace_id"],
            batch["context"]["span_id"],
        )


def test_disabled_instrumentation_creates_no_kafkascopeconsole_spans(kafka_broker: KafkaBroker):
    topic = kafka_broker.create_topic(f"zero-off-{uuid.uuid4().hex[:8]}")
    sent = _run(
        "orders",
        "plain_producer.py",
        kafka_broker.bootstrap_servers,
        topic,
        "1",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="kafka,kafkascope",
    )
    assert console_spans(sent) == []


@pytest.mark.parametrize(
    ("app", "service", "consume_mode"),
    [
        ("plain_confluent.py", "ledger", "poll"),
        ("plain_confluent.py", "ledger", "consume"),
        ("plain_aiokafka.py", "shipping", "iterate"),
    ],
)
def test_other_clients_unmodified_are_traced_from_send_to_loop_body(
    kafka_broker: KafkaBroker, app: str, service: str, consume_mode: str
):
    topic = kafka_broker.create_topic(f"zero-{service}-{uuid.uuid4().hex[:8]}")
    sent = console_spans(_run("orders", app, kafka_broker.bootstrap_servers, topic, "2", "produce"))
    objects = _run(service, app, kafka_broker.bootstrap_servers, topic, "2", consume_mode)
    sends = {s["context"]["span_id"]: s for s in sent if s["name"] == f"send {topic}"}
    assert len(sends) == 2
    processed = [s for s in console_spans(objects) if s["name"] == f"process {topic}"]
    # The unmodified producer stamped the chain's start; each process span measured from it.
    assert processed
    assert all(p["attributes"]["kafkascope.pipeline.latency"] >= 0 for p in processed)
    if consume_mode == "consume":  # a batch fetch: one span linking every message
        assert {link["context"]["span_id"] for p in processed for link in p["links"]} == set(sends)
    else:
        assert len(processed) == 2
        for process in processed:
            send = sends[process["parent_id"]]
            assert process["context"]["trace_id"] == send["context"]["trace_id"]
            assert process["resource"]["attributes"]["service.name"] == service
            assert process["attributes"]["messaging.consumer.group.name"] == service
    lines = [entry for entry in console_logs(objects) if " at offset " in entry["body"]]
    assert len(lines) == 2
    span_ids = {p["context"]["span_id"] for p in processed}
    assert all(line["span_id"] in span_ids for line in lines)
