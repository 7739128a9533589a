"""kafka-python's commits on the real broker under the zero-code instrumentation: a
``commit {topic}`` settle span for ``commit()``, ``commit_async()`` and the auto-commits, with
the offsets, the group and links to the process spans they settle; failures; the counter; the
off switch."""

from __future__ import annotations

import pytest
from devstack.kafka import KafkaBroker, subscribe_once_visible
from devstack.wait import wait_until
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import IllegalStateError
from kafka.structs import OffsetAndMetadata
from opentelemetry.trace import StatusCode

from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from tests.integration import _commits
from tests.integration import _kafka_clients as clients
from tests.integration._kafka_clients import WAIT

pytestmark = pytest.mark.integration


@pytest.fixture
def three(kafka_broker: KafkaBroker, topic: str) -> str:
    """``topic`` with three messages on its one partition."""
    clients.fill(kafka_broker.bootstrap_servers, topic, 3)
    return topic


def _consumer(servers: str, topic: str, group: str, **configs: object) -> KafkaConsumer:
    return clients.consumer(servers, topic, group, consumer_timeout_ms=int(WAIT * 1000), **configs)


def _read(consumer: KafkaConsumer, count: int) -> list[object]:
    """``count`` records through the iterator (a process span each)."""
    return [next(consumer) for _ in range(count)]


def test_commit_makes_a_settle_span_with_the_offset_and_links_to_what_it_settles(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    consumer = _consumer(kafka_broker.bootstrap_servers, three, group)
    try:
        _read(consumer, 3)
        consumer.commit()
    finally:
        consumer.close()
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=3, trigger="application"
    )
    assert span.status.status_code is StatusCode.UNSET
    assert _commits.linked(span) == _commits.process_span_ids(capotel, three)
    assert len(span.links) == 3
    assert _commits.commits(capotel, three, **{sc.COMMIT_OUTCOME: "success"}) == 1


def test_commit_of_given_offsets_records_those(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    consumer = _consumer(kafka_broker.bootstrap_servers, three, group)
    try:
        _read(consumer, 3)
        consumer.commit({TopicPartition(three, 0): OffsetAndMetadata(2, "", -1)})
        committed = consumer.committed(TopicPartition(three, 0))
    finally:
        consumer.close()
    assert committed == 2
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=2, trigger="application"
    )
    assert len(span.links) == 2  # offsets 0 and 1: the third message is not settled yet


def test_commit_async_span_ends_when_the_client_reports_the_outcome(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    reported: list[object] = []
    consumer = _consumer(kafka_broker.bootstrap_servers, three, group)
    try:
        _read(consumer, 3)
        consumer.commit_async(callback=lambda offsets, response: reported.append(response))
        wait_until(
            lambda: reported,
            WAIT,
            "the commit callback",
            step=lambda: consumer.poll(timeout_ms=100),
        )
    finally:
        consumer.close()
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=3, trigger="application"
    )
    assert len(span.links) == 3
    assert not isinstance(reported[0], Exception)


def test_failing_commit_has_error_type_and_the_application_gets_the_exception(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    # Without a group, kafka-python refuses to commit: the application sees its own error.
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers, auto_offset_reset="earliest"
    )
    try:
        consumer.assign([TopicPartition(three, 0)])
        with pytest.raises(IllegalStateError, match="Requires group_id") as raised:
            consumer.commit({TopicPartition(three, 0): OffsetAndMetadata(1, "", -1)})
    finally:
        consumer.close()
    assert type(raised.value) is IllegalStateError
    span = capotel.span(f"commit {three}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "kafka.errors.IllegalStateError"
    assert span.attributes[sc.MESSAGING_KAFKA_OFFSET] == 1
    assert [event.name for event in span.events] == ["exception"]
    failed = _commits.commits(
        capotel,
        three,
        **{sc.COMMIT_OUTCOME: "failure", sc.ERROR_TYPE: "kafka.errors.IllegalStateError"},
    )
    assert failed == 1


def test_auto_commits_make_one_span_per_interval_not_one_root_per_message(
    capotel, instrumented, kafka_broker: KafkaBroker, topic: str
):
    group = clients.new_group()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        auto_commit_interval_ms=300,
    )
    subscribe_once_visible(consumer, topic)
    try:
        clients.fill(kafka_broker.bootstrap_servers, topic, 5)
        seen: list[object] = []

        def poll() -> None:
            for records in consumer.poll(timeout_ms=100).values():
                seen.extend(records)

        wait_until(lambda: len(seen) >= 5, WAIT, "5 records", step=poll)
        wait_until(
            lambda: any(
                s.attributes.get(sc.MESSAGING_KAFKA_OFFSET) == 5
                for s in capotel.spans_named(f"commit {topic}")
            ),
            WAIT,
            "an auto-commit of offset 5",
            step=lambda: consumer.poll(timeout_ms=100),
        )
    finally:
        consumer.close(autocommit=False)
    spans = capotel.spans_named(f"commit {topic}")
    assert all(s.attributes[sc.COMMIT_TRIGGER] == "auto" for s in spans)
    assert all(s.parent is None for s in spans)  # each its own trace, one per interval
    last = spans[-1]
    _commits.assert_commit_span(
        last, topic=topic, group=group, partition=0, offset=5, trigger="auto"
    )
    assert sum(len(s.links) for s in spans) == len(_commits.process_span_ids(capotel, topic))
    assert _commits.commits(capotel, topic, **{sc.COMMIT_TRIGGER: "auto"}) == len(spans)


def test_commit_spans_off_makes_no_span_and_no_count(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    _settings.update(commit_spans=False)
    consumer = _consumer(kafka_broker.bootstrap_servers, three, clients.new_group())
    try:
        _read(consumer, 3)
        consumer.commit()
    finally:
        consumer.close()
    assert capotel.spans_named(f"commit {three}") == []
    assert sc.COMMITS not in {p.name for p in capotel.metrics()}
    assert len(capotel.spans_named(f"process {three}")) == 3
