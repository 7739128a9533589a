"""Which OTLP (or console) exporters ``configure()`` builds: arguments and the standard
``OTEL_*`` variables, checked up front so a bad value fails at start-up naming the setting."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlparse

from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

Protocol = Literal["grpc", "http/protobuf"]
_PROTOCOLS: Final = ("grpc", "http/protobuf")
_EXPORTERS: Final = ("otlp", "console", "none")
_HTTP_PATHS: Final = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def _check_endpoint(value: str, setting: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{setting}={value!r} is not an http:// or https:// URL with a host")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{setting}={value!r} has an invalid port") from exc
    return value.rstrip("/")


def _choice(value: str, allowed: tuple[str, ...], setting: str) -> str:
    if value not in allowed:
        raise ValueError(f"{setting}={value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Plan:
    """Which exporters configure() builds, from its arguments and the ``OTEL_*`` variables."""

    protocol: str
    endpoint: str | None
    traces: str
    metrics: str
    logs: str
    interval_ms: int | None


def plan_exporters(
    env: Mapping[str, str],
    endpoint: str | None,
    protocol: str | None,
    traces: bool,
    metrics_on: bool,
    logs: bool,
    export_interval_ms: int | None,
) -> Plan:
    if endpoint is not None:
        if not isinstance(endpoint, str):
            raise TypeError(f"endpoint must be a URL string, got {endpoint!r}")
        endpoint = _check_endpoint(endpoint, "endpoint")
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        _check_endpoint(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "OTEL_EXPORTER_OTLP_ENDPOINT")
    for kind in ("TRACES", "METRICS", "LOGS"):
        name = f"OTEL_EXPORTER_OTLP_{kind}_ENDPOINT"
        if env.get(name):
            _check_endpoint(env[name], name)
    if protocol is not None:
        chosen = _choice(protocol, _PROTOCOLS, "protocol")
    else:
        chosen = _choice(
            env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").strip() or "grpc",
            _PROTOCOLS,
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        )
    if export_interval_ms is not None and (
        not isinstance(export_interval_ms, int) or export_interval_ms <= 0
    ):
        raise ValueError(f"export_interval_ms={export_interval_ms!r} must be a positive int")

    def exporter(signal: str, enabled: bool) -> str:
        name = f"OTEL_{signal.upper()}_EXPORTER"
        raw = env.get(name, "otlp").strip().lower() or "otlp"
        chosen_exporter = _choice(raw, _EXPORTERS, name)
        return chosen_exporter if enabled else "none"

    return Plan(
        chosen,
        endpoint,
        exporter("traces", traces),
        exporter("metrics", metrics_on),
        exporter("logs", logs),
        export_interval_ms,
    )


def _endpoint(plan: Plan, signal: str) -> str | None:
    # None lets the exporter read OTEL_EXPORTER_OTLP_*ENDPOINT itself.
    if plan.endpoint is None:
        return None
    if plan.protocol == "grpc":
        return plan.endpoint
    return plan.endpoint + _HTTP_PATHS[signal]


_OTLP: Final = {
    ("traces", "grpc"): (
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
        "OTLPSpanExporter",
    ),
    ("traces", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "OTLPSpanExporter",
    ),
    ("metrics", "grpc"): (
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter",
        "OTLPMetricExporter",
    ),
    ("metrics", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "OTLPMetricExporter",
    ),
    ("logs", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    ("logs", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http._log_exporter",
        "OTLPLogExporter",
    ),
}
"""The OTLP exporter class of each signal and protocol (imported only when chosen)."""


def _otlp(plan: Plan, signal: str) -> Any:
    module, name = _OTLP[(signal, plan.protocol)]
    exporter_class = getattr(importlib.import_module(module), name)
    return exporter_class(endpoint=_endpoint(plan, signal))


def span_exporter(plan: Plan) -> SpanExporter:
    """The span exporter the plan chose (not called for ``none``)."""
    exporter: SpanExporter = (
        ConsoleSpanExporter() if plan.traces == "console" else _otlp(plan, "traces")
    )
    return exporter


def metric_exporter(plan: Plan) -> MetricExporter:
    """The metric exporter the plan chose (not called for ``none``)."""
    exporter: MetricExporter = (
        ConsoleMetricExporter() if plan.metrics == "console" else _otlp(plan, "metrics")
    )
    return exporter


def log_exporter(plan: Plan) -> LogRecordExporter:
    """The log exporter the plan chose (not called for ``none``)."""
    exporter: LogRecordExporter = (
        ConsoleLogRecordExporter() if plan.logs == "console" else _otlp(plan, "logs")
    )
    return exporter
