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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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


EXIT_SCRIPT = textwrap.dedent(
    """
    import logging
    import time
    import kafkascope
    from kafkascope.testing import make_record

    kafkascope.configure("svc", logs=True)  # the quick start
    log = logging.getLogger("app")

    @kafkascope.traced_handler
    def handle(record):
        log.warning("handled %s", record.offset)

    for offset in range(5):
        handle(make_record("orders", offset=offset))
    print("READY", time.monotonic(), flush=True)
    """
)
EXIT_BOUND_S = 10 + 5
"""The documented shutdown bound, plus time for the interpreter to finish."""


@dataclass
class Exit:
    after_ready_s: float
    returncode: int
    stderr: str


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def exits_with_a_dead_backend() -> Iterator[dict[str, Exit]]:
    """The quick start run to its end with the OTLP endpoint (a) refusing connections, (b) left
    at the default with nothing there, (c) accepting connections and never answering; the three
    run at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        endpoints = {
            "refusing": f"http://127.0.0.1:{_closed_port()}",
            "default": None,
            "never answering": f"http://127.0.0.1:{hole.getsockname()[1]}",
        }

        def run(endpoint: str | None) -> Exit:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            if endpoint is not None:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
            done = subprocess.run(
                [sys.executable, "-c", EXIT_SCRIPT],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            ended = time.monotonic()
            ready = [line for line in done.stdout.splitlines() if line.startswith("READY ")]
            assert ready, done.stderr
            return Exit(ended - float(ready[0].split()[1]), done.returncode, done.stderr)

        with ThreadPoolExecutor(len(endpoints)) as pool:
            futures = {name: pool.submit(run, url) for name, url in endpoints.items()}
            yield {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("backend", ["refusing", "default", "never answering"])
def test_exit_with_a_dead_backend_is_bounded(exits_with_a_dead_backend, backend):
    done = exits_with_a_dead_backend[backend]
    assert done.returncode == 0, done.stderr
    assert done.after_ready_s < EXIT_BOUND_S, done.stderr


@pytest.mark.parametrize("backend", ["refusing", "default", "never answering"])
def test_exit_with_a_dead_backend_shuts_down_once(exits_with_a_dead_backend, backend):
    assert "shutdown can only be called once" not in exits_with_a_dead_backend[backend].stderr


@pytest.mark.parametrize("backend", ["refusing", "default", "never answering"])
def test_exit_with_a_dead_backend_says_so_on_stderr_despite_logs_true(
    exits_with_a_dead_backend, backend
):
    stderr = exits_with_a_dead_backend[backend].stderr
    assert "kafkascope: waiting up to" in stderr, stderr


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
