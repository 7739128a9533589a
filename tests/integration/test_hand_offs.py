"""Hand-offs on the real broker: work a handler passes to a thread pool stays in the message's
trace, with kafkascope's HandOffExecutor and, zero-code, with contrib's threading
instrumentation under ``opentelemetry-instrument``."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from opentelemetry import trace

from kafkascope import HandOffExecutor, TracedProducer, traced_handler
from kafkascope.testing import assert_parent, assert_same_trace
from tests.integration import _kafka_clients as clients
from tests.integration._zero_code import (
    command,
    console_logs,
    console_objects,
    console_spans,
    zero_code_env,
)

pytestmark = pytest.mark.integration
log = logging.getLogger("tests.integration.billing")
tracer = trace.get_tracer("billing")


def test_work_handed_to_a_pool_by_a_traced_handler_joins_the_senders_trace(
    capotel, kafka_broker, topic
):
    raw = clients.producer(kafka_broker.bootstrap_servers)
    try:
        TracedProducer(raw).send(topic, b'{"id": 1}').get(timeout=30)
    finally:
        raw.close(timeout=10)
    handler_returned = threading.Event()
    pending: list[Future[None]] = []

    def charge() -> None:
        handler_returned.wait(timeout=60)
        with tracer.start_as_current_span("charge card"):
            log.info("charged after the handler returned")

    group = clients.new_group()
    with HandOffExecutor(ThreadPoolExecutor(max_workers=1)) as pool:

        @traced_handler(group=group)
        def handle(record):
            pending.append(pool.submit(charge))

        clients.consume(kafka_broker.bootstrap_servers, topic, group, 1, handle)
        handler_returned.set()
        pending[0].result()

    send = capotel.span(f"send {topic}")
    process = capotel.span(f"process {topic}")
    charged = capotel.span("charge card")
    assert_parent(charged, process)
    assert_same_trace(send, process, charged)
    assert process.end_time is not None
    assert charged.start_time is not None
    assert charged.start_time > process.end_time
    line = capotel.log("charged after the handler returned").log_record
    assert line.trace_id == process.context.trace_id


def _with_threading_instrumentation(env: dict[str, str]) -> dict[str, str]:
    """The app's environment, with contrib's threading instrumentation importable (it is in
    this venv when set up from the contrib group; else wherever this test run found it)."""
    found = pytest.importorskip(
        "opentelemetry.instrumentation.threading",
        reason="opentelemetry-instrumentation-threading (the contrib group: scripts/setup.sh)",
    )
    where = Path(found.__file__ or "").parents[3]
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(where)])
    return env


def test_zero_code_pool_work_is_a_child_of_the_process_span_under_contrib_threading(
    kafka_broker: KafkaBroker,
):
    topic = kafka_broker.create_topic(f"handoff-{uuid.uuid4().hex[:8]}")
    raw = clients.producer(kafka_broker.bootstrap_servers)
    try:
        for n in range(2):
            raw.send(topic, f'{{"order": {n}}}'.encode()).get(timeout=30)
    finally:
        raw.close(timeout=10)
    env = _with_threading_instrumentation(zero_code_env("billing"))
    done = subprocess.run(
        command("handoff_consumer.py", kafka_broker.bootstrap_servers, topic, "billing", "2"),
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"handoff_consumer.py failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    objects: list[dict[str, Any]] = console_objects(done.stdout)
    spans = console_spans(objects)
    processed = {s["context"]["span_id"]: s for s in spans if s["name"] == f"process {topic}"}
    charged = [s for s in spans if s["name"] == "charge card"]
    assert len(processed) == 2
    assert len(charged) == 2
    for child in charged:
        process = processed[child["parent_id"]]
        assert child["context"]["trace_id"] == process["context"]["trace_id"]
        assert child["start_time"] > process["end_time"]
    lines = [e for e in console_logs(objects) if "charged the order" in e["body"]]
    assert len(lines) == 2
    by_offset = {p["attributes"]["messaging.kafka.offset"]: p for p in processed.values()}
    for line in lines:
        offset = int(line["body"].rsplit(" ", 1)[1])
        assert line["trace_id"] == by_offset[offset]["context"]["trace_id"]
        assert line["attributes"]["messaging.kafka.offset"] == offset
