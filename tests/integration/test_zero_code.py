"""Zero-code instrumentation: unmodified scripts under ``opentelemetry-instrument``, on the
real broker; the test reads the spans and logs they export to the console."""

from __future__ import annotations

import os
import subprocess
import tomllib
import uuid
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from kafka import KafkaConsumer

import kafkascope
from tests.integration._zero_code import (
    APPS,
    SRC,
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
    objects = _run(
        service,
        app,
        kafka_broker.bootstrap_servers,
        topic,
        "2",
        consume_mode,
        OTEL_PYTHON_KAFKASCOPE_SPAN_TIMINGS="true",
    )
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


# ------------------------------------------------------------ beside contrib's instrumentations
CONTRIB_KAFKA = "opentelemetry-instrumentation-kafka-python"


def _dist_info(directory: Path, name: str, version: str, metadata: str, entry_points: str) -> Path:
    info = directory / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text(entry_points)
    return directory


def _kafkascope_metadata(directory: Path) -> Path:
    """kafkascope's entry points as this checkout's pyproject.toml declares them (the installed
    metadata may predate them)."""
    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]
    groups = {**project["entry-points"], "console_scripts": project["scripts"]}
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items()) + "\n"
        for group, points in groups.items()
    )
    metadata = f"Metadata-Version: 2.1\nName: kafkascope\nVersion: {kafkascope.__version__}\n"
    return _dist_info(directory, "kafkascope", kafkascope.__version__, metadata, entry_points)


def _contrib_metadata(directory: Path) -> Path:
    """A copy of the installed contrib kafka-python instrumentation's metadata."""
    dist = distribution(CONTRIB_KAFKA)
    return _dist_info(
        directory,
        CONTRIB_KAFKA,
        dist.version,
        dist.read_text("METADATA") or "",
        dist.read_text("entry_points.txt") or "",
    )


def load_order_path(tmp_path: Path, contrib_first: bool) -> str:
    """A ``PYTHONPATH`` on which ``opentelemetry-instrument`` finds contrib's kafka-python
    instrumentor before kafkascope's, or after it.

    ``importlib.metadata`` lists distributions in ``sys.path`` order (the first of one name
    hides the others), and the loader instruments in that order; site-packages alone gives no
    order to rely on. So each one's metadata is put in a directory of its own ahead of
    site-packages; the code stays the installed one (contrib's) and this checkout's.
    """
    ours = _kafkascope_metadata(tmp_path / "kafkascope-metadata")
    contrib = _contrib_metadata(tmp_path / "contrib-metadata")
    first, second = (contrib, ours) if contrib_first else (ours, contrib)
    return os.pathsep.join(str(path) for path in (APPS, SRC, first, second))


def _headers(bootstrap: str, topic: str, count: int) -> list[list[str]]:
    """The header names of the first ``count`` records of ``topic``, read without tracing."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        return [[key for key, _ in next(consumer).headers] for _ in range(count)]
    finally:
        consumer.close()


def _took_over(objects: list[dict[str, Any]]) -> list[str]:
    return [
        line["body"]
        for line in console_logs(objects)
        if line["body"].startswith("kafkascope took over from ")
    ]


@pytest.mark.parametrize("contrib_first", [True, False], ids=["contrib-first", "contrib-last"])
def test_beside_contrib_each_message_gets_one_send_and_one_process_span(
    kafka_broker: KafkaBroker, tmp_path: Path, contrib_first: bool
):
    """contrib's kafka-python instrumentation installed and not disabled (the dev venv has
    contrib's aiokafka and confluent-kafka ones too): kafkascope takes over, in either order."""
    topic = kafka_broker.create_topic(f"zero-contrib-{uuid.uuid4().hex[:8]}")
    env = {
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "",
        "PYTHONPATH": load_order_path(tmp_path, contrib_first),
    }
    servers = kafka_broker.bootstrap_servers
    produced = _run("orders", "plain_producer.py", servers, topic, "2", **env)
    consumed = _run(
        "billing",
        "plain_consumer.py",
        servers,
        topic,
        "billing",
        "2",
        "iterate",
        OTEL_PYTHON_KAFKASCOPE_SPAN_TIMINGS="true",
        **env,
    )
    sends = console_spans(produced)
    processed = [s for s in console_spans(consumed) if s["name"] != f"commit {topic}"]
    assert [s["name"] for s in sends] == [f"send {topic}"] * 2
    assert [s["name"] for s in processed] == [f"process {topic}"] * 2
    # The consumer auto-commits (kafka-python's default), at the latest in close(): its
    # commit spans are their own traces and settle both messages.
    commits = [s for s in console_spans(consumed) if s["name"] == f"commit {topic}"]
    assert commits
    assert all(c["parent_id"] is None for c in commits)
    assert commits[-1]["attributes"]["messaging.kafka.offset"] == 2
    assert commits[-1]["attributes"]["kafkascope.commit.trigger"] == "auto"
    settled = {link["context"]["span_id"] for c in commits for link in c["links"]}
    assert settled == {p["context"]["span_id"] for p in processed}
    parents = {s["context"]["span_id"] for s in sends}
    assert {p["parent_id"] for p in processed} == parents
    assert all(p["attributes"]["kafkascope.pipeline.latency"] >= 0 for p in processed)
    assert _headers(servers, topic, 2) == [["traceparent", "kafkascope-pipeline-start"]] * 2
    for objects in (produced, consumed):
        lines = _took_over(objects)
        assert lines
        assert all(
            line.endswith("set OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB=true to keep both")
            for line in lines
        )
        named = " ".join(lines)
        assert CONTRIB_KAFKA in named
        assert "opentelemetry-instrumentation-aiokafka" in named
        assert "opentelemetry-instrumentation-confluent-kafka" in named


def test_keep_contrib_gives_contribs_spans_beside_kafkascopes(
    kafka_broker: KafkaBroker, tmp_path: Path
):
    topic = kafka_broker.create_topic(f"zero-keep-{uuid.uuid4().hex[:8]}")
    env = {
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "",
        "OTEL_PYTHON_KAFKASCOPE_KEEP_CONTRIB": "true",
        "PYTHONPATH": load_order_path(tmp_path, contrib_first=False),
    }
    servers = kafka_broker.bootstrap_servers
    produced = _run("orders", "plain_producer.py", servers, topic, "1", **env)
    consumed = _run(
        "billing", "plain_consumer.py", servers, topic, "billing", "1", "iterate", **env
    )
    assert sorted(s["name"] for s in console_spans(produced)) == [f"send {topic}", f"{topic} send"]
    consumer_spans = {s["name"] for s in console_spans(consumed)}
    assert consumer_spans == {f"process {topic}", f"{topic} receive", f"commit {topic}"}
    assert [s["name"] for s in console_spans(consumed)].count(f"process {topic}") == 1
    assert _took_over(produced) == _took_over(consumed) == []
