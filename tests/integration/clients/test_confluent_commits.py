"""confluent-kafka's commits on the real broker under the zero-code instrumentation: a
``commit {topic}`` settle span for synchronous and asynchronous ``commit()`` (``offsets=``,
``message=``) and for librdkafka's auto-commits (reported to ``on_commit``, the application's
own still called); failures; the counter; the off switch."""

from __future__ import annotations

from typing import Any

import pytest
from devstack.kafka import KafkaBroker
from devstack.wait import wait_until
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


def _consumer(servers: str, topic: str, group: str, **config: Any) -> Any:
    import confluent_kafka  # the instrumented class

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **config,
        }
    )
    consumer.subscribe([topic])
    return consumer


def _read(consumer: Any, topic: str, count: int) -> list[Any]:
    return [clients.poll_confluent(consumer, topic) for _ in range(count)]


def test_synchronous_commit_makes_a_settle_span_linked_to_what_it_settles(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    consumer = _consumer(kafka_broker.bootstrap_servers, three, group)
    try:
        _read(consumer, three, 3)
        committed = consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert [(tp.topic, tp.partition, tp.offset) for tp in committed] == [(three, 0, 3)]
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=3, trigger="application"
    )
    assert _commits.linked(span) == _commits.process_span_ids(capotel, three)
    assert len(span.links) == 3
    assert _commits.commits(capotel, three, **{sc.COMMIT_OUTCOME: "success"}) == 1


def test_asynchronous_commit_of_a_message_ends_at_its_report_and_calls_on_commit(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    reports: list[tuple[Any, Any]] = []
    consumer = _consumer(
        kafka_broker.bootstrap_servers,
        three,
        group,
        on_commit=lambda err, partitions: reports.append((err, partitions)),
    )
    try:
        first, _, _ = _read(consumer, three, 3)
        assert consumer.commit(message=first) is None
        wait_until(lambda: reports, WAIT, "the commit report", step=lambda: consumer.poll(0.1))
    finally:
        consumer.close()
    ((err, partitions),) = reports
    assert err is None
    assert [(tp.topic, tp.offset) for tp in partitions] == [(three, 1)]
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=1, trigger="application"
    )
    assert len(span.links) == 1  # the first message only


def test_commit_on_a_closed_consumer_has_error_type_and_the_application_gets_the_error(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    from confluent_kafka import TopicPartition

    consumer = _consumer(kafka_broker.bootstrap_servers, three, clients.new_group())
    consumer.close()
    with pytest.raises(RuntimeError, match="closed") as raised:
        consumer.commit(offsets=[TopicPartition(three, 0, 1)], asynchronous=False)
    assert type(raised.value) is RuntimeError
    span = capotel.span(f"commit {three}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "RuntimeError"
    assert span.attributes[sc.MESSAGING_KAFKA_OFFSET] == 1
    failed = _commits.commits(
        capotel, three, **{sc.COMMIT_OUTCOME: "failure", sc.ERROR_TYPE: "RuntimeError"}
    )
    assert failed == 1


def test_commit_with_nothing_to_commit_fails_with_librdkafkas_error_name(
    capotel, instrumented, kafka_broker: KafkaBroker, topic: str
):
    from confluent_kafka import KafkaException

    consumer = _consumer(kafka_broker.bootstrap_servers, topic, clients.new_group())
    try:
        with pytest.raises(KafkaException) as raised:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert raised.value.args[0].name() == "_NO_OFFSET"
    span = capotel.span("commit")
    assert span.attributes[sc.ERROR_TYPE] == "_NO_OFFSET"
    assert sc.MESSAGING_DESTINATION_NAME not in span.attributes


def test_auto_commits_make_one_span_per_interval_not_one_root_per_message(
    capotel, instrumented, kafka_broker: KafkaBroker, topic: str
):
    group = clients.new_group()
    reports: list[Any] = []
    consumer = _consumer(
        kafka_broker.bootstrap_servers,
        topic,
        group,
        **{
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 300,
            "on_commit": lambda err, partitions: reports.append(err),
        },
    )
    try:
        clients.fill(kafka_broker.bootstrap_servers, topic, 5)
        _read(consumer, topic, 5)
        wait_until(
            lambda: any(
                s.attributes.get(sc.MESSAGING_KAFKA_OFFSET) == 5
                for s in capotel.spans_named(f"commit {topic}")
            ),
            WAIT,
            "an auto-commit of offset 5",
            step=lambda: consumer.poll(0.1),
        )
    finally:
        consumer.close()
    spans = capotel.spans_named(f"commit {topic}")
    assert all(s.attributes[sc.COMMIT_TRIGGER] == "auto" for s in spans)
    assert all(s.parent is None for s in spans)  # each its own trace, one per interval
    _commits.assert_commit_span(
        spans[-1], topic=topic, group=group, partition=0, offset=5, trigger="auto"
    )
    assert sum(len(s.links) for s in spans) == 5
    assert len(reports) >= len(spans)  # the application's on_commit saw every report
    assert _commits.commits(capotel, topic, **{sc.COMMIT_TRIGGER: "auto"}) == len(spans)


def test_commit_spans_off_makes_no_span(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    _settings.update(commit_spans=False)
    consumer = _consumer(kafka_broker.bootstrap_servers, three, clients.new_group())
    try:
        _read(consumer, three, 3)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert [s.name for s in capotel.spans if s.name.startswith("commit")] == []
    assert sc.COMMITS not in {p.name for p in capotel.metrics()}
