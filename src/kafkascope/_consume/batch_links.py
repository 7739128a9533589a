"""A batch's process span links: one to each message's producer, with that message's topic,
partition and offset (and chosen headers and size)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import Link
from opentelemetry.util.types import AttributeValue

from kafkascope._adapters.records import RecordView
from kafkascope._core import semconv as sc
from kafkascope._core.header_capture import HeaderCapture, header_attributes
from kafkascope._core.settings import Settings
from kafkascope._propagation.w3c import extract_headers


def batch_links(
    records: Sequence[RecordView],
    span_topic: str | None,
    capture: HeaderCapture | None,
    settings: Settings,
    sizes: Sequence[int | None] | None,
) -> list[Link]:
    """A link to the producer of each record that carries one (``span_topic``: the topic the
    span names, when all records share it; ``sizes``: each record's body size, when
    captured)."""
    links: list[Link] = []
    link_bases: dict[tuple[str | None, int | None], dict[str, AttributeValue]] = {}
    conversation = settings.conversation_id_header
    chosen = capture is not None or conversation is not None
    for index, record in enumerate(records):
        # A link needs the producer's span context only: its baggage is not read.
        producer = trace.get_current_span(
            extract_headers(record.headers, trust_baggage=False)
        ).get_span_context()
        if not producer.is_valid:
            continue
        where = (record.topic, record.partition)
        base = link_bases.get(where)
        if base is None:
            base = link_bases[where] = _link_base(record, span_topic)
        attrs = dict(base)
        if record.offset is not None:
            attrs[sc.MESSAGING_KAFKA_OFFSET] = record.offset
        if chosen:
            header_attributes(record.headers, capture, conversation, attrs)
        if sizes is not None and (size := sizes[index]) is not None:
            attrs[sc.MESSAGING_MESSAGE_BODY_SIZE] = size
        links.append(Link(producer, attrs))
    return links


def _link_base(record: RecordView, span_topic: str | None) -> dict[str, AttributeValue]:
    """A batch link's attributes shared by the records of one topic and partition (not the
    topic when the span names it already)."""
    attrs: dict[str, AttributeValue] = {}
    if record.topic is not None and record.topic != span_topic:
        attrs[sc.MESSAGING_DESTINATION_NAME] = record.topic
    if record.partition is not None:
        attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(record.partition)
    return attrs
