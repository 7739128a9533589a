"""A send span's context decided before the SDK makes the span (``Presampler.span_context``) is
the one the SDK's ``start_span`` gives when handed the decided ids: for each sampler
``configure()`` can build, roots and children of sampled and unsampled, remote and local
parents, the same trace and span ids, flags, trace state and recording status."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, TraceIdRatioBased
from opentelemetry.trace import SpanKind, TraceFlags

from kafkascope._core import presampling
from kafkascope._setup import otel_variables
from tests.unit.core.test_presampling import PARENTS, SAMPLERS, SeededIds


@pytest.mark.parametrize("parent", PARENTS, ids=str)
@pytest.mark.parametrize("env", SAMPLERS, ids=lambda env: "-".join(env.values()))
def test_a_decided_span_context_is_the_one_the_sdk_gives(env: dict[str, str], parent: str) -> None:
    context = PARENTS[parent]
    ids = presampling.DecidingIdGenerator(RandomIdGenerator())
    provider = TracerProvider(
        sampler=otel_variables.sampler(env), id_generator=ids, shutdown_on_exit=False
    )
    tracer = provider.get_tracer("test")
    presampler = presampling.Presampler(otel_variables.sampler_deciders(env), ids)
    is_root = not trace.get_current_span(context).get_span_context().is_valid
    decisions = set()
    for _ in range(200):
        decided = presampler.span_context(trace.get_current_span(context).get_span_context())
        assert decided is not None
        span_context, root = decided
        assert root is is_root
        if root:
            ids.decide(span_context.trace_id)
        ids.decide_span(span_context.span_id)
        span = tracer.start_span("send orders", context=context, kind=SpanKind.PRODUCER)
        made = span.get_span_context()
        assert made == span_context
        assert int(made.trace_flags) == int(span_context.trace_flags)
        assert made.trace_state == span_context.trace_state
        assert made.is_remote is False
        assert span.is_recording() is bool(span_context.trace_flags & TraceFlags.SAMPLED)
        decisions.add(span.is_recording())
        span.end()
    if env.get("OTEL_TRACES_SAMPLER_ARG") == "0.5" and is_root:
        assert decisions == {True, False}  # both sides of the ratio's bound were decided


def test_a_sampler_that_must_be_asked_leaves_the_span_to_the_sdk() -> None:
    class Stricter(TraceIdRatioBased):
        """Not the SDK's own class: its decisions are not known by its bound."""

    ids = presampling.DecidingIdGenerator(SeededIds())
    presampler = presampling.Presampler(presampling.Deciders(Stricter(0.5), None, ALWAYS_OFF), ids)
    assert presampler.span_context(trace.INVALID_SPAN_CONTEXT) is None
    # A sampled parent's child is kept whatever the root sampler: decided.
    sampled_parent = trace.get_current_span(PARENTS["sampled remote parent"]).get_span_context()
    decided = presampler.span_context(sampled_parent)
    assert decided is not None
    assert decided[0].trace_flags & TraceFlags.SAMPLED


def test_without_the_deciding_id_generator_nothing_is_decided() -> None:
    deciders = presampling.Deciders(None, None, ALWAYS_OFF)
    presampler = presampling.Presampler(deciders, RandomIdGenerator())
    assert presampler.deciding is None
    assert presampler.span_context(trace.INVALID_SPAN_CONTEXT) is None


def test_a_decided_span_id_is_handed_out_once_and_forgotten_when_not_taken() -> None:
    ids = presampling.DecidingIdGenerator(SeededIds())
    ids.decide_span(42)
    assert ids.generate_span_id() == 42
    assert ids.generate_span_id() != 42
    ids.decide(7)
    ids.decide_span(43)
    ids.forget()
    assert ids.generate_trace_id() != 7
    assert ids.generate_span_id() != 43
