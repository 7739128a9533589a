"""The whole observability stack on 127.0.0.1 free ports, for the pipeline demo and e2e tests.

``Stack.up(workdir)`` starts, each as its own process stopped by its own PID:

- Kafka (KRaft, one node);
- Jaeger v2 with in-memory storage;
- the OpenTelemetry Collector: traces to Jaeger over OTLP, metrics to its Prometheus exporter,
  logs to a JSON-lines file;
- Prometheus scraping the Collector's exporter every second with ``honor_labels`` (so ``job`` is
  the ``service.name`` of the sender).

Kafka boots in a thread while Jaeger, the Collector and Prometheus start one after another (a
JVM is the slowest to get ready). Missing tools are named up front (``java``, ``prometheus``,
and ``go`` when the Collector or Jaeger still has to be built). Progress goes to stderr as
``[stack] ...`` lines.

``Stack.stop_collector()`` / ``Stack.start_collector()`` stop the Collector by its PID and start
it again on the same ports with the same config, for fault tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack._process import ManagedProcess, ServerError
from devstack.collector import Collector, collector_binary
from devstack.jaeger import Jaeger, jaeger_binary
from devstack.kafka import KafkaBroker, kafka_libs
from devstack.prometheus import Prometheus, prometheus_binary

BUILD_TIMEOUT = 3600.0
"""The first build of the Collector or Jaeger compiles from the Go module proxy: minutes."""


def say(message: str) -> None:
    """One progress line on stderr."""
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def _go_available() -> bool:
    if shutil.which("go"):
        return True
    goroot = os.environ.get("GOROOT", "/usr/local/go")
    return os.access(Path(goroot) / "bin" / "go", os.X_OK)


def _java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return True
    return shutil.which("java") is not None


def _binary(build: str, what: str) -> Path:
    """The cached binary of a build script, built first when missing (naming ``go`` if absent)."""
    started = time.monotonic()
    try:
        path = (collector_binary if build == "collector" else jaeger_binary)(
            build_timeout=BUILD_TIMEOUT
        )
    except ServerError as exc:
        if not _go_available():
            raise ServerError(
                f"missing tool: go (the Go toolchain, 1.25 or newer, builds {what}; "
                "install it and put it on PATH, then run scripts/setup.sh)"
            ) from exc
        raise
    took = time.monotonic() - started
    if took > 5:
        say(f"built {what} in {took:.0f}s: {path}")
    return path


@dataclass(frozen=True)
class Endpoints:
    """Where the running stack listens."""

    bootstrap_servers: str
    """Kafka, ``127.0.0.1:PORT``."""
    otlp_endpoint: str
    """The Collector's OTLP/HTTP base URL (``OTEL_EXPORTER_OTLP_ENDPOINT`` with
    ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``)."""
    otlp_grpc_endpoint: str
    """The Collector's OTLP/gRPC endpoint (the SDK's default protocol)."""
    jaeger_url: str
    """Jaeger's query service: ``/api/traces/{id}``, ``/api/services``."""
    prometheus_url: str
    """Prometheus: ``/api/v1/query``."""
    collector_logs: Path
    """The JSON-lines file the Collector's file exporter writes log records to."""


class Stack:
    """Kafka, Jaeger, the Collector and Prometheus, running; build with :meth:`up`."""

    def __init__(
        self,
        workdir: Path,
        kafka: KafkaBroker,
        jaeger: Jaeger,
        collector: Collector,
        prometheus: Prometheus,
    ) -> None:
        self.workdir = workdir
        self.kafka = kafka
        self.jaeger = jaeger
        self.collector = collector
        self.prometheus = prometheus
        self.up_seconds = 0.0
        """How long :meth:`up` took until every server was ready."""

    @property
    def endpoints(self) -> Endpoints:
        """Every address a client of the stack needs."""
        return Endpoints(
            bootstrap_servers=self.kafka.bootstrap_servers,
            otlp_endpoint=self.collector.otlp_http_endpoint,
            otlp_grpc_endpoint=self.collector.otlp_grpc_endpoint,
            jaeger_url=self.jaeger.query_url,
            prometheus_url=self.prometheus.url,
            collector_logs=self.collector.logs_path,
        )

    @classmethod
    @contextlib.contextmanager
    def up(cls, workdir: Path, *, timeout: float = 90.0) -> Iterator[Stack]:
        """Start the stack in ``workdir``; yield it; stop every server by its PID on exit."""
        stack = cls.start(workdir, timeout=timeout)
        try:
            yield stack
        finally:
            stack.stop()

    @classmethod
    def start(cls, workdir: Path, *, timeout: float = 90.0) -> Stack:
        """Start every server and return once all are ready; on failure stop what started."""
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if not _java_available():
            raise ServerError("missing tool: java (a Java 17+ runtime is needed to run Kafka)")
        prometheus_binary()  # raises naming the missing tool
        kafka_libs()  # fetched from Maven Central by scripts/fetch_kafka.sh unless cached
        jaeger_exe = _binary("jaeger", "Jaeger v2 (scripts/build_jaeger.sh)")
        collector_exe = _binary("collector", "the Collector (scripts/build_collector.sh)")

        kafka_box: list[KafkaBroker] = []
        kafka_error: list[BaseException] = []

        def start_kafka() -> None:
            try:
                kafka_box.append(KafkaBroker.start(workdir / "kafka", timeout=timeout))
            except BaseException as exc:  # re-raised in the main thread
                kafka_error.append(exc)

        say("starting Kafka (KRaft, one node) ...")
        kafka_thread = threading.Thread(target=start_kafka, name="kafka-start", daemon=True)
        kafka_thread.start()
        servers: list[Jaeger | Collector | Prometheus] = []
        try:
            jaeger = Jaeger.start(workdir / "jaeger", timeout=timeout, binary=jaeger_exe)
            servers.append(jaeger)
            say(f"Jaeger v2 ready: query {jaeger.query_url} (pid {jaeger.process.pid})")
            collector = Collector.start(
                workdir / "collector",
                jaeger_otlp_endpoint=jaeger.otlp_grpc_endpoint,
                timeout=timeout,
                binary=collector_exe,
            )
            servers.append(collector)
            say(
                f"Collector ready: OTLP {collector.otlp_http_endpoint} (HTTP), "
                f"{collector.otlp_grpc_endpoint} (gRPC) (pid {collector.process.pid})"
            )
            target = f"127.0.0.1:{collector.prometheus_port}"
            prometheus = Prometheus.start(
                workdir / "prometheus", [("otel-collector", target)], timeout=timeout
            )
            servers.append(prometheus)
            say(
                f"Prometheus ready: {prometheus.url}, scraping {target} "
                f"(pid {prometheus.process.pid})"
            )
            kafka_thread.join(timeout + 30)
            if kafka_error:
                raise kafka_error[0]
            if not kafka_box:
                raise ServerError(f"Kafka was not ready within {timeout + 30:.0f}s")
        except BaseException:
            kafka_thread.join(timeout + 30)
            for server in [*kafka_box, *reversed(servers)]:
                with contextlib.suppress(Exception):
                    server.stop()
            raise
        kafka = kafka_box[0]
        took = kafka.ready_seconds or 0.0
        say(f"Kafka ready: {kafka.bootstrap_servers} (pid {kafka.pid}) in {took:.1f}s")
        stack = cls(workdir, kafka, jaeger, collector, prometheus)
        stack.up_seconds = time.monotonic() - started
        say(f"stack up in {stack.up_seconds:.1f}s (logs under {workdir})")
        return stack

    def stop_collector(self) -> None:
        """Stop the Collector (SIGTERM to its PID); the rest of the stack keeps running."""
        say(f"stopping the Collector (pid {self.collector.process.pid})")
        self.collector.stop()

    def start_collector(self, *, timeout: float = 60.0) -> None:
        """Start the Collector again with the same config, hence on the same ports."""
        collector = self.collector
        if collector.process.running():
            return
        old = collector.process
        collector.process = ManagedProcess(
            old.name, old.argv, log_path=old.log_path, cwd=collector.config_path.parent
        )
        collector.process.wait_until(collector.ready, timeout=timeout, what="healthy again")
        say(f"Collector back on the same ports (pid {collector.process.pid})")

    def stop(self) -> None:
        """Stop every server, each by its own PID: Prometheus, the Collector, Jaeger, Kafka."""
        say("stopping the stack")
        for server in (self.prometheus, self.collector, self.jaeger, self.kafka):
            try:
                server.stop()
            except Exception as exc:  # stop the others regardless
                say(f"stopping {type(server).__name__} failed: {exc}")

    def log_paths(self) -> dict[str, Path]:
        """Each server's log file, for failure reports."""
        return {
            "kafka": self.kafka.log_path,
            "jaeger": self.jaeger.process.log_path,
            "collector": self.collector.process.log_path,
            "prometheus": self.prometheus.process.log_path,
        }


def main() -> int:
    """``python -m devstack.stack [WORKDIR]``: bring the stack up and keep it until Ctrl-C."""
    import tempfile

    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="stack-"))
    with Stack.up(workdir) as stack:
        for name, value in vars(stack.endpoints).items():
            print(f"{name}: {value}")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
