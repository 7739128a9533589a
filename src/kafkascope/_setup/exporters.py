"""Which OTLP (or console) exporters ``configure()`` builds: arguments and the standard
``OTEL_*`` variables, checked up front so a bad value fails at start-up naming the setting."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from kafkascope._core.errors import ConfigurationError
from kafkascope._core.settings import ENV_OTLP_SPAN_EXPORTER
from kafkascope._setup import otel_variables as _otel_variables
from kafkascope._setup.otlp import settings as _otlp_settings
from kafkascope._setup.otlp.exporter import DirectOTLPSpanExporter

Protocol = Literal["grpc", "http/protobuf"]
OtlpSpanExporter = Literal["kafkascope", "sdk"]
_SPAN_EXPORTERS: Final = ("kafkascope", "sdk")
_PROTOCOLS: Final = ("grpc", "http/protobuf")
_EXPORTERS: Final = ("otlp", "console", "none")
_HTTP_PATHS: Final = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def _check_endpoint(value: str, setting: str) -> str:
    return _otlp_settings.check_url(value, setting).rstrip("/")


def _choice(value: str, allowed: tuple[str, ...], setting: str) -> str:
    if value not in allowed:
        raise ConfigurationError(setting, f"{setting}={value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Plan:
    """Which exporters configure() builds, from its arguments and the ``OTEL_*`` variables.

    ``traces``, ``metrics`` and ``logs`` list the exporters of each signal (``otlp``,
    ``console``); empty means none. ``traces_protocol`` is ``protocol`` unless
    ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` says otherwise; ``span_exporter`` is ``kafkascope``
    (the direct OTLP span exporter) or ``sdk`` (the SDK's).
    """

    protocol: str
    endpoint: str | None
    traces: tuple[str, ...]
    metrics: tuple[str, ...]
    logs: tuple[str, ...]
    interval_ms: float | None
    traces_protocol: str = "grpc"
    span_exporter: str = "kafkascope"


def exporter_names(env: Mapping[str, str], signal: str) -> tuple[str, ...]:
    """``OTEL_{signal}_EXPORTER``: a comma-separated list of ``otlp`` and ``console``, or
    ``none`` (the specification's form); ``otlp`` when unset."""
    name = f"OTEL_{signal.upper()}_EXPORTER"
    raw = env.get(name, "")
    if not raw.strip():
        return ("otlp",)
    names = [part.strip().lower() for part in raw.split(",")]
    if any(n not in _EXPORTERS for n in names) or ("none" in names and len(names) > 1):
        raise ConfigurationError(
            name, f"{name}={raw!r} is not a comma-separated list of otlp and console, or none"
        )
    return tuple(dict.fromkeys(n for n in names if n != "none"))


def plan_exporters(
    env: Mapping[str, str],
    endpoint: str | None,
    protocol: str | None,
    traces: bool,
    metrics_on: bool,
    logs: bool,
    export_interval_ms: int | None,
    otlp_span_exporter: str | None = None,
) -> Plan:
    """Check the exporter arguments and variables and decide which exporters to build."""
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
        if not isinstance(protocol, str):
            raise TypeError(f"protocol must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}")
        chosen = _choice(protocol, _PROTOCOLS, "protocol")
    else:
        chosen = _choice(
            env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").strip() or "grpc",
            _PROTOCOLS,
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        )
    interval_ms: float | None = _otel_variables.check_intervals(env)
    if export_interval_ms is not None:
        if not isinstance(export_interval_ms, int) or isinstance(export_interval_ms, bool):
            raise TypeError(f"export_interval_ms must be an int, got {export_interval_ms!r}")
        if export_interval_ms <= 0:
            raise ConfigurationError(
                "export_interval_ms",
                f"export_interval_ms={export_interval_ms!r} must be a positive int",
            )
        interval_ms = export_interval_ms
    chosen_traces = exporter_names(env, "traces")
    traces_protocol = chosen
    if protocol is None and env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip():
        traces_protocol = _choice(
            env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"].strip(),
            _PROTOCOLS,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        )
    span_exporter = _span_exporter(env, otlp_span_exporter)
    if traces and "otlp" in chosen_traces and span_exporter == "kafkascope":
        # Every OTEL_EXPORTER_OTLP_* value the direct exporter reads, checked now.
        _otlp_settings.resolve(
            env,
            protocol=traces_protocol,
            endpoint=_endpoint(Plan(traces_protocol, endpoint, (), (), (), None), "traces"),
        )
    chosen_metrics = exporter_names(env, "metrics")
    chosen_logs = exporter_names(env, "logs")
    return Plan(
        chosen,
        endpoint,
        chosen_traces if traces else (),
        chosen_metrics if metrics_on else (),
        chosen_logs if logs else (),
        interval_ms,
        traces_protocol,
        span_exporter,
    )


def _span_exporter(env: Mapping[str, str], argument: str | None) -> str:
    """``configure(otlp_span_exporter=...)``, else ``OTEL_PYTHON_KAFKASCOPE_OTLP_SPAN_EXPORTER``,
    else ``kafkascope``."""
    if argument is not None:
        if not isinstance(argument, str):
            raise TypeError(f"otlp_span_exporter must be kafkascope or sdk, got {argument!r}")
        return _choice(argument, _SPAN_EXPORTERS, "otlp_span_exporter")
    raw = env.get(ENV_OTLP_SPAN_EXPORTER, "").strip().lower()
    return _choice(raw, _SPAN_EXPORTERS, ENV_OTLP_SPAN_EXPORTER) if raw else "kafkascope"


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


def _otlp_spans(plan: Plan) -> SpanExporter:
    traces_plan = Plan(plan.traces_protocol, plan.endpoint, (), (), (), None)
    if plan.span_exporter == "sdk":
        exporter: SpanExporter = _otlp(traces_plan, "traces")
        return exporter
    return DirectOTLPSpanExporter(
        protocol=plan.traces_protocol, endpoint=_endpoint(traces_plan, "traces")
    )


def span_exporters(plan: Plan) -> list[SpanExporter]:
    """The span exporters the plan chose."""
    return [
        ConsoleSpanExporter() if name == "console" else _otlp_spans(plan) for name in plan.traces
    ]


def metric_exporters(plan: Plan) -> list[MetricExporter]:
    """The metric exporters the plan chose."""
    return [
        ConsoleMetricExporter() if name == "console" else _otlp(plan, "metrics")
        for name in plan.metrics
    ]


def log_exporters(plan: Plan) -> list[LogRecordExporter]:
    """The log exporters the plan chose."""
    return [
        ConsoleLogRecordExporter() if name == "console" else _otlp(plan, "logs")
        for name in plan.logs
    ]
