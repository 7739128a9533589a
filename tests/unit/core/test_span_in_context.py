"""A span put into a context in one step gives what ``trace.set_span_in_context`` gives: the
same keys and values, a ``Context``, the parent untouched; and an API that stores spans some
other way is called instead. The handler path that writes the step out in place is checked
with the key learnt and without it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kafkascope import inject_headers, traced_handler
from kafkascope._consume import single
from kafkascope._core import span_in_context
from kafkascope._core.span_in_context import SPAN_KEY, with_span
from kafkascope.testing import make_record
from tests.unit._strategies import FAST

KEYS = [otel_context.create_key(name) for name in ("a", "b", "c")]


def _span(span_id: int) -> trace.Span:
    return NonRecordingSpan(SpanContext(0xABC, span_id, False, TraceFlags(TraceFlags.SAMPLED)))


@st.composite
def parents(draw: st.DrawFn) -> Context:
    """Empty contexts, contexts with values, with baggage, with a span already."""
    context = Context()
    for key in draw(st.lists(st.sampled_from(KEYS), unique=True)):
        context = otel_context.set_value(key, draw(st.integers()), context)
    if draw(st.booleans()):
        context = baggage.set_baggage("tenant", draw(st.text(max_size=5)), context)
    if draw(st.booleans()):
        context = trace.set_span_in_context(_span(draw(st.integers(1, 2**64 - 1))), context)
    return context


def test_the_key_is_learnt_from_the_installed_api():
    span = _span(7)
    assert SPAN_KEY is not None
    assert trace.get_current_span(Context({SPAN_KEY: span})) is span


@FAST
@given(parent=parents(), span_id=st.integers(1, 2**64 - 1))
def test_with_span_gives_what_set_span_in_context_gives(parent: Context, span_id: int):
    span = _span(span_id)
    before = dict(parent)
    made = with_span(span, parent)
    expected = trace.set_span_in_context(span, parent)
    assert type(made) is Context
    assert made == expected
    assert trace.get_current_span(made) is span
    assert dict(parent) == before
    for key in KEYS:
        assert otel_context.get_value(key, made) == otel_context.get_value(key, parent)


def test_an_api_that_stores_spans_otherwise_is_called_instead(monkeypatch):
    real = trace.set_span_in_context

    def two_keys(span: trace.Span, context: Context | None = None) -> Context:
        return otel_context.set_value("shadow", span, real(span, context))

    monkeypatch.setattr(trace, "set_span_in_context", two_keys)
    assert span_in_context._learn_key() is None

    monkeypatch.setattr(span_in_context, "SPAN_KEY", None)
    made = span_in_context.with_span(_span(3), Context())
    assert otel_context.get_value("shadow", made) is trace.get_current_span(made)


@pytest.mark.parametrize("key", [SPAN_KEY, None], ids=["key learnt", "the API's call"])
@pytest.mark.parametrize("traced", [False, True], ids=["no trace headers", "trace headers"])
def test_the_handler_runs_in_its_span_with_the_ambient_values(capotel, monkeypatch, key, traced):
    monkeypatch.setattr(single, "SPAN_KEY", key)
    headers = []
    if traced:
        with trace.get_tracer("tests").start_as_current_span("send orders"):
            headers = inject_headers()
    seen: dict[str, object] = {}

    @traced_handler
    def handle(rec):
        seen["span_id"] = trace.get_current_span().get_span_context().span_id
        seen["value"] = otel_context.get_value(KEYS[0])

    token = otel_context.attach(otel_context.set_value(KEYS[0], "ambient"))
    try:
        handle(make_record("orders", headers=headers))
        assert otel_context.get_value(KEYS[0]) == "ambient"
    finally:
        otel_context.detach(token)
    assert seen["span_id"] == capotel.span("process orders").context.span_id
    # The producer's context is the parent; without one, the ambient context is.
    assert seen["value"] == (None if traced else "ambient")
