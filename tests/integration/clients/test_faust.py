"""Faust, zero-code: an unmodified Faust worker (``apps/faust_app.py``) under
``opentelemetry-instrument`` with kafkascope installed, in a venv of its own
(:mod:`tests.integration._faust_venv`), on the real broker; the test reads what the console
exporters printed."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from devstack.kafka import KafkaBroker

from tests.integration._faust_venv import faust_venv
from tests.integration._zero_code import (
    APPS,
    command,
    console_logs,
    console_objects,
    console_spans,
    zero_code_env,
)

pytestmark = pytest.mark.integration

COUNT = 2


def _produce(broker: KafkaBroker, topic: str) -> list[dict[str, Any]]:
    """COUNT orders sent to ``topic`` by an instrumented kafka-python producer: its spans."""
    done = subprocess.run(
        command("plain_producer.py", broker.bootstrap_servers, topic, str(COUNT)),
        env=zero_code_env("orders"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    return [s for s in console_spans(console_objects(done.stdout)) if s["name"] == f"send {topic}"]


def _worker(
    broker: KafkaBroker, prefix: str, workdir: Path, *extra: str, script: str = "faust_app.py"
) -> subprocess.CompletedProcess[str]:
    """The Faust worker (under ``opentelemetry-instrument`` unless ``script`` instruments
    itself), until it has seen every order."""
    venv = faust_venv()
    instrument = [str(venv / "opentelemetry-instrument")] if script == "faust_app.py" else []
    return subprocess.run(
        [
            *instrument,
            str(venv / "python"),
            str(APPS / script),
            broker.bootstrap_servers,
            prefix,
            str(COUNT),
            *extra,
        ],
        env=zero_code_env("billing", OTEL_METRICS_EXPORTER="console"),
        cwd=workdir,  # the worker's data directory
        capture_output=True,
        text=True,
        timeout=240,
    )


class Run:
    """One worker run: what the producer and the worker exported."""

    def __init__(self, prefix: str, sends: dict[str, list[dict[str, Any]]], out: str) -> None:
        self.prefix = prefix
        self.sends = sends
        objects = console_objects(out)
        self.spans = console_spans(objects)
        self.logs = console_logs(objects)
        self.metrics = [
            metric
            for o in objects
            for rm in o.get("resource_metrics", ())
            for sm in rm["scope_metrics"]
            for metric in sm["metrics"]
        ]
        self.stderr = ""

    def spans_named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.spans if s["name"] == name]


@pytest.fixture(scope="module")
def faust_run(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Run:
    prefix = f"faust-{uuid.uuid4().hex[:8]}-"
    for name in ("in", "fwd", "out", "relay", "sunk"):
        kafka_broker.create_topic(f"{prefix}{name}")
    sends = {name: _produce(kafka_broker, f"{prefix}{name}") for name in ("in", "fwd", "relay")}
    done = _worker(kafka_broker, prefix, tmp_path_factory.mktemp("faust"))
    assert done.returncode == 0, f"{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    return Run(prefix, sends, done.stdout)


@pytest.fixture(scope="module")
def with_faust_otel(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A run with Faust's own OpenTelemetry sensor registered too."""
    prefix = f"faust-otel-{uuid.uuid4().hex[:8]}-"
    for name in ("in", "fwd", "out", "relay", "sunk"):
        kafka_broker.create_topic(f"{prefix}{name}")
    sends = {name: _produce(kafka_broker, f"{prefix}{name}") for name in ("in", "fwd", "relay")}
    done = _worker(kafka_broker, prefix, tmp_path_factory.mktemp("faust"), "faust-otel")
    assert done.returncode == 0, f"{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    run = Run(prefix, sends, done.stdout)
    run.stderr = done.stderr
    return run


@pytest.fixture(scope="module")
def explicit_run(kafka_broker: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A run of the app instrumented in code (``apps/faust_explicit.py``)."""
    prefix = f"faust-code-{uuid.uuid4().hex[:8]}-"
    for name in ("in", "fwd", "out", "relay", "sunk"):
        kafka_broker.create_topic(f"{prefix}{name}")
    sends = {name: _produce(kafka_broker, f"{prefix}{name}") for name in ("in", "fwd", "relay")}
    workdir = tmp_path_factory.mktemp("faust")
    done = _worker(kafka_broker, prefix, workdir, script="faust_explicit.py")
    assert done.returncode == 0, f"{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    return Run(prefix, sends, done.stdout)


def test_each_event_gets_a_process_span_child_of_the_senders_span(faust_run: Run):
    processed = faust_run.spans_named(f"process {faust_run.prefix}in")
    sends = {s["context"]["span_id"]: s for s in faust_run.sends["in"]}
    assert len(processed) == COUNT
    for span in processed:
        send = sends[span["parent_id"]]
        assert span["context"]["trace_id"] == send["context"]["trace_id"]
        assert span["kind"] == "SpanKind.CONSUMER"
        assert span["attributes"]["messaging.consumer.group.name"] == f"{faust_run.prefix}app"
        assert span["resource"]["attributes"]["service.name"] == "billing"


def test_the_agents_logs_carry_its_events_trace(faust_run: Run):
    processed = {
        s["context"]["span_id"]: s for s in faust_run.spans_named(f"process {faust_run.prefix}in")
    }
    lines = [entry for entry in faust_run.logs if entry["body"].startswith("handled order")]
    assert len(lines) == COUNT
    for line in lines:
        span = processed[line["span_id"]]
        assert line["trace_id"] == span["context"]["trace_id"]
        assert (
            line["attributes"]["messaging.kafka.offset"]
            == span["attributes"]["messaging.kafka.offset"]
        )


def _continued(run: Run, source: str, target: str) -> None:
    """Each order sent to ``source`` is processed there, sent on to ``target`` inside that
    span, and processed there in the same trace."""
    prefix = run.prefix
    first = {s["context"]["span_id"]: s for s in run.spans_named(f"process {prefix}{source}")}
    sends = {s["context"]["span_id"]: s for s in run.spans_named(f"send {prefix}{target}")}
    second = run.spans_named(f"process {prefix}{target}")
    assert len(first) == len(sends) == len(second) == COUNT
    for span in second:
        send = sends[span["parent_id"]]
        process = first[send["parent_id"]]
        assert span["context"]["trace_id"] == process["context"]["trace_id"]
        assert process["parent_id"] in {s["context"]["span_id"] for s in run.sends[source]}


def test_a_forwarding_agents_send_continues_the_trace(faust_run: Run):
    _continued(faust_run, "fwd", "out")


def test_an_agents_sink_continues_the_trace(faust_run: Run):
    _continued(faust_run, "relay", "sunk")


def test_the_events_are_counted_in_kafkascopes_metrics(faust_run: Run):
    consumed = [m for m in faust_run.metrics if m["name"] == "messaging.client.consumed.messages"]
    counted = {
        point["attributes"]["messaging.destination.name"]: point["value"]
        for metric in consumed
        for point in metric["data"]["data_points"]
        if point["attributes"].get("messaging.consumer.group.name") == f"{faust_run.prefix}app"
    }
    assert counted == {
        f"{faust_run.prefix}{name}": COUNT for name in ("in", "fwd", "out", "relay", "sunk")
    }


def test_an_app_instrumented_in_code_gets_process_spans_from_its_tracer_provider(
    explicit_run: Run,
):
    processed = explicit_run.spans_named(f"process {explicit_run.prefix}in")
    sends = {s["context"]["span_id"]: s for s in explicit_run.sends["in"]}
    assert len(processed) == COUNT
    for span in processed:
        assert span["context"]["trace_id"] == sends[span["parent_id"]]["context"]["trace_id"]


def test_faust_own_opentelemetry_sensor_beside_kafkascopes_is_warned_about(with_faust_otel: Run):
    prefix = with_faust_otel.prefix
    ours = with_faust_otel.spans_named(f"process {prefix}in")
    faust_own = with_faust_otel.spans_named(f"{prefix}in process")
    assert len(ours) == len(faust_own) == COUNT
    assert "Faust's OpenTelemetrySensor (faust.contrib.opentelemetry) is registered beside" in (
        with_faust_otel.stderr
    )


if __name__ == "__main__":
    sys.exit(pytest.main([str(Path(__file__)), "-q"]))


def test_fausts_own_commits_get_commit_spans(faust_run: Run):
    # Faust's aiokafka driver commits through AIOKafkaConsumer.commit(), which kafkascope wraps.
    commits = faust_run.spans_named(f"commit {faust_run.prefix}in")
    assert commits
    assert all(c["kind"] == "SpanKind.CLIENT" for c in commits)
    assert all(c["attributes"]["messaging.operation.type"] == "settle" for c in commits)
    assert all(c["attributes"]["kafkascope.commit.trigger"] == "application" for c in commits)
    assert max(c["attributes"]["messaging.kafka.offset"] for c in commits) == COUNT
