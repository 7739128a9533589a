"""Asking the sampler first gives exactly the spans the SDK's ``start_span`` gives: for each of
the six samplers ``configure()`` can build, roots and children of sampled and unsampled, remote
and local parents, the same trace and span ids, flags, trace state and recording status."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, TraceFlags, TraceState

from kafkascope._core import presampling
from kafkascope._setup import otel_variables

SAMPLERS = [
    {"OTEL_TRACES_SAMPLER": "always_on"},
    {"OTEL_TRACES_SAMPLER": "always_off"},
    {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
    {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"},
    {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    {"OTEL_TRACES_SAMPLER": "parentbased_always_off"},
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
    {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
]


def _parent(*, sampled: bool, remote: bool) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span_context = trace.SpanContext(
        0x1234_5678_9ABC_DEF0_1234_5678_9ABC_DEF0,
        0x0FED_CBA9_8765_4321,
        is_remote=remote,
        trace_flags=flags,
        trace_state=TraceState([("vendor", "value")]),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


PARENTS = {
    "root": Context(),
    # The links policy's root: INVALID_SPAN set in the context; and another invalid span.
    "invalid span": trace.set_span_in_context(trace.INVALID_SPAN),
    "another invalid span": trace.set_span_in_context(
        trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    ),
    "sampled remote parent": _parent(sampled=True, remote=True),
    "unsampled remote parent": _parent(sampled=False, remote=True),
    "sampled local parent": _parent(sampled=True, remote=False),
    "unsampled local parent": _parent(sampled=False, remote=False),
}


class SeededIds(IdGenerator):
    """The same ids in the same order on every run."""

    def __init__(self) -> None:
        self._random = random.Random(7)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1

    def is_trace_id_random(self) -> bool:
        return True  # as the SDK's RandomIdGenerator: W3C's random trace id flag is set


class GivenTraceIds(SeededIds):
    """Seeded span ids; the trace ids given, in order, then seeded ones."""

    def __init__(self, trace_ids: list[int]) -> None:
        super().__init__()
        self._trace_ids = iter(trace_ids)

    def generate_trace_id(self) -> int:
        return next(self._trace_ids, None) or super().generate_trace_id()


def _spans(
    env: dict[str, str],
    parent: Context,
    *,
    presampled: bool,
    trace_ids: list[int] | None = None,
    sdk_ids: bool = False,
    parent_given: bool = False,
) -> list[tuple[Any, ...]]:
    sampler: Sampler = otel_variables.sampler(env)
    deciders = otel_variables.sampler_deciders(env)
    ids: IdGenerator = SeededIds() if trace_ids is None else GivenTraceIds(trace_ids)
    if sdk_ids:
        ids = RandomIdGenerator()
        random.seed(11)  # its ids come from the random module
    if presampled and deciders.roots is not None:
        ids = presampling.DecidingIdGenerator(ids)
    provider = TracerProvider(sampler=sampler, id_generator=ids, shutdown_on_exit=False)
    tracer = provider.get_tracer("test")
    presampler = presampling.Presampler(deciders, provider.id_generator) if presampled else None
    attributes = {"messaging.system": "kafka"}
    # Given: the parent's span context told apart, in a context that lacks it (as the
    # single-message path gives a traceparent it parsed).
    parent_span = trace.get_current_span(parent).get_span_context() if parent_given else None
    asked = parent if parent_span is None else Context()
    made = []
    for _ in range(200):
        span = None
        if presampler is not None:
            span = presampler.start(
                "process orders", asked, SpanKind.CONSUMER, attributes, [], parent_span
            )
        if span is None:
            span = tracer.start_span(
                "process orders", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
            )
        context = span.get_span_context()
        made.append(
            (
                context.trace_id,
                context.span_id,
                int(context.trace_flags),
                context.trace_state.to_header(),
                context.is_remote,
                span.is_recording(),
            )
        )
        span.end()
    if sdk_ids:
        random.seed()
    return made


@pytest.mark.parametrize("parent", PARENTS, ids=str)
@pytest.mark.parametrize("env", SAMPLERS, ids=lambda env: "-".join(env.values()))
def test_presampled_spans_are_the_sdks(env: dict[str, str], parent: str) -> None:
    expected = _spans(env, PARENTS[parent], presampled=False)
    assert _spans(env, PARENTS[parent], presampled=True) == expected


@pytest.mark.parametrize("parent", PARENTS, ids=str)
@pytest.mark.parametrize("env", SAMPLERS, ids=lambda env: "-".join(env.values()))
def test_presampled_spans_are_the_sdks_with_random_ids(env: dict[str, str], parent: str) -> None:
    # The presampler draws the SDK generator's ids itself, as the generator draws them.
    expected = _spans(env, PARENTS[parent], presampled=False, sdk_ids=True)
    assert _spans(env, PARENTS[parent], presampled=True, sdk_ids=True) == expected


VALID_PARENTS = [name for name in PARENTS if "parent" in name]


@pytest.mark.parametrize("parent", VALID_PARENTS, ids=str)
@pytest.mark.parametrize("env", SAMPLERS, ids=lambda env: "-".join(env.values()))
def test_presampled_spans_are_the_sdks_with_the_parent_given(
    env: dict[str, str], parent: str
) -> None:
    expected = _spans(env, PARENTS[parent], presampled=False)
    assert _spans(env, PARENTS[parent], presampled=True, parent_given=True) == expected


def test_a_ratio_sampler_keeps_and_drops_roots_alike_presampled():
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    spans = _spans(env, PARENTS["root"], presampled=True)
    # Both outcomes occur, so both the presampled drop and the decided trace id are compared.
    assert {recording for *_, recording in spans} == {True, False}


@pytest.mark.parametrize("name", ["traceidratio", "parentbased_traceidratio"])
def test_roots_either_side_of_the_ratio_bound_are_decided_as_the_sdk_decides(name: str) -> None:
    env = {"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    bound = TraceIdRatioBased(0.5).bound
    high = 0xABCD << 64  # only the low 64 bits decide
    edges = [bound - 1, bound, bound + 1, high | (bound - 1), high | bound, 1, (1 << 64) - 1]
    presampled = _spans(env, PARENTS["root"], presampled=True, trace_ids=edges)
    assert presampled == _spans(env, PARENTS["root"], presampled=False, trace_ids=edges)
    assert [recording for *_, recording in presampled[:5]] == [True, False, False, True, False]


def test_the_sdks_own_ratio_sampler_is_decided_by_its_bound():
    assert presampling.ratio_bound(TraceIdRatioBased(0.25)) == TraceIdRatioBased(0.25).bound
    assert presampling.ratio_bound(ALWAYS_OFF) is None

    class Sub(TraceIdRatioBased):
        pass

    assert presampling.ratio_bound(Sub(0.25)) is None


def _high_bits(
    self: TraceIdRatioBased,
    parent_context: Context | None,
    trace_id: int,
    *args: Any,
    **kwargs: Any,
) -> SamplingResult:
    """A ratio sampler of another rule (bit 64 of the trace id), keeping the parent's trace
    state as the SDK's samplers do: read from the context it is handed."""
    keep = (trace_id >> 64) & 1
    state = trace.get_current_span(parent_context).get_span_context().trace_state
    return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, trace_state=state)


def test_a_ratio_sampler_deciding_by_another_rule_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TraceIdRatioBased, "should_sample", _high_bits)
    assert presampling.ratio_bound(TraceIdRatioBased(0.5)) is None
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    presampled = _spans(env, PARENTS["root"], presampled=True)
    assert presampled == _spans(env, PARENTS["root"], presampled=False)


def test_a_sampler_asked_with_the_parent_given_reads_it_in_the_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sampler reads the parent's trace state in the context it is handed, which then must
    # hold the parent though the presampler was given a context without it.
    monkeypatch.setattr(TraceIdRatioBased, "should_sample", _high_bits)
    env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    parent = PARENTS["sampled remote parent"]
    expected = _spans(env, parent, presampled=False)
    assert {state for _, _, _, state, _, _ in expected} == {"vendor=value"}
    assert _spans(env, parent, presampled=True, parent_given=True) == expected


def test_a_decided_trace_id_is_handed_out_once():
    ids = presampling.DecidingIdGenerator(SeededIds())
    ids.decide(42)
    assert ids.generate_trace_id() == 42
    assert ids.generate_trace_id() != 42


def test_presampling_roots_needs_the_deciding_id_generator():
    deciders = otel_variables.sampler_deciders({"OTEL_TRACES_SAMPLER": "always_off"})
    with pytest.raises(ValueError, match="DecidingIdGenerator"):
        presampling.Presampler(deciders, RandomIdGenerator())


RATIO = TraceIdRatioBased


@pytest.mark.parametrize(
    ("env", "deciders"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_on"}, (None, None, None)),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, (ALWAYS_OFF,) * 3),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}, (RATIO,) * 3),
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, (None, None, None)),
        ({}, (None, None, ALWAYS_OFF)),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, (ALWAYS_OFF, None, ALWAYS_OFF)),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            (RATIO, None, ALWAYS_OFF),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"},
            (None, None, ALWAYS_OFF),
        ),
    ],
)
def test_what_decides_each_kind_of_span(env: dict[str, str], deciders: tuple[Any, ...]) -> None:
    found = otel_variables.sampler_deciders(env)
    for decider, expected in zip(
        (found.roots, found.under_sampled_parent, found.under_unsampled_parent),
        deciders,
        strict=True,
    ):
        if isinstance(expected, type):
            assert isinstance(decider, expected)
        else:
            assert decider is expected
    assert found.drop_nothing is (deciders == (None, None, None))


def test_a_ratio_sampler_built_inside_a_span_is_still_decided_by_its_bound():
    provider = TracerProvider(shutdown_on_exit=False)
    with provider.get_tracer("test").start_as_current_span("configure() called in here"):
        assert presampling.ratio_bound(TraceIdRatioBased(0.25)) == TraceIdRatioBased(0.25).bound
