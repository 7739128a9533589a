"""The direct encoder's bytes equal the SDK encoder's, for any span, resource and scope."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from kafkascope._setup.otlp.encoder import SpanEncoder

PROPERTY = settings(max_examples=100, deadline=None, database=None)

texts = st.text(max_size=12) | st.sampled_from(["", "é", "日本語", "🎉 emoji", "a" * 200])
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from(
    [0, 1, -1, 127, 128, 2**63 - 1, -(2**63)]
)
huge_ints = st.sampled_from([2**63, -(2**63) - 1, 2**100])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, -0.0]
)
scalars = st.none() | st.booleans() | texts | ints | floats | st.binary(max_size=20)
values: st.SearchStrategy[Any] = st.recursive(
    scalars | huge_ints,
    lambda inner: (
        st.lists(inner, max_size=4).map(tuple) | st.dictionaries(texts, inner, max_size=3)
    ),
    max_leaves=8,
)
attribute_maps = st.dictionaries(texts, values, max_size=6)


@st.composite
def bounded(draw: st.DrawFn) -> Any:
    """Plain dicts, or the SDK's BoundedAttributes with some attributes dropped."""
    items = draw(attribute_maps)
    if draw(st.booleans()):
        return items
    return BoundedAttributes(maxlen=draw(st.integers(0, 4)), attributes=items, immutable=False)


def contexts() -> st.SearchStrategy[SpanContext]:
    return st.builds(
        SpanContext,
        trace_id=st.integers(1, 2**128 - 1),
        span_id=st.integers(1, 2**64 - 1),
        is_remote=st.booleans(),
        trace_flags=st.sampled_from([TraceFlags(0), TraceFlags(1)]),
        trace_state=st.sampled_from(
            [TraceState(), TraceState([("vendor", "value")]), TraceState([("a", "1"), ("b", "2")])]
        ),
    )


resources = st.builds(
    Resource,
    attributes=attribute_maps,
    schema_url=st.sampled_from(["", "https://opentelemetry.io/schemas/1.26.0"]),
)
scopes = st.none() | st.builds(
    InstrumentationScope,
    name=st.sampled_from(["", "kafkascope", "other"]),
    version=st.sampled_from([None, "", "1.0"]),
    schema_url=st.sampled_from([None, "", "https://example.com/s"]),
    attributes=st.none() | attribute_maps,
)
events = st.builds(
    Event,
    name=texts,
    attributes=bounded(),
    timestamp=st.integers(0, 2**64 - 1),
)
links = st.builds(Link, context=contexts(), attributes=st.none() | bounded())
statuses = st.builds(
    Status,
    status_code=st.sampled_from(list(StatusCode)),
    description=st.none() | texts,
)


@st.composite
def spans(draw: st.DrawFn, pool_resources: list[Resource], pool_scopes: list[Any]) -> ReadableSpan:
    status = draw(statuses)
    return ReadableSpan(
        name=draw(texts),
        context=draw(contexts()),
        parent=draw(st.none() | contexts()),
        resource=draw(st.sampled_from(pool_resources)),
        attributes=draw(bounded()),
        events=draw(st.lists(events, max_size=2)),
        links=draw(st.lists(links, max_size=2)),
        kind=draw(st.sampled_from(list(SpanKind))),
        instrumentation_scope=draw(st.sampled_from(pool_scopes)),
        status=status,
        start_time=draw(st.none() | st.integers(0, 2**64 - 1)),
        end_time=draw(st.none() | st.integers(0, 2**64 - 1)),
    )


@st.composite
def batches(draw: st.DrawFn) -> list[ReadableSpan]:
    """Spans over a few resources and scopes, some equal but distinct objects (duplicates)."""
    pool_resources = draw(st.lists(resources, min_size=1, max_size=4))
    pool_resources += [Resource(r.attributes, r.schema_url) for r in pool_resources[:2]]
    pool_scopes = draw(st.lists(scopes, min_size=1, max_size=4))
    pool_scopes += [
        InstrumentationScope(s.name, s.version, s.schema_url, {"other": 1})
        for s in pool_scopes[:2]
        if s is not None
    ]
    return draw(st.lists(spans(pool_resources, pool_scopes), max_size=8))


@pytest.fixture(autouse=True)
def _quiet_sdk_encoder(caplog: pytest.LogCaptureFixture) -> None:
    # The SDK's encoder logs each attribute it cannot encode (huge ints); so does ours, once.
    caplog.set_level(logging.CRITICAL)


@PROPERTY
@given(batches())
def test_encoded_bytes_equal_the_sdk_encoders(batch: list[ReadableSpan]) -> None:
    assert SpanEncoder().encode(batch) == encode_spans(batch).SerializeToString()


@PROPERTY
@given(st.lists(batches(), min_size=2, max_size=3))
def test_cached_resources_and_scopes_keep_the_bytes_equal_across_batches(
    many: list[list[ReadableSpan]],
) -> None:
    encoder = SpanEncoder()
    for batch in many:
        assert encoder.encode(batch) == encode_spans(batch).SerializeToString()
