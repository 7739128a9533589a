"""``configure()`` asks its sampler before the SDK's ``start_span`` when the sampler may drop a
span: the handlers' spans are the ones the sampler keeps, and every message still runs inside
its (possibly non-recording) span."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from kafkascope import configure, traced_handler
from kafkascope._core import presampling
from kafkascope.testing import make_record


def _configure(monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter, **env: str):
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return configure("svc", set_global=False, span_exporter=exporter, export_interval_ms=3_600_000)


def test_a_ratio_samplers_spans_are_the_ones_its_decision_keeps(monkeypatch):
    exporter = InMemorySpanExporter()
    telemetry = _configure(
        monkeypatch,
        exporter,
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0.5",
    )
    seen: dict[int, bool] = {}

    @traced_handler(group="billing", tracer_provider=telemetry.tracer_provider)
    def handle(record):
        span = trace.get_current_span()
        seen[span.get_span_context().trace_id] = span.is_recording()

    try:
        assert presampling.for_provider(telemetry.tracer_provider) is not None
        for offset in range(200):
            handle(make_record("orders", offset=offset))
        telemetry.tracer_provider.force_flush()
    finally:
        telemetry.shutdown()
    ratio = TraceIdRatioBased(0.5)
    for trace_id, recording in seen.items():
        decision = ratio.should_sample(Context(), trace_id, "process orders", SpanKind.CONSUMER)
        assert recording is (decision.decision is Decision.RECORD_AND_SAMPLE)
    exported = {span.context.trace_id for span in exporter.get_finished_spans()}
    assert exported == {trace_id for trace_id, recording in seen.items() if recording}
    assert 0 < len(exported) < 200
    assert len(seen) == 200  # every message ran inside a span of its own trace


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_SAMPLER": "always_on"},
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"},
        # The SDK's own span metrics count dropped spans: every span goes through the SDK.
        {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
            "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true",
        },
    ],
)
def test_no_presampling_where_nothing_is_dropped_or_the_sdk_counts_drops(monkeypatch, env):
    telemetry = _configure(monkeypatch, InMemorySpanExporter(), **env)
    try:
        assert presampling.for_provider(telemetry.tracer_provider) is None
    finally:
        telemetry.shutdown()


def test_the_default_sampler_presamples_children_of_unsampled_parents_only(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    telemetry = _configure(monkeypatch, InMemorySpanExporter())
    try:
        found = presampling.for_provider(telemetry.tracer_provider)
        assert found is not None
        # Roots are always kept, so none is presampled; the ids are still the SDK's own
        # generator's, handed over decided for the send spans made when they complete.
        ids = telemetry.tracer_provider.id_generator
        assert isinstance(ids, presampling.DecidingIdGenerator)
        assert type(ids.inner) is RandomIdGenerator
        assert presampling.for_sends(telemetry.tracer_provider) is found
    finally:
        telemetry.shutdown()


@pytest.mark.parametrize(
    ("env", "decided"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_on"}, True),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, True),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, True),
        # The SDK's own span metrics count spans as they start: the SDK makes them at the send.
        (
            {
                "OTEL_TRACES_SAMPLER": "always_on",
                "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true",
            },
            False,
        ),
    ],
)
def test_send_spans_are_decided_at_the_send_unless_the_sdk_counts_spans(monkeypatch, env, decided):
    telemetry = _configure(monkeypatch, InMemorySpanExporter(), **env)
    try:
        found = presampling.for_sends(telemetry.tracer_provider)
        assert (found is not None) is decided
        ids = telemetry.tracer_provider.id_generator
        assert isinstance(ids, presampling.DecidingIdGenerator) is decided
    finally:
        telemetry.shutdown()
