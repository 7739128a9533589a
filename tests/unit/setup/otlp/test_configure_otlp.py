"""configure() exports OTLP spans with the direct exporter, the SDK's one setting away; the
entry point for opentelemetry-instrument; the pure-Python protobuf warning."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import kafkascope
from kafkascope import ConfigurationError, DirectOTLPSpanExporter

REPO = Path(__file__).resolve().parents[4]


def _configure_and_export(receiver_url: str, **kwargs: object) -> None:
    telemetry = kafkascope.configure(
        "orders",
        endpoint=receiver_url,
        protocol="http/protobuf",
        metrics=False,
        set_global=False,
        handle_sigterm=False,
        **kwargs,  # type: ignore[arg-type]
    )
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("process orders"):
        pass
    telemetry.shutdown()


def test_configure_exports_spans_with_the_direct_exporter_by_default(http_receiver):
    _configure_and_export(http_receiver.url)
    [request] = http_receiver.requests
    assert request.headers["user-agent"] == "kafkascope-otlp-exporter"
    spans = ExportTraceServiceRequest.FromString(request.body).resource_spans[0].scope_spans
    assert spans[0].spans[0].name == "process orders"


def test_configure_uses_the_sdks_exporter_when_asked(http_receiver):
    _configure_and_export(http_receiver.url, otlp_span_exporter="sdk")
    assert http_receiver.requests[0].headers["user-agent"].startswith("OTel-OTLP-Exporter-Python")


def test_the_variable_selects_the_sdks_exporter(monkeypatch, http_receiver):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_OTLP_SPAN_EXPORTER", "sdk")
    _configure_and_export(http_receiver.url)
    assert http_receiver.requests[0].headers["user-agent"].startswith("OTel-OTLP-Exporter-Python")


def test_a_bad_span_exporter_variable_fails_naming_it(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_OTLP_SPAN_EXPORTER", "fast")
    with pytest.raises(ConfigurationError, match="OTEL_PYTHON_KAFKASCOPE_OTLP_SPAN_EXPORTER"):
        kafkascope.configure(set_global=False)


def test_a_bad_span_exporter_argument_fails_naming_it():
    with pytest.raises(ConfigurationError, match="otlp_span_exporter"):
        kafkascope.configure(set_global=False, otlp_span_exporter="fast")  # type: ignore[arg-type]


def test_a_bad_otlp_variable_fails_at_configure_naming_it(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli")
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"):
        kafkascope.configure(set_global=False)


def test_the_entry_point_names_the_exporter_and_it_builds_without_arguments(monkeypatch):
    entry_points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    target = entry_points["opentelemetry_traces_exporter"]["kafkascope_otlp"]
    module, _, name = target.partition(":")
    exporter_class = getattr(importlib.import_module(module), name)
    assert exporter_class is DirectOTLPSpanExporter
    exporter_class().shutdown()  # the SDK's configurator calls it with no arguments


def test_a_users_own_provider_exports_through_it(http_receiver):
    exporter = DirectOTLPSpanExporter(
        endpoint=http_receiver.url + "/v1/traces", protocol="http/protobuf"
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("kafkascope", "1.0")
    with tracer.start_as_current_span("a"), tracer.start_as_current_span("b"):
        pass
    provider.shutdown()
    request = ExportTraceServiceRequest.FromString(http_receiver.requests[0].body)
    assert [s.name for s in request.resource_spans[0].scope_spans[0].spans] == ["b", "a"]


WARNING = "protobuf runs its pure-Python backend"
SCRIPT = """
import kafkascope
for _ in range(2):
    kafkascope.configure(set_global=False, handle_sigterm=False, endpoint="http://127.0.0.1:9")
"""


def _run(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_pure_python_protobuf_is_announced_by_one_warning():
    stderr = _run({"PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"})
    assert stderr.count(WARNING) == 1


def test_the_binary_protobuf_backend_is_not_announced():
    assert WARNING not in _run({})
