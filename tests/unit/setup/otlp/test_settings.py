"""The direct exporter's settings: the SDK's variables and defaults, bad values named."""

from __future__ import annotations

import pytest

from kafkascope import ConfigurationError, DirectOTLPSpanExporter
from kafkascope._setup.otlp.settings import resolve


def test_defaults_are_the_sdks_grpc_on_localhost_4317_insecure_10s():
    settings = resolve({})
    assert (settings.protocol, settings.endpoint, settings.insecure, settings.timeout) == (
        "grpc",
        "localhost:4317",
        True,
        10.0,
    )


def test_http_appends_v1_traces_to_the_general_endpoint():
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
    }
    assert resolve(env).endpoint == "http://c:4318/v1/traces"


def test_an_https_endpoint_is_never_insecure():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"}
    assert resolve(env).insecure is False


def test_the_insecure_variable_makes_a_plain_host_insecure():
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:1",
    }
    assert resolve(env).insecure is False


def test_the_traces_timeout_wins_over_the_general_one():
    env = {"OTEL_EXPORTER_OTLP_TIMEOUT": "3", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "7"}
    assert resolve(env).timeout == 7.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_INSECURE", "yes"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
    ],
)
def test_a_bad_variable_fails_naming_it(variable, value):
    with pytest.raises(ConfigurationError, match=variable):
        resolve({variable: value})


def test_an_unreadable_certificate_fails_at_construction_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_OTLP_CERTIFICATE"):
        DirectOTLPSpanExporter()
