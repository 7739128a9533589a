from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from kafkascope import ConfigurationError, Telemetry, configure, traced_handler
from kafkascope._setup import span_queue
from kafkascope.testing import make_record


class HeldExporter(SpanExporter):
    """An exporter that cannot keep up: its first export waits until the test releases it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait()
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


class CountingExporter(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _dropped(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    assert data is not None
    total = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == "kafkascope.spans.dropped":
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        total += int(point.value)
    return total


def _tight_loop(telemetry: Telemetry, count: int) -> None:
    @traced_handler(
        group="billing",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    def handle(record: object) -> None:
        return None

    record = make_record("orders", key=b"k", offset=7)
    for _ in range(count):
        handle(record)


def test_spans_a_full_queue_cannot_take_are_counted_and_announced_once(monkeypatch, caplog):
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
    exporter = HeldExporter()
    reader = InMemoryMetricReader()
    telemetry = configure(
        set_global=False, span_exporter=exporter, metric_readers=(reader,), metrics=False
    )
    with caplog.at_level(logging.INFO):
        _tight_loop(telemetry, 1_000)
    exporter.release.set()
    assert telemetry.force_flush()
    dropped = _dropped(reader)
    assert dropped > 0
    assert exporter.exported + dropped == 1_000
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "kafkascope.spans.dropped" in warnings[0].getMessage()
    telemetry.shutdown()


def test_with_an_exporter_that_keeps_up_every_span_is_exported(caplog):
    exporter = CountingExporter()
    reader = InMemoryMetricReader()
    telemetry = configure(
        set_global=False, span_exporter=exporter, metric_readers=(reader,), metrics=False
    )
    with caplog.at_level(logging.WARNING):
        _tight_loop(telemetry, 20_000)
    assert telemetry.force_flush()
    assert exporter.exported == 20_000
    assert _dropped(reader) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    telemetry.shutdown()


def test_the_defaults_are_kafkascopes_sizing():
    chosen = span_queue.sizing({})
    assert chosen == span_queue.Sizing(16_384, 1_024, 1_000, 30_000)


def test_bsp_variables_replace_the_sizing():
    chosen = span_queue.sizing(
        {
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
            "OTEL_BSP_EXPORT_TIMEOUT": "700",
        }
    )
    assert chosen == span_queue.Sizing(100, 10, 250, 700)


def test_a_queue_smaller_than_the_default_batch_caps_the_batch():
    assert span_queue.sizing({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}).max_export_batch_size == 100
    small = span_queue.sizing({"OTEL_BSP_MAX_QUEUE_SIZE": "2000"}, 4_096)
    assert small.max_export_batch_size == 2_000


def test_the_batch_default_is_the_callers():
    assert span_queue.sizing({}, 4_096) == span_queue.Sizing(16_384, 4_096, 1_000, 30_000)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_BSP_EXPORT_TIMEOUT": "-1"}, "OTEL_BSP_EXPORT_TIMEOUT"),
        (
            {"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20"},
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        ),
    ],
)
def test_a_bad_bsp_variable_fails_configure_naming_it(monkeypatch, variables, named):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"^{named}=") as raised:
        configure(set_global=False)
    assert raised.value.setting == named
