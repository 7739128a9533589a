"""A batch span's links: one per record that carries its producer's trace context."""

from __future__ import annotations

from opentelemetry import trace

from kafkascope._adapters.records import view
from kafkascope._consume.batch_links import batch_links
from kafkascope._core import semconv as sc
from kafkascope._core.settings import Settings
from kafkascope.testing import make_record

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _traceparent(span_id: str) -> list[tuple[str, bytes]]:
    return [("traceparent", f"00-{TRACE}-{span_id}-01".encode())]


def _views(*records):
    found = [view(record) for record in records]
    assert all(v is not None for v in found)
    return found


def test_only_records_with_a_producer_context_are_linked():
    records = _views(
        make_record("orders", partition=1, offset=7, headers=_traceparent("b7ad6b7169203331")),
        make_record("orders", partition=1, offset=8),
    )
    (link,) = batch_links(records, "orders", None, Settings(), None)
    assert link.context.span_id == int("b7ad6b7169203331", 16)
    assert link.context.trace_id == int(TRACE, 16)
    assert dict(link.attributes or {}) == {
        sc.MESSAGING_DESTINATION_PARTITION_ID: "1",
        sc.MESSAGING_KAFKA_OFFSET: 7,
    }


def test_a_link_names_its_topic_only_when_the_span_names_none():
    records = _views(
        make_record("orders", headers=_traceparent("b7ad6b7169203331")),
        make_record("refunds", headers=_traceparent("00f067aa0ba902b7")),
    )
    links = batch_links(records, None, None, Settings(), [10, None])
    assert [dict(link.attributes or {}).get(sc.MESSAGING_DESTINATION_NAME) for link in links] == [
        "orders",
        "refunds",
    ]
    assert [dict(link.attributes or {}).get(sc.MESSAGING_MESSAGE_BODY_SIZE) for link in links] == [
        10,
        None,
    ]
    assert all(isinstance(link.context, trace.SpanContext) for link in links)
