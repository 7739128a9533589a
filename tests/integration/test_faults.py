"""Faults on the real broker: the telemetry backend down, the broker restarting mid-stream."""

from __future__ import annotations

import logging
import resource
import socket
import uuid

import pytest
from devstack.wait import wait_until
from opentelemetry import trace

from kafkascope import TracedProducer, configure, traced_handler
from kafkascope._core import semconv as sc
from kafkascope._setup.quiet_exporters import EXPORTER_LOGGERS, quiet_exporter_logs
from kafkascope.testing import make_record
from tests.integration import _kafka_clients as clients

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_backend_down_nothing_raises_memory_stays_bounded_and_warnings_are_few(
    protocol, kafka_broker, topic, caplog, monkeypatch
):
    # Exporters give up after 1 s, so their retry threads do not outlive the test.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    # Earlier tests of the session met dead backends too: this outage is counted afresh.
    quiet_exporter_logs().forget()
    telemetry = configure(
        "billing",
        set_global=False,
        endpoint=f"http://127.0.0.1:{_closed_port()}",
        protocol=protocol,
        export_interval_ms=200,
    )
    raw = clients.producer(kafka_broker.bootstrap_servers)
    producer = TracedProducer(
        raw, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    for i in range(300):
        producer.send(topic, str(i).encode())
    producer.flush()
    raw.close(timeout=10)
    handled: list[int] = []

    @traced_handler(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    def handle(record):
        handled.append(record.offset)

    with caplog.at_level(logging.WARNING):
        clients.consume(kafka_broker.bootstrap_servers, topic, f"g-{protocol}", 300, handle)
        # and a burst beyond the span queue (16,384): spans are dropped, not queued forever
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for offset in range(20_000):
            handle(make_record(topic, offset=offset))
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert handled[:300] == list(range(300))
    assert len(handled) == 20_300
    # the span queue holds at most 16,384 spans, some 57 MB (docs/guides/configuration.md)
    assert grown_mb < 90
    exporter_warnings = [r for r in caplog.records if r.name in EXPORTER_LOGGERS]
    assert exporter_warnings, "the exporters reported nothing: the backend was never tried"
    kinds = {(r.name, str(r.msg)[:60]) for r in exporter_warnings}
    assert len(exporter_warnings) == len(kinds)  # one of each kind, never one per attempt
    # kafkascope's own: at most the one warning that spans are dropped (and counted), never
    # one per span
    ours = [r.getMessage() for r in caplog.records if r.name == "kafkascope"]
    assert len(ours) <= 1, ours
    assert all("dropped spans are counted in" in message for message in ours), ours
    telemetry.shutdown(timeout_millis=2_000)


def test_broker_restart_mid_stream_keeps_traces_and_counts_exact(capotel, kafka_broker):
    topic = kafka_broker.create_topic(f"restart-{uuid.uuid4().hex[:8]}")
    group = f"restart-{uuid.uuid4().hex[:6]}"
    handled: list[int] = []

    @traced_handler(group=group)
    def handle(record):
        handled.append(record.offset)

    def send(count: int) -> None:
        raw = clients.producer(kafka_broker.bootstrap_servers)
        producer = TracedProducer(raw)
        for i in range(count):
            producer.send(topic, f"{i}".encode()).get(timeout=60)
        raw.close(timeout=10)

    consumer = clients.consumer(kafka_broker.bootstrap_servers, topic, group)
    try:

        def poll() -> None:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    handle(record)
            consumer.commit()

        send(20)
        wait_until(lambda: len(handled) >= 20, 30, "the first 20 records handled", step=poll)
        assert len(handled) == 20
        kafka_broker.restart()
        send(20)
        wait_until(
            lambda: len(handled) >= 40, 60, "40 records handled across the restart", step=poll
        )
    finally:
        consumer.close()
    assert handled == list(range(40))
    assert (
        capotel.metric(
            sc.METRIC_CLIENT_CONSUMED_MESSAGES, {sc.MESSAGING_CONSUMER_GROUP_NAME: group}
        ).value
        == 40
    )
    sends = {
        s.attributes[sc.MESSAGING_KAFKA_OFFSET]: s for s in capotel.spans_named(f"send {topic}")
    }
    processed = capotel.spans_named(f"process {topic}")
    assert len(processed) == 40
    for process in processed:
        send_span = sends[process.attributes[sc.MESSAGING_KAFKA_OFFSET]]
        assert process.parent is not None
        assert process.parent.span_id == send_span.context.span_id
    assert not trace.get_current_span().get_span_context().is_valid
