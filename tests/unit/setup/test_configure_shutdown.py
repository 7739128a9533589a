"""Telemetry is flushed on shutdown and on SIGTERM, within a bounded time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from kafkascope import configure, traced_handler
from kafkascope.testing import make_record

SIGTERM_SCRIPT = textwrap.dedent(
    """
    import time
    import kafkascope
    from kafkascope.testing import make_record

    kafkascope.configure("svc")

    @kafkascope.traced_handler
    def handle(record):
        return None

    handle(make_record("orders"))
    print("READY", flush=True)
    time.sleep(60)
    """
)


def test_sigterm_flushes_spans_and_metrics_before_the_process_dies():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="console",
        OTEL_BSP_SCHEDULE_DELAY="60000",
        OTEL_METRIC_EXPORT_INTERVAL="60000",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM, err
    assert '"name": "process orders"' in out
    assert '"name": "messaging.process.duration"' in out


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_shutdown_is_bounded_when_the_backend_never_answers(black_hole, monkeypatch):
    # Longer than shutdown's own 1 s bound, short enough that the exporter's retries end soon
    # after the test.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    telemetry = configure("svc", set_global=False, endpoint=black_hole, protocol="http/protobuf")

    @traced_handler(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    def handle(record):
        return record.offset

    assert [handle(make_record("orders", offset=i)) for i in range(50)] == list(range(50))
    started = time.monotonic()
    finished = telemetry.shutdown(timeout_millis=1_000)
    assert time.monotonic() - started < 5
    assert finished is False
    assert telemetry.shutdown() is True  # a second call returns at once
