"""The in-memory telemetry back end behind ``capotel``: installed on the global providers once
per session; each test switches what is captured into its own lists."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider


class SpanCapture(SpanProcessor):
    """Sends finished spans to the current test's list; nothing outside a test."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] | None = None

    def on_end(self, span: ReadableSpan) -> None:
        if self.spans is not None:
            self.spans.append(span)


@dataclass
class Backend:
    """Providers installed globally once per session; tests switch what they capture into."""

    span_capture: SpanCapture
    logs: InMemoryLogRecordExporter
    reader: InMemoryMetricReader | None
    logger_provider: LoggerProvider
    tracer_provider: TracerProvider
    meter_provider: MeterProvider


_backend: Backend | None = None
_in_pytest = False


def enter_pytest() -> None:
    """Mark this process as a pytest run with kafkascope's plugin (before any test module or
    conftest is imported): from now on ``configure()`` installs this backend, not exporters."""
    global _in_pytest
    _in_pytest = True


def in_pytest() -> bool:
    """Whether :func:`enter_pytest` was called: ``capotel`` may capture in this process."""
    return _in_pytest


_DELTA = {
    Counter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    ObservableUpDownCounter: AggregationTemporality.DELTA,
    ObservableGauge: AggregationTemporality.DELTA,
}


def install_backend() -> Backend:
    """The session's providers: the global SDK ones where set, else new ones set globally."""
    global _backend
    if _backend is not None:
        return _backend
    resource = Resource.create({"service.name": "capotel"})
    capture = SpanCapture()
    tracer_provider = trace.get_tracer_provider()
    if not isinstance(tracer_provider, TracerProvider):
        tracer_provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(tracer_provider)
    tracer_provider.add_span_processor(capture)

    reader: InMemoryMetricReader | None = None
    meter_provider = metrics.get_meter_provider()
    if not isinstance(meter_provider, MeterProvider):
        reader = InMemoryMetricReader(preferred_temporality=_DELTA)  # type: ignore[arg-type]
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        metrics.set_meter_provider(meter_provider)

    log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = _logs.get_logger_provider()
    if not isinstance(logger_provider, LoggerProvider):
        logger_provider = LoggerProvider(resource=resource)
        _logs.set_logger_provider(logger_provider)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    _backend = Backend(
        capture, log_exporter, reader, logger_provider, tracer_provider, meter_provider
    )
    return _backend
