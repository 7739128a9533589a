"""Fixtures for mixed fleets: Java services under the OpenTelemetry Java agent beside kafkascope.

``kafka_broker`` and ``jaeger`` run once per session on free 127.0.0.1 ports, each stopped by its
PID at the end. ``java`` runs the apps of ``tests/interop/java`` (fetched and compiled by
``scripts/fetch_java.sh``) under the agent, exporting OTLP straight to Jaeger. ``python_service``
gives a tracer provider whose spans reach the same Jaeger under a service name of its own;
``traces`` reads spans back from Jaeger's HTTP API.

Every test names its services uniquely, so Jaeger is searched by service name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from devstack._process import CACHE_DIR, ManagedProcess, ServerError
from devstack._support import SCRIPTS_DIR
from devstack.jaeger import Jaeger
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

NAMINGS = ("default", "messaging")
"""The Java agent's naming modes: default, and ``OTEL_SEMCONV_STABILITY_OPT_IN=messaging``."""
JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
"""Small clients on 2 shared cores: a small heap and the C1 JIT only."""
APP_TIMEOUT = 90.0
"""Bound on one Java app's run, the agent's start included (seconds)."""


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One Kafka broker for the interop session, on free 127.0.0.1 ports."""
    broker = KafkaBroker.start(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """Jaeger v2 with in-memory storage: the Java agent and the Python side both export here."""
    with Jaeger.start(tmp_path_factory.mktemp("jaeger")) as running:
        yield running


@dataclass(frozen=True)
class JavaRun:
    """One Java app under the agent: its process and the JSON lines it printed."""

    process: ManagedProcess

    def wait(self, timeout: float = APP_TIMEOUT) -> list[dict[str, Any]]:
        """Wait for the app to exit 0 (else fail with its log) and return its JSON lines."""
        try:
            code = self.process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.stop()
            pytest.fail(f"{self.process.name} ran over {timeout:.0f}s:\n{self.process.log_tail()}")
        self.process.stop()  # closes the log
        if code != 0:
            pytest.fail(f"{self.process.name} exited {code}:\n{self.process.log_tail()}")
        return self.lines()

    def lines(self) -> list[dict[str, Any]]:
        """The JSON objects the app printed so far (its log also holds the agent's lines)."""
        text = self.process.log_path.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith('{"')]


@dataclass
class JavaApps:
    """Runs ``InteropProducer``/``InteropConsumer``/``InteropRelay`` under the Java agent."""

    agent: Path
    classpath: str
    workdir: Path
    otlp_endpoint: str
    java: str
    started: list[ManagedProcess] = field(default_factory=list)

    def start(self, main: str, *args: str, service: str, naming: str) -> JavaRun:
        """Start ``main`` with ``args`` as service ``service`` in the agent's ``naming`` mode."""
        # Laid over the test's own environment: every setting the agent reads here is explicit.
        env = {
            "OTEL_SERVICE_NAME": service,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_PROPAGATORS": "tracecontext,baggage",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "messaging" if naming == "messaging" else "",
            "JAVA_TOOL_OPTIONS": "",
        }
        argv = [self.java, *JVM_OPTIONS, f"-javaagent:{self.agent}", "-cp", self.classpath]
        process = ManagedProcess(
            f"{main}[{service}]",
            [*argv, main, *args],
            log_path=self.workdir / f"{service}.log",
            env=env,
        )
        self.started.append(process)
        return JavaRun(process)

    def run(self, main: str, *args: str, service: str, naming: str) -> list[dict[str, Any]]:
        """Run ``main`` to its end and return its JSON lines."""
        return self.start(main, *args, service=service, naming=naming).wait()


def _fetch_java() -> dict[str, str]:
    env = dict(os.environ, KAFKASCOPE_CACHE=str(CACHE_DIR))
    done = subprocess.run(
        ["bash", str(SCRIPTS_DIR / "fetch_java.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise ServerError(f"scripts/fetch_java.sh failed ({done.returncode}):\n{done.stderr}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def java_apps(jaeger: Jaeger, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JavaApps]:
    """The Java apps, exporting to ``jaeger``; any still running at the end is stopped by PID."""
    java = shutil.which("java")
    if java is None or shutil.which("javac") is None:
        raise ServerError("missing tool: java/javac (a Java 17+ JDK runs the interop apps)")
    paths = _fetch_java()
    apps = JavaApps(
        agent=Path(paths["agent"]),
        classpath=f"{paths['classes']}:{paths['libs']}/*",
        workdir=tmp_path_factory.mktemp("java"),
        otlp_endpoint=jaeger.otlp_http_endpoint,
        java=java,
    )
    try:
        yield apps
    finally:
        for process in apps.started:
            process.stop()


@pytest.fixture
def unique() -> str:
    """A suffix for this test's topics, groups and service names."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def python_service(jaeger: Jaeger) -> Iterator[Callable[[str], TracerProvider]]:
    """``python_service(name)``: a tracer provider exporting to Jaeger as service ``name``."""
    providers: list[TracerProvider] = []

    def make(name: str) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        exporter = OTLPSpanExporter(endpoint=f"{jaeger.otlp_http_endpoint}/v1/traces")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in providers:
            provider.shutdown()


@dataclass(frozen=True)
class JaegerSpan:
    """What the assertions need of one span read back from Jaeger."""

    service: str
    name: str
    span_id: str
    trace_id: str
    parent_id: str | None
    kind: str
    tags: dict[str, Any]


_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(value: dict[str, Any]) -> Any:
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_value(v) for v in value["arrayValue"].get("values") or []]
    return None


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value") or {}) for item in items or []}


def _spans(answer: dict[str, Any]) -> list[JaegerSpan]:
    """The spans of an ``/api/v3`` answer (OTLP JSON, hex ids; unlike ``/api/traces`` it keeps
    a span's parent apart from its links)."""
    out = []
    for resource_spans in (answer.get("result") or {}).get("resourceSpans") or []:
        resource = _attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                out.append(
                    JaegerSpan(
                        service=str(resource.get("service.name")),
                        name=span["name"],
                        span_id=span["spanId"],
                        trace_id=span["traceId"],
                        parent_id=span.get("parentSpanId") or None,
                        kind=_KINDS.get(int(span.get("kind") or 0), "unspecified"),
                        tags=_attributes(span.get("attributes")),
                    )
                )
    return out


@dataclass(frozen=True)
class Traces:
    """Spans read back from Jaeger's HTTP API (``/api/v3``)."""

    jaeger: Jaeger

    def of_service(self, service: str, *, spans: int, timeout: float = 30.0) -> list[JaegerSpan]:
        """The spans of every trace ``service`` took part in, once there are ``spans`` of them
        in all (every service's spans); fails at ``timeout`` with what came."""
        query = (
            f"/api/v3/traces?query.service_name={service}&query.num_traces=50"
            "&query.start_time_min=2000-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z"
        )
        found: list[JaegerSpan] = []

        def enough() -> list[JaegerSpan] | None:
            with contextlib.suppress(ServerError, OSError):
                found[:] = _spans(self.jaeger.get_json(query))
            return list(found) if len(found) >= spans else None

        def listing() -> str:
            lines = "\n".join(
                f"  {s.service}: {s.name} {s.span_id} <- {s.parent_id}" for s in found
            )
            return f"{spans} spans with {service} in Jaeger (has {len(found)}):\n{lines}"

        return wait_until(enough, timeout, listing, interval=0.3)


@pytest.fixture
def traces(jaeger: Jaeger) -> Traces:
    """Read spans back from Jaeger."""
    return Traces(jaeger)


def one(spans: list[JaegerSpan], *, service: str, kind: str) -> JaegerSpan:
    """The single span of ``service`` with span kind ``kind`` (``producer``/``consumer``)."""
    found = [s for s in spans if s.service == service and s.kind == kind]
    assert len(found) == 1, f"{len(found)} {kind} spans of {service} in {spans}"
    return found[0]
