"""Commit spans without a broker: what :class:`Unsettled` remembers for a commit to link, and
the spans and counts :class:`CommitScope` writes."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from kafkascope._adapters.records import RecordView
from kafkascope._consume.commit import LINKS_PER_PARTITION, CommitScope, Unsettled
from kafkascope._consume.options import ProcessOptions
from kafkascope._core import semconv as sc


def _record(offset: int, partition: int = 0, topic: str = "orders") -> RecordView:
    return RecordView(
        topic=topic,
        partition=partition,
        offset=offset,
        key=None,
        headers=[],
        timestamp_ms=None,
        log_append_time=False,
        tombstone=False,
    )


def _span(name: str = "process orders") -> trace.Span:
    span = trace.get_tracer("test").start_span(name)
    span.end()
    return span


def test_a_commit_settles_the_spans_of_the_offsets_before_it_only(capotel):
    unsettled = Unsettled()
    spans = [_span() for _ in range(3)]
    for offset, span in enumerate(spans):
        unsettled.note([_record(offset)], span)
    settled = unsettled.settle("orders", 0, 2)
    assert settled == [spans[0].get_span_context(), spans[1].get_span_context()]
    assert unsettled.settle("orders", 0, 3) == [spans[2].get_span_context()]
    assert unsettled.settle("orders", 0, 3) == []


def test_only_the_last_few_spans_per_partition_are_remembered(capotel):
    unsettled = Unsettled()
    spans = [_span() for _ in range(LINKS_PER_PARTITION + 5)]
    for offset, span in enumerate(spans):
        unsettled.note([_record(offset)], span)
    settled = unsettled.settle("orders", 0, len(spans))
    assert settled == [s.get_span_context() for s in spans[-LINKS_PER_PARTITION:]]


def test_a_batch_span_is_remembered_once_per_partition_at_its_highest_offset(capotel):
    unsettled = Unsettled()
    batch = _span("process")
    unsettled.note([_record(4), _record(7), _record(5), _record(2, partition=1)], batch)
    assert unsettled.settle("orders", 0, 7) == []
    assert unsettled.settle("orders", 0, 8) == [batch.get_span_context()]
    assert unsettled.settle("orders", 1, 3) == [batch.get_span_context()]


def test_several_partitions_of_one_topic_make_one_span_with_the_offsets_as_arrays(capotel):
    scope = CommitScope(ProcessOptions(group="billing"), None, sc.COMMIT_APPLICATION)
    scope.finish(None, offsets=[("orders", 1, 17), ("orders", 0, 42), ("refunds", 0, 3)])
    orders = capotel.span("commit orders")
    assert orders.kind is SpanKind.CLIENT
    assert orders.attributes[sc.COMMIT_PARTITIONS] == ("0", "1")
    assert orders.attributes[sc.COMMIT_OFFSETS] == (42, 17)
    assert sc.MESSAGING_KAFKA_OFFSET not in orders.attributes
    refunds = capotel.span("commit refunds")
    assert refunds.attributes[sc.MESSAGING_KAFKA_OFFSET] == 3
    assert refunds.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"


def test_a_successful_commit_of_nothing_writes_nothing(capotel):
    CommitScope(ProcessOptions(), None, sc.COMMIT_AUTO).finish(None, offsets=[])
    assert capotel.spans == []


def test_a_failed_commit_of_unknown_offsets_is_one_span_without_a_topic(capotel):
    CommitScope(ProcessOptions(), None, sc.COMMIT_APPLICATION).finish(ValueError("nope"))
    span = capotel.span("commit")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "ValueError"
    failed = capotel.metric(sc.COMMITS, {sc.COMMIT_OUTCOME: sc.COMMIT_FAILURE})
    assert failed.value == 1


def test_a_failed_commit_settles_nothing(capotel):
    unsettled = Unsettled()
    processed = _span()
    unsettled.note([_record(0)], processed)
    scope = CommitScope(ProcessOptions(), unsettled, sc.COMMIT_APPLICATION, [("orders", 0, 1)])
    scope.finish(RuntimeError("broker said no"))
    assert capotel.span("commit orders").links == ()
    assert unsettled.settle("orders", 0, 1) == [processed.get_span_context()]


def test_an_auto_commit_starts_its_own_trace_even_inside_a_span(capotel):
    with trace.get_tracer("test").start_as_current_span("poll loop"):
        scope = CommitScope(ProcessOptions(), None, sc.COMMIT_AUTO, [("orders", 0, 1)])
    scope.finish(None)
    assert capotel.span("commit orders").parent is None
