from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import configure, traced_handler
from kafkascope._core import settings as _settings
from kafkascope.testing import make_record


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"endpoint": "collector:4317"}, ValueError, "endpoint='collector:4317'"),
        ({"endpoint": "ftp://collector"}, ValueError, "endpoint"),
        ({"endpoint": "http://collector:99999"}, ValueError, "invalid port"),
        ({"endpoint": 4317}, TypeError, "endpoint"),
        ({"protocol": "thrift"}, ValueError, "protocol='thrift'"),
        ({"parent": "sibling"}, ValueError, "parent='sibling'"),
        ({"capture_key": 1}, TypeError, "capture_key"),
        ({"key_hook": "redact"}, TypeError, "key_hook"),
        ({"service_name": ""}, TypeError, "service_name"),
        ({"export_interval_ms": 0}, ValueError, "export_interval_ms"),
    ],
)
def test_bad_arguments_fail_naming_the_setting(kwargs, error, named):
    with pytest.raises(error, match=named):
        configure(set_global=False, **kwargs)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "nonsense"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"),
        ("OTEL_TRACES_EXPORTER", "zipkin2"),
        ("OTEL_PYTHON_KAFKASCOPE_PARENT", "parent"),
        ("OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY", "maybe"),
    ],
)
def test_bad_environment_fails_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        configure(set_global=False)


def test_options_become_the_handlers_defaults(capotel):
    configure(
        set_global=False,
        traces=False,
        metrics=False,
        parent="links",
        capture_key=False,
    )
    assert _settings.current().parent == "links"

    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders", key=b"secret-key"))
    assert "messaging.kafka.message.key" not in capotel.span("process orders").attributes


def test_environment_sets_kafkascope_defaults(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_PARENT", "ambient")
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CAPTURE_KEY", "false")
    configure(set_global=False, traces=False, metrics=False)
    settings = _settings.current()
    assert (settings.parent, settings.capture_key) == ("ambient", False)


def test_local_providers_export_to_the_given_exporter_and_reader():
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    telemetry = configure(
        "billing",
        set_global=False,
        span_exporter=spans,
        metric_readers=(reader,),
        metrics=False,
    )

    @traced_handler(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    def handle(rec):
        return None

    handle(make_record("orders"))
    assert telemetry.force_flush()
    (span,) = spans.get_finished_spans()
    assert span.resource.attributes["service.name"] == "billing"
    data = reader.get_metrics_data()
    assert data is not None
    names = [m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]
    assert "messaging.process.duration" in names
    telemetry.shutdown()
    telemetry.shutdown()


SCRIPT = textwrap.dedent(
    """
    import kafkascope
    from kafkascope.testing import make_record

    first = kafkascope.configure()
    second = kafkascope.configure("ignored")
    assert first is second

    @kafkascope.traced_handler
    def handle(rec):
        return None

    handle(make_record("orders"))
    first.shutdown()
    """
)


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=full, capture_output=True, text=True, timeout=60
    )


def test_otel_variables_are_honoured_and_a_second_configure_does_not_double_export():
    done = _run(
        {
            "OTEL_SERVICE_NAME": "inventory",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
        }
    )
    assert done.returncode == 0, done.stderr
    decoder = json.JSONDecoder()
    spans = []
    text = done.stdout.strip()
    while text:
        obj, end = decoder.raw_decode(text)
        spans.append(obj)
        text = text[end:].strip()
    assert [s["name"] for s in spans] == ["process orders"]
    assert spans[0]["resource"]["attributes"]["service.name"] == "inventory"
    assert spans[0]["resource"]["attributes"]["deployment.environment"] == "test"
    assert "already called" in done.stderr


def test_sampler_variable_is_honoured():
    done = _run(
        {
            "OTEL_TRACES_SAMPLER": "always_off",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
        }
    )
    assert done.returncode == 0, done.stderr
    assert "process orders" not in done.stdout
