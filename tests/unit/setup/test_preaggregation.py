from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from prometheus_client import REGISTRY, generate_latest

from kafkascope import TracedProducer, configure, traced_handler
from kafkascope._core import histograms as _histograms
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core import sizes as _sizes
from kafkascope._core.errors import ConfigurationError
from kafkascope._produce.send import SendOptions
from kafkascope._setup import preaggregation as _preaggregation
from kafkascope.testing import make_record
from tests.unit._producers import RecordingProducer, ack

CUMULATIVE = _preaggregation.otlp_temporalities({})
DELTA = _preaggregation.otlp_temporalities(
    {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}
)
HISTOGRAMS = {
    sc.METRIC_PROCESS_DURATION,
    sc.TIME_IN_QUEUE,
    sc.METRIC_CLIENT_OPERATION_DURATION,
    sc.BODY_SIZE,
}
PER_MESSAGE = HISTOGRAMS - {sc.BODY_SIZE}
"""The histograms recorded whatever the settings (body sizes only when captured)."""

# Values on, between and beyond the boundaries of both histograms (bisect_left and the
# exemplar reservoir's "value <= boundary" agree on a value equal to a boundary).
CYCLES: tuple[tuple[tuple[float, str | None, float], ...], ...] = (
    ((0.0, None, 0.005), (0.005, None, 0.3), (0.0051, "ValueError", 12.0), (0.2, None, 61.0)),
    ((0.2, None, 3600.0), (11.0, "KeyError", 5000.0), (0.004, None, 0.0)),
)
"""Two collection cycles of (processing or send seconds, error type, seconds in queue)."""
SIZES = ((0, 64, 65, 20_000_000), (1_048_576, 0, 300))
"""Body sizes of the same messages: on, between and beyond the boundaries."""


class Capture(MetricExporter):
    """Keeps what each export receives."""

    def __init__(self, temporalities: _preaggregation.Temporalities) -> None:
        super().__init__(preferred_temporality=temporalities)
        self.exports: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def _sdk_pipeline(temporalities: _preaggregation.Temporalities) -> tuple[MeterProvider, Capture]:
    capture = Capture(temporalities)
    reader = PeriodicExportingMetricReader(capture, export_interval_millis=math.inf)
    return MeterProvider(metric_readers=[reader], shutdown_on_exit=False), capture


def _pre_aggregated_pipeline(
    temporalities: _preaggregation.Temporalities,
) -> tuple[MeterProvider, Capture]:
    capture = Capture(temporalities)
    resource = Resource.create({})
    pre_aggregation, exporters = _preaggregation.wrap(
        [(capture, temporalities)], TraceBasedExemplarFilter(), resource
    )
    reader = PeriodicExportingMetricReader(exporters[0], export_interval_millis=math.inf)
    provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    _histograms.register(provider, pre_aggregation)
    return provider, capture


def _record_cycles(provider: MeterProvider) -> None:
    """The same measurements, each inside its own sampled (or, for every third, unsampled)
    span, with a collection after each cycle: one processed message (recorded as a single
    message's or as a batch's, by turns) and one send each."""
    instruments = _metrics.for_provider(provider)
    body_sizes = _sizes.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", "broker", 9092)
    sends = SendOptions(server_address="broker", server_port=9092, meter_provider=provider)
    sampled = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False).get_tracer("t")
    unsampled = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False).get_tracer("t")
    for cycle, sizes in zip(CYCLES, SIZES, strict=True):
        for position, (duration, error_type, waited) in enumerate(cycle):
            tracer = unsampled if position % 3 == 2 else sampled
            # Fixed ids: both pipelines see the same spans, so the same exemplars.
            span = tracer.start_span("process")
            context = trace.set_span_in_context(_fixed(span, position))
            if position % 2:
                instruments.observe_processed(
                    streams=streams,
                    error_type=error_type,
                    duration=duration,
                    messages=1,
                    waits=[(streams.waited("create_time"), waited)],
                    context=context,
                )
            else:  # a single message's way: its streams found once, under one lock
                instruments.observe_message(
                    streams,
                    error_type,
                    duration,
                    "create_time",
                    waited,
                    trace.get_current_span(context),
                    context,
                )
            body_sizes.record(sizes[position], sc.OPERATION_PROCESS, "orders", "billing", context)
            # A send's duration is recorded in whatever context its completion runs in.
            token = otel_context.attach(context)
            try:
                if position % 2:
                    instruments.observe_sent(
                        stream=instruments.send_stream("orders", "broker", 9092, error_type),
                        duration=duration,
                    )
                else:  # a traced producer's way: an acknowledged send's streams bound once
                    sends.record_sent(instruments, "orders", error_type, duration)
                body_sizes.record(sizes[position], sc.OPERATION_SEND, "orders")
            finally:
                otel_context.detach(token)
            span.end()
        provider.force_flush()


def _fixed(span: trace.Span, position: int) -> trace.Span:
    flags = span.get_span_context().trace_flags
    return trace.NonRecordingSpan(
        trace.SpanContext(0xABC0 + position, 0xDEF0 + position, False, flags)
    )


def _histogram_points(capture: Capture) -> list[dict[str, Any]]:
    """Each export's kafkascope histograms, without the clock readings (compared apart)."""
    found = []
    for export in capture.exports:
        cycle: dict[str, Any] = {}
        for resource_metrics in export.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name not in HISTOGRAMS:
                        continue
                    assert scope_metrics.scope.name == "kafkascope"
                    data = metric.data
                    assert isinstance(data, HistogramData)
                    cycle[metric.name] = {
                        "unit": metric.unit,
                        "description": metric.description,
                        "scope": scope_metrics.scope,
                        "temporality": data.aggregation_temporality,
                        "points": sorted((_point(p) for p in data.data_points), key=repr),
                    }
        found.append(cycle)
    return found


def _point(point: Any) -> dict[str, Any]:
    assert isinstance(point, HistogramDataPoint)
    return {
        "attributes": dict(point.attributes or {}),
        "count": point.count,
        "sum": point.sum,
        "bucket_counts": point.bucket_counts,
        "explicit_bounds": tuple(point.explicit_bounds),
        "min": point.min,
        "max": point.max,
        "exemplars": [
            (e.filtered_attributes, e.value, e.span_id, e.trace_id) for e in point.exemplars
        ],
    }


def _times(capture: Capture, name: str) -> list[list[tuple[int, int]]]:
    return [
        sorted(
            (p.start_time_unix_nano, p.time_unix_nano)
            for rm in export.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
            for p in m.data.data_points
        )
        for export in capture.exports
    ]


def _both(temporalities: _preaggregation.Temporalities) -> tuple[Capture, Capture]:
    sdk_provider, sdk = _sdk_pipeline(temporalities)
    pre_provider, pre = _pre_aggregated_pipeline(temporalities)
    _record_cycles(sdk_provider)
    _record_cycles(pre_provider)
    # The second pipeline's points came from the pre-aggregation, not SDK instruments.
    assert _metrics.for_provider(pre_provider)._sdk_histograms == ()
    assert _sizes.for_provider(pre_provider)._histogram is None
    return sdk, pre


def test_pre_aggregated_histograms_export_the_sdk_points_cumulative() -> None:
    sdk, pre = _both(CUMULATIVE)
    expected = _histogram_points(sdk)
    assert len(expected) == 2
    assert expected[1][sc.METRIC_PROCESS_DURATION]["points"]  # the SDK path did record
    assert _histogram_points(pre) == expected


def test_pre_aggregated_histograms_export_the_sdk_points_delta() -> None:
    sdk, pre = _both(DELTA)
    expected = _histogram_points(sdk)
    assert expected[0][sc.TIME_IN_QUEUE]["temporality"] is AggregationTemporality.DELTA
    assert _histogram_points(pre) == expected


@pytest.mark.parametrize("temporalities", [CUMULATIVE, DELTA], ids=["cumulative", "delta"])
def test_pre_aggregated_send_durations_export_the_sdk_points(
    temporalities: _preaggregation.Temporalities,
) -> None:
    sdk, pre = _both(temporalities)
    expected = [cycle[sc.METRIC_CLIENT_OPERATION_DURATION] for cycle in _histogram_points(sdk)]
    assert expected[1]["points"]  # the SDK path did record
    assert [c[sc.METRIC_CLIENT_OPERATION_DURATION] for c in _histogram_points(pre)] == expected


@pytest.mark.parametrize("temporalities", [CUMULATIVE, DELTA], ids=["cumulative", "delta"])
def test_pre_aggregated_body_sizes_export_the_sdk_points(
    temporalities: _preaggregation.Temporalities,
) -> None:
    sdk, pre = _both(temporalities)
    expected = [cycle[sc.BODY_SIZE] for cycle in _histogram_points(sdk)]
    assert len(expected[1]["points"]) == 2  # the SDK path did record: processed and sent
    assert [c[sc.BODY_SIZE] for c in _histogram_points(pre)] == expected


def test_pre_aggregated_send_durations_carry_exemplars_of_the_current_sampled_span() -> None:
    _, pre = _both(CUMULATIVE)
    points = _histogram_points(pre)[0][sc.METRIC_CLIENT_OPERATION_DURATION]["points"]
    assert {e[2] for p in points for e in p["exemplars"]} == {0xDEF1, 0xDEF3}


def test_pre_aggregated_histograms_carry_exemplars_of_sampled_spans_only() -> None:
    _, pre = _both(CUMULATIVE)
    points = _histogram_points(pre)[0][sc.METRIC_PROCESS_DURATION]["points"]
    exemplar_spans = {e[2] for p in points for e in p["exemplars"]}
    # 0.0 and 0.005 share the first bucket, which keeps the later; 0.0051 was unsampled.
    assert exemplar_spans == {0xDEF1, 0xDEF3}


def test_pre_aggregated_delta_points_start_where_the_previous_collection_ended() -> None:
    _, pre = _both(DELTA)
    (first,), (second,) = (
        {end for _, end in cycle} for cycle in _times(pre, sc.METRIC_PROCESS_DURATION)
    )
    starts = {start for start, _ in _times(pre, sc.METRIC_PROCESS_DURATION)[1]}
    # The streams measured in both cycles start at the first collection; the KeyError
    # stream, new in the second, when it was first measured.
    assert first in starts
    assert min(starts) == first < second


def test_pre_aggregated_cumulative_points_keep_their_start_time() -> None:
    _, pre = _both(CUMULATIVE)
    first, second = _times(pre, sc.TIME_IN_QUEUE)
    assert {start for start, _ in first} <= {start for start, _ in second}


def test_configure_records_through_pre_aggregation_on_its_push_readers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    telemetry = configure("svc", set_global=False, traces=False, export_interval_ms=3_600_000)
    try:
        assert _histograms.registered(telemetry.meter_provider) is not None
    finally:
        telemetry.shutdown()


def test_configure_aggregates_send_durations_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    telemetry = configure("svc", set_global=False, traces=False, export_interval_ms=3_600_000)
    try:
        _handle_and_send_one(telemetry.meter_provider)
        pre_aggregation = _histograms.registered(telemetry.meter_provider)
        assert pre_aggregation is not None
        (tables,) = pre_aggregation.tables
        (send_durations,) = [
            t for t in tables if t.spec.name == sc.METRIC_CLIENT_OPERATION_DURATION
        ]
        (point,) = send_durations.collect(0)
        assert point.count == 1
        assert dict(point.attributes or {})[sc.MESSAGING_OPERATION_NAME] == sc.OPERATION_SEND
    finally:
        telemetry.shutdown()


def test_configure_aggregates_body_sizes_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    telemetry = configure(
        "svc", set_global=False, traces=False, capture_sizes=True, export_interval_ms=3_600_000
    )
    try:
        _handle_and_send_one(telemetry.meter_provider)
        pre_aggregation = _histograms.registered(telemetry.meter_provider)
        assert pre_aggregation is not None
        (tables,) = pre_aggregation.tables
        (body_sizes,) = [t for t in tables if t.spec.name == sc.BODY_SIZE]
        points = body_sizes.collect(0)
        operations = {dict(p.attributes or {})[sc.MESSAGING_OPERATION_TYPE] for p in points}
        assert operations == {sc.OPERATION_PROCESS, sc.OPERATION_SEND}
        assert sorted(p.sum for p in points) == [0, 1]  # an empty record processed, b"v" sent
    finally:
        telemetry.shutdown()


def test_configure_without_metrics_records_the_histograms_nowhere() -> None:
    telemetry = configure("svc", set_global=False, traces=False, metrics=False)
    try:
        _handle_and_send_one(telemetry.meter_provider)
        pre_aggregation = _histograms.registered(telemetry.meter_provider)
        assert pre_aggregation is not None
        assert pre_aggregation.tables == []
    finally:
        telemetry.shutdown()


def test_configure_keeps_sdk_histograms_beside_an_extra_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    reader = InMemoryMetricReader()
    telemetry = configure(
        "svc",
        set_global=False,
        traces=False,
        export_interval_ms=3_600_000,
        metric_readers=(reader,),
    )
    try:
        _handle_and_send_one(telemetry.meter_provider)
        assert _histograms.registered(telemetry.meter_provider) is None
        assert _sdk_histogram_names(reader) >= PER_MESSAGE
    finally:
        telemetry.shutdown()


def test_a_user_meter_provider_gets_sdk_histograms() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    _handle_and_send_one(provider)
    assert _sdk_histogram_names(reader) >= PER_MESSAGE


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes"),
        ("OTEL_METRICS_EXEMPLAR_FILTER", "often"),
    ],
)
def test_configure_rejects_a_bad_metrics_variable_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        configure("svc", set_global=False, traces=False)
    assert raised.value.setting == variable


def test_lowmemory_temporality_is_delta_for_histograms_and_counters_only() -> None:
    lowmemory = _preaggregation.otlp_temporalities(
        {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "LowMemory"}
    )
    delta = {kind.__name__ for kind, t in lowmemory.items() if t is AggregationTemporality.DELTA}
    assert delta == {"Counter", "Histogram"}


def _handle_and_send_one(provider: MeterProvider) -> None:
    tracer_provider = TracerProvider(shutdown_on_exit=False)

    @traced_handler(tracer_provider=tracer_provider, meter_provider=provider)
    def handle(record: object) -> None:
        return None

    handle(make_record("orders", timestamp=1))
    producer = TracedProducer(
        RecordingProducer(), tracer_provider=tracer_provider, meter_provider=provider
    )
    ack(producer.send("orders", b"v"))


def _sdk_histogram_names(reader: InMemoryMetricReader) -> set[str]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        m.name
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if isinstance(m.data, HistogramData)
    }


def test_configure_with_a_prometheus_reader_serves_the_sdk_histograms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    reader = PrometheusMetricReader()
    telemetry = configure(
        "svc",
        set_global=False,
        traces=False,
        export_interval_ms=3_600_000,
        metric_readers=(reader,),
    )
    try:
        _handle_and_send_one(telemetry.meter_provider)
        page = generate_latest(REGISTRY).decode()
    finally:
        telemetry.shutdown()
    assert "messaging_process_duration_seconds_bucket{" in page
    assert "kafkascope_message_time_in_queue_seconds_count{" in page
    assert "messaging_client_operation_duration_seconds_bucket{" in page
