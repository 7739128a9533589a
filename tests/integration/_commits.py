"""What the commit-span tests of the three clients share: reading a commit span and the process
spans it links to, and the commits counter."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from kafkascope._core import semconv as sc
from kafkascope.testing import Capotel


def assert_commit_span(
    span: ReadableSpan, *, topic: str, group: str, partition: int, offset: int, trigger: str
) -> None:
    """``span`` is the conventions' settle span of one partition's commit."""
    assert span.name == f"commit {topic}"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs[sc.MESSAGING_SYSTEM] == "kafka"
    assert attrs[sc.MESSAGING_OPERATION_NAME] == "commit"
    assert attrs[sc.MESSAGING_OPERATION_TYPE] == "settle"
    assert attrs[sc.MESSAGING_DESTINATION_NAME] == topic
    assert attrs[sc.MESSAGING_CONSUMER_GROUP_NAME] == group
    assert attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] == str(partition)
    assert attrs[sc.MESSAGING_KAFKA_OFFSET] == offset
    assert attrs[sc.COMMIT_TRIGGER] == trigger


def linked(span: ReadableSpan) -> set[int]:
    """The span ids ``span`` links to."""
    return {link.context.span_id for link in span.links}


def process_span_ids(capotel: Capotel, topic: str) -> set[int]:
    """The span ids of the finished ``process {topic}`` spans."""
    return {s.context.span_id for s in capotel.spans_named(f"process {topic}")}


def commits(capotel: Capotel, topic: str, **attributes: Any) -> Any:
    """The ``kafkascope.consumer.commits`` count of ``topic`` with ``attributes``."""
    return capotel.metric(sc.COMMITS, {sc.MESSAGING_DESTINATION_NAME: topic, **attributes}).value
