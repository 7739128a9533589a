"""Spans are grouped by resource and scope as the SDK's encoder groups them, whatever order
they come in (runs of one provider and tracer take a shortcut)."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

from kafkascope._setup.otlp.encoder import SpanEncoder

ORDERS = Resource({"service.name": "orders"})
BILLING = Resource({"service.name": "billing"})
OURS = InstrumentationScope("kafkascope", "1.0")
THEIRS = InstrumentationScope("other")


def _span(index: int, resource: Resource, scope: InstrumentationScope | None) -> ReadableSpan:
    context = SpanContext(trace_id=index + 1, span_id=index + 1, is_remote=False)
    return ReadableSpan(
        name=f"span {index}",
        context=context,
        resource=resource,
        instrumentation_scope=scope,
        attributes={"index": index},
    )


def test_runs_and_switches_of_resource_and_scope_group_as_the_sdks_encoder_does() -> None:
    layout = [
        (ORDERS, OURS), (ORDERS, OURS), (BILLING, OURS), (ORDERS, OURS), (ORDERS, THEIRS),
        (ORDERS, None), (ORDERS, None), (BILLING, THEIRS), (ORDERS, OURS), (BILLING, OURS),
    ]  # fmt: skip
    batch = [_span(i, resource, scope) for i, (resource, scope) in enumerate(layout)]
    assert SpanEncoder().encode(batch) == encode_spans(batch).SerializeToString()


def test_a_batch_whose_first_span_has_no_scope_keeps_that_span() -> None:
    batch = [_span(0, ORDERS, None), _span(1, ORDERS, None), _span(2, ORDERS, OURS)]
    assert SpanEncoder().encode(batch) == encode_spans(batch).SerializeToString()


def test_equal_resources_that_are_distinct_objects_share_one_group() -> None:
    twin = Resource({"service.name": "orders"})
    batch = [_span(0, ORDERS, OURS), _span(1, twin, OURS), _span(2, ORDERS, OURS)]
    assert SpanEncoder().encode(batch) == encode_spans(batch).SerializeToString()
