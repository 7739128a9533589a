from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import ConfigurationError, configure, traced_handler
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
        ({"commit_spans": "off"}, TypeError, "commit_spans"),
        ({"key_hook": "redact"}, TypeError, "key_hook"),
        ({"service_name": ""}, TypeError, "service_name"),
        ({"export_interval_ms": 0}, ValueError, "export_interval_ms"),
    ],
)
def test_bad_arguments_fail_naming_the_setting(kwargs, error, named):
    with pytest.raises(error, match=named):
        configure(set_global=False, **kwargs)


@pytest.mark.parametrize(
    "option",
    [
        "traces",
        "metrics",
        "logs",
        "set_global",
        "handle_sigterm",
        "quiet_exporter_errors",
        "client_metrics",
    ],
)
def test_a_boolean_option_given_something_else_fails_naming_it(option):
    kwargs: dict[str, Any] = {"set_global": False, option: "yes"}
    with pytest.raises(TypeError, match=f"^{option} must be True or False, got 'yes'"):
        configure(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"span_exporter": "x"}, "span_exporter"),
        ({"log_exporter": "x", "logs": True}, "log_exporter"),
        ({"metric_readers": ("x",)}, "metric_readers"),
        ({"metric_readers": InMemoryMetricReader()}, "metric_readers"),
        ({"resource_attributes": [1]}, "resource_attributes"),
        ({"resource_attributes": {1: "a"}}, "resource_attributes"),
        ({"resource_attributes": {"team": object()}}, "resource_attributes"),
        ({"export_interval_ms": "1000"}, "export_interval_ms"),
        ({"export_interval_ms": True}, "export_interval_ms"),
        ({"protocol": 4317}, "protocol"),
    ],
)
def test_an_argument_of_the_wrong_type_fails_naming_it(kwargs, named):
    with pytest.raises(TypeError, match=f"^{named} "):
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
        ("OTEL_PYTHON_KAFKASCOPE_COMMIT_SPANS", "sometimes"),
    ],
)
def test_bad_environment_fails_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        configure(set_global=False)


@pytest.mark.parametrize(
    ("variable", "value", "also"),
    [
        ("OTEL_TRACES_SAMPLER", "bogus", {}),
        ("OTEL_TRACES_SAMPLER_ARG", "half", {"OTEL_TRACES_SAMPLER": "traceidratio"}),
        ("OTEL_TRACES_SAMPLER_ARG", "2", {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}),
        ("OTEL_METRIC_EXPORT_INTERVAL", "abc", {}),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0", {}),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "-5", {}),
        ("OTEL_RESOURCE_ATTRIBUTES", "garbage", {}),
        ("OTEL_RESOURCE_ATTRIBUTES", "team=a,,=b", {}),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten", {}),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0", {}),
        ("OTEL_TRACES_EXPORTER", "console,none", {}),
        ("OTEL_LOGS_EXPORTER", "otlp,", {}),
    ],
)
def test_a_bad_standard_variable_is_a_configuration_error_naming_it(
    monkeypatch, variable, value, also
):
    for name, other in also.items():
        monkeypatch.setenv(name, other)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"^{variable}={value!r} ") as raised:
        configure(set_global=False, logs=True)
    assert raised.value.setting == variable


def test_client_metrics_false_turns_the_client_statistics_off():
    configure(set_global=False, traces=False, metrics=False, client_metrics=False)
    assert _settings.current().client_metrics is False


def test_the_client_metrics_variable_turns_them_off_and_a_bad_one_is_named(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CLIENT_METRICS", "false")
    configure(set_global=False, traces=False, metrics=False)
    assert _settings.current().client_metrics is False
    monkeypatch.setenv("OTEL_PYTHON_KAFKASCOPE_CLIENT_METRICS", "sometimes")
    with pytest.raises(ConfigurationError, match=r"^OTEL_PYTHON_KAFKASCOPE_CLIENT_METRICS="):
        configure(set_global=False, traces=False, metrics=False)


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


def test_commit_spans_option_turns_them_off():
    configure(set_global=False, traces=False, metrics=False, commit_spans=False)
    assert _settings.current().commit_spans is False


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


def test_sampler_ratio_variable_is_honoured():
    done = _run(
        {
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0",
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
        }
    )
    assert done.returncode == 0, done.stderr
    assert "process orders" not in done.stdout


@pytest.fixture
def otlp_http() -> Iterator[tuple[str, list[str]]]:
    """A real OTLP/HTTP receiver on loopback that answers 200 and records the paths posted."""
    paths: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_exporter_list_exports_to_each(otlp_http):
    endpoint, paths = otlp_http
    done = _run(
        {
            "OTEL_TRACES_EXPORTER": "console,otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        }
    )
    assert done.returncode == 0, done.stderr
    assert '"name": "process orders"' in done.stdout
    assert paths == ["/v1/traces"]
