"""Start the pipeline's services as processes pointed at a running stack, stop them by PID.

The services learn where to send telemetry only from the standard ``OTEL_*`` variables set
here: OTLP over HTTP to the Collector, metrics every second, spans and logs batched for 200 ms.
``audit`` runs under ``opentelemetry-instrument`` with the logging auto-instrumentation on.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devstack._process import ManagedProcess, ServerError
from devstack.kafka import create_topics
from devstack.stack import Endpoints

from examples.pipeline.service import Topics

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIT_SCRIPT = Path(__file__).resolve().parent / "audit.py"
INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"
CONSUMERS = ("enricher", "billing", "audit")


def telemetry_env(endpoints: Endpoints) -> dict[str, str]:
    """The standard OpenTelemetry variables every service gets."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints.otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # Twice Prometheus's scrape interval (1 s): the SDK sends each exemplar in one export
        # only, and the Collector serves it until the next, so every exemplar gets scraped.
        "OTEL_METRIC_EXPORT_INTERVAL": "2000",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=demo",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        # The demo shows the pipeline latency and time in queue on the spans too (opt-in).
        "OTEL_PYTHON_KAFKASCOPE_SPAN_TIMINGS": "true",
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
    }


class Pipeline:
    """enricher, billing and audit running; orders started on demand (:meth:`place_orders`)."""

    def __init__(self, endpoints: Endpoints, workdir: Path, *, prefix: str = "") -> None:
        self.endpoints = endpoints
        self.workdir = workdir
        self.prefix = prefix
        self.topics = Topics.named(prefix)
        self.processes: dict[str, ManagedProcess] = {}
        workdir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> Pipeline:
        """Create the topics, start the consumers, and return once each has all the partitions
        of its topics (each service is its group's only member)."""
        self.create_topics()
        for name in CONSUMERS:
            self.processes[name] = self._launch(name)
        for name in CONSUMERS:
            self.processes[name].wait_until(
                functools.partial(self._says_ready, name),
                timeout=timeout,
                what="assigned its partitions",
            )
        return self

    def _says_ready(self, name: str) -> bool:
        text = self.processes[name].log_path.read_text(errors="replace")
        return f"{name} ready" in text

    def stop(self) -> None:
        """Stop every service still running, each by its own PID (SIGTERM: a clean exit)."""
        for process in reversed(list(self.processes.values())):
            process.stop(timeout=20)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def create_topics(self) -> None:
        """The pipeline's topics: three partitions for orders and enriched orders, one DLQ."""
        create_topics(
            self.endpoints.bootstrap_servers,
            {self.topics.orders: 3, self.topics.enriched: 3, self.topics.dead_letter: 1},
        )

    def _argv(self, name: str) -> list[str]:
        if name == "audit":
            outcomes = str(self.outcomes_path(name))
            return [
                str(INSTRUMENT),
                sys.executable,
                str(AUDIT_SCRIPT),
                self.endpoints.bootstrap_servers,
                self.prefix,
                outcomes,
            ]
        argv = [sys.executable, "-m", f"examples.pipeline.{name}"]
        argv += ["--bootstrap", self.endpoints.bootstrap_servers, "--prefix", self.prefix]
        if name != "orders":
            argv += ["--outcomes", str(self.outcomes_path(name))]
        return argv

    def _env(self, name: str) -> dict[str, str]:
        env = telemetry_env(self.endpoints)
        if name == "audit":
            env.update(
                OTEL_SERVICE_NAME="audit",
                OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
                # kafkascope's instrumentor traces kafka-python; the contrib one would add spans
                # that end before the loop body runs.
                OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="kafka,confluent_kafka,aiokafka",
            )
        return env

    def _launch(self, name: str, *extra: str) -> ManagedProcess:
        return ManagedProcess(
            name,
            [*self._argv(name), *extra],
            log_path=self.workdir / f"{name}.log",
            env=self._env(name),
            cwd=REPO_ROOT,
        )

    # -- orders ----------------------------------------------------------------------------

    def start_orders(self, *, rate: float = 20.0, count: int = 0, first: int = 1) -> ManagedProcess:
        """Start ``orders`` placing ``count`` orders (0: until stopped) at ``rate`` per second.

        Its stdout (one JSON line per order) and stderr go to ``orders-<first>.log``.
        """
        process = ManagedProcess(
            "orders",
            [
                *self._argv("orders"),
                "--rate",
                str(rate),
                "--count",
                str(count),
                "--first",
                str(first),
            ],
            log_path=self.workdir / f"orders-{first}.log",
            env=self._env("orders"),
            cwd=REPO_ROOT,
        )
        self.processes[f"orders-{first}"] = process
        return process

    def place_orders(
        self, count: int, *, first: int = 1, rate: float = 50.0, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Run ``orders`` for ``count`` orders to the end; return what it placed."""
        process = self.start_orders(rate=rate, count=count, first=first)
        try:
            process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.stop()
            raise ServerError(
                f"orders did not finish within {timeout:.0f}s:\n{process.log_tail()}"
            ) from None
        process.stop()
        if process.proc.returncode != 0:
            raise ServerError(
                f"orders exited with {process.proc.returncode}:\n{process.log_tail()}"
            )
        return placed_orders(process)

    # -- results ---------------------------------------------------------------------------

    def outcomes_path(self, service: str) -> Path:
        """The JSON-lines file where ``service`` records each message it handled."""
        return self.workdir / f"{service}-outcomes.jsonl"

    def outcomes(self, service: str) -> list[dict[str, Any]]:
        """What ``service`` has handled so far."""
        try:
            lines = self.outcomes_path(service).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def wait_for_outcomes(self, counts: dict[str, int], *, timeout: float = 60.0) -> dict[str, int]:
        """Wait until each service has handled at least ``counts[service]`` messages."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {service: len(self.outcomes(service)) for service in counts}
            if all(seen[s] >= n for s, n in counts.items()) or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)

    def log_tails(self, lines: int = 30) -> str:
        """The end of every service's log, for a failure report."""
        return "\n".join(
            f"--- {name} ({process.log_path}):\n{process.log_tail(lines)}"
            for name, process in self.processes.items()
        )


def placed_orders(process: ManagedProcess) -> list[dict[str, Any]]:
    """The JSON lines ``orders`` printed: ``{"n", "order_id", "trace_id"}`` per order."""
    found = []
    for line in process.log_path.read_text(errors="replace").splitlines():
        if line.startswith('{"n"'):
            found.append(json.loads(line))
    return found
