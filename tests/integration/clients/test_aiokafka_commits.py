"""aiokafka's commits on the real broker under the zero-code instrumentation: a
``commit {topic}`` settle span for ``commit()`` and for the coordinator's auto-commits, with
the offsets, the group and links to the process spans they settle; failures; the counter; the
off switch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from devstack.kafka import KafkaBroker
from opentelemetry.trace import StatusCode

from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from tests.integration import _commits
from tests.integration import _kafka_clients as clients
from tests.integration._kafka_clients import WAIT

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest.fixture
def three(kafka_broker: KafkaBroker, topic: str) -> str:
    """``topic`` with three messages on its one partition."""
    clients.fill(kafka_broker.bootstrap_servers, topic, 3)
    return topic


async def _consumer(servers: str, topic: str, group: str, **configs: Any) -> AIOKafkaConsumer:
    configs.setdefault("enable_auto_commit", False)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, group_id=group, auto_offset_reset="earliest", **configs
    )
    await consumer.start()
    return consumer


async def _read(consumer: AIOKafkaConsumer, count: int) -> list[Any]:
    return [await asyncio.wait_for(consumer.getone(), WAIT) for _ in range(count)]


async def test_commit_makes_a_settle_span_linked_to_what_it_settles(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    consumer = await _consumer(kafka_broker.bootstrap_servers, three, group)
    try:
        await _read(consumer, 3)
        await consumer.commit()
    finally:
        await consumer.stop()
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=3, trigger="application"
    )
    assert _commits.linked(span) == _commits.process_span_ids(capotel, three)
    assert len(span.links) == 3
    assert _commits.commits(capotel, three, **{sc.COMMIT_OUTCOME: "success"}) == 1


async def test_commit_of_given_offsets_records_those(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    group = clients.new_group()
    consumer = await _consumer(kafka_broker.bootstrap_servers, three, group)
    try:
        await _read(consumer, 3)
        await consumer.commit({TopicPartition(three, 0): 2})
        committed = await consumer.committed(TopicPartition(three, 0))
    finally:
        await consumer.stop()
    assert committed == 2
    span = capotel.span(f"commit {three}")
    _commits.assert_commit_span(
        span, topic=three, group=group, partition=0, offset=2, trigger="application"
    )
    assert len(span.links) == 2


async def test_commit_of_a_partition_not_assigned_has_error_type_and_reaches_the_application(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str, topic_factory
):
    other = topic_factory("other")
    consumer = await _consumer(kafka_broker.bootstrap_servers, three, clients.new_group())
    try:
        await _read(consumer, 1)
        with pytest.raises(IllegalStateError, match="not assigned") as raised:
            await consumer.commit({TopicPartition(other, 0): 1})
    finally:
        await consumer.stop()
    assert type(raised.value) is IllegalStateError
    span = capotel.span(f"commit {other}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "aiokafka.errors.IllegalStateError"
    assert span.attributes[sc.MESSAGING_KAFKA_OFFSET] == 1
    failed = _commits.commits(
        capotel,
        other,
        **{sc.COMMIT_OUTCOME: "failure", sc.ERROR_TYPE: "aiokafka.errors.IllegalStateError"},
    )
    assert failed == 1


async def test_auto_commits_make_one_span_per_interval_not_one_root_per_message(
    capotel, instrumented, kafka_broker: KafkaBroker, topic: str
):
    group = clients.new_group()
    consumer = await _consumer(
        kafka_broker.bootstrap_servers,
        topic,
        group,
        enable_auto_commit=True,
        auto_commit_interval_ms=300,
    )

    async def committed_five() -> None:
        while not any(
            s.attributes.get(sc.MESSAGING_KAFKA_OFFSET) == 5
            for s in capotel.spans_named(f"commit {topic}")
        ):
            await asyncio.sleep(0.05)

    try:
        clients.fill(kafka_broker.bootstrap_servers, topic, 5)
        await _read(consumer, 5)
        await asyncio.wait_for(committed_five(), WAIT)
    finally:
        await consumer.stop()
    spans = capotel.spans_named(f"commit {topic}")
    assert all(s.attributes[sc.COMMIT_TRIGGER] == "auto" for s in spans)
    assert all(s.parent is None for s in spans)  # each its own trace, one per interval
    offsets = [s.attributes[sc.MESSAGING_KAFKA_OFFSET] for s in spans]
    assert 5 in offsets
    assert sum(len(s.links) for s in spans) == 5
    assert _commits.commits(capotel, topic, **{sc.COMMIT_TRIGGER: "auto"}) == len(spans)


async def test_commit_spans_off_makes_no_span(
    capotel, instrumented, kafka_broker: KafkaBroker, three: str
):
    _settings.update(commit_spans=False)
    consumer = await _consumer(kafka_broker.bootstrap_servers, three, clients.new_group())
    try:
        await _read(consumer, 3)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert capotel.spans_named(f"commit {three}") == []
    assert sc.COMMITS not in {p.name for p in capotel.metrics()}
