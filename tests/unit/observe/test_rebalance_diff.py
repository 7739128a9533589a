"""Zero-code kafka-python consumers without a rebalance listener: rebalances are told by the
assignment changing between polls. Real ``KafkaConsumer`` objects on an unreachable broker; the
assignment is changed as kafka-python's coordinator changes it (``assign_from_subscribed``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pytest
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

from kafkascope._clients.kafka_python import group_assignment, kafkascope_listens
from kafkascope._core import semconv as sc
from kafkascope._observe.rebalance_diff import AssignmentDiffs
from kafkascope.instrumentor import KafkascopeInstrumentor
from kafkascope.testing import Capotel

GROUP = "billing"


def _tp(partition: int) -> TopicPartition:
    return TopicPartition("orders", partition)


@pytest.fixture
def instrumented() -> Iterator[None]:
    KafkascopeInstrumentor().instrument()
    try:
        yield
    finally:
        KafkascopeInstrumentor().uninstrument()


def _consumer(**config: Any) -> KafkaConsumer:
    settings: dict[str, Any] = {"group_id": GROUP, "client_id": "c1", **config}
    return KafkaConsumer(bootstrap_servers="127.0.0.1:9", api_version=(2, 5), **settings)


@pytest.fixture
def consumer(instrumented: None) -> Iterator[KafkaConsumer]:
    found = _consumer()
    yield found
    found.close()


def _rebalanced(consumer: KafkaConsumer, *partitions: int) -> None:
    """What kafka-python's coordinator does when a join round completes, then a poll."""
    consumer._subscription.assign_from_subscribed([_tp(p) for p in partitions])
    consumer.poll(timeout_ms=0)


def _count(capotel: Capotel, kind: str) -> float:
    wanted = {sc.MESSAGING_CONSUMER_GROUP_NAME: GROUP, sc.REBALANCE_TYPE: kind}
    streams = [
        p
        for p in capotel.metrics()
        if p.name == sc.REBALANCES and all(p.attributes.get(k) == v for k, v in wanted.items())
    ]
    return sum(p.value or 0 for p in streams)


def _gauge(capotel: Capotel) -> float | None:
    return capotel.metric(sc.ASSIGNED_PARTITIONS, {sc.MESSAGING_CLIENT_ID: "c1"}).value


def _partitions_logged(capotel: Capotel, kind: str) -> list[tuple[str, ...]]:
    return [
        tuple(cast("Sequence[str]", (r.log_record.attributes or {})[sc.REBALANCE_PARTITIONS]))
        for r in capotel.logs
        if (r.log_record.attributes or {}).get(sc.REBALANCE_TYPE) == kind
    ]


def test_an_assignment_that_changed_between_polls_is_recorded_as_revoked_and_assigned(
    capotel: Capotel, consumer: KafkaConsumer
) -> None:
    consumer.subscribe(["orders"])
    _rebalanced(consumer, 0, 1)
    assert _count(capotel, sc.REBALANCE_ASSIGNED) == 1
    assert _gauge(capotel) == 2
    _rebalanced(consumer, 1, 2)
    assert _count(capotel, sc.REBALANCE_ASSIGNED) == 2
    assert _count(capotel, sc.REBALANCE_REVOKED) == 1
    assert _partitions_logged(capotel, sc.REBALANCE_ASSIGNED) == [
        ("orders-0", "orders-1"),
        ("orders-2",),
    ]
    assert _partitions_logged(capotel, sc.REBALANCE_REVOKED) == [("orders-0",)]
    record = capotel.log("revoked partitions orders-0").log_record
    assert (record.attributes or {})[sc.MESSAGING_CONSUMER_GROUP_NAME] == GROUP
    assert _gauge(capotel) == 2


def test_polls_that_find_the_same_assignment_record_nothing(
    capotel: Capotel, consumer: KafkaConsumer
) -> None:
    consumer.subscribe(["orders"])
    _rebalanced(consumer, 0, 1)
    for _ in range(3):
        consumer.poll(timeout_ms=0)
    _rebalanced(consumer, 1, 0)  # the same partitions in another order
    assert _count(capotel, sc.REBALANCE_ASSIGNED) == 1
    assert _count(capotel, sc.REBALANCE_REVOKED) == 0


def test_close_revokes_every_partition(capotel: Capotel, consumer: KafkaConsumer) -> None:
    consumer.subscribe(["orders"])
    _rebalanced(consumer, 0, 1)
    consumer.close()
    consumer.close()  # closed already: nothing more
    assert _partitions_logged(capotel, sc.REBALANCE_REVOKED) == [("orders-0", "orders-1")]
    assert _count(capotel, sc.REBALANCE_REVOKED) == 1


def test_unsubscribe_revokes_every_partition_and_a_new_subscription_assigns_again(
    capotel: Capotel, consumer: KafkaConsumer
) -> None:
    consumer.subscribe(["orders"])
    _rebalanced(consumer, 0, 1)
    consumer.unsubscribe()
    assert _partitions_logged(capotel, sc.REBALANCE_REVOKED) == [("orders-0", "orders-1")]
    assert _gauge(capotel) == 0
    consumer.subscribe(["orders"])
    _rebalanced(consumer, 3)
    assert _partitions_logged(capotel, sc.REBALANCE_ASSIGNED)[-1] == ("orders-3",)
    assert _gauge(capotel) == 1


def test_iterating_records_a_change_once_though_it_polls_again_and_again(
    capotel: Capotel, consumer: KafkaConsumer
) -> None:
    consumer.subscribe(["orders"])
    consumer._subscription.assign_from_subscribed([_tp(0)])
    consumer.config["consumer_timeout_ms"] = 300  # empty fetches until then, then StopIteration
    assert list(consumer) == []
    assert _partitions_logged(capotel, sc.REBALANCE_ASSIGNED) == [("orders-0",)]


class _Mine(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.calls.append(f"revoked {len(revoked)}")

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.calls.append(f"assigned {len(assigned)}")


def test_a_consumer_with_the_apps_listener_is_counted_by_the_listener_alone(
    capotel: Capotel, consumer: KafkaConsumer
) -> None:
    mine = _Mine()
    consumer.subscribe(["orders"], listener=mine)
    listener = consumer._subscription.rebalance_listener
    assert kafkascope_listens(consumer)
    # What kafka-python's coordinator does in a join round with a listener.
    listener.on_partitions_revoked(set())
    consumer._subscription.assign_from_subscribed([_tp(0), _tp(1)])
    listener.on_partitions_assigned({_tp(0), _tp(1)})
    consumer.poll(timeout_ms=0)
    consumer.close()  # kafka-python's close tells the listener too
    assert mine.calls == ["revoked 0", "assigned 2", "revoked 2"]
    assert _count(capotel, sc.REBALANCE_ASSIGNED) == 1
    assert _count(capotel, sc.REBALANCE_REVOKED) == 1


def test_partitions_the_consumer_assigned_itself_are_no_rebalance(
    capotel: Capotel, consumer: KafkaConsumer
) -> None:
    consumer.assign([_tp(0)])
    consumer.poll(timeout_ms=0)
    assert group_assignment(consumer) == frozenset()
    assert sc.REBALANCES not in {p.name for p in capotel.metrics()}


def test_a_consumer_without_a_group_has_no_rebalances(instrumented: None) -> None:
    consumer = _consumer(group_id=None)
    try:
        consumer.subscribe(["orders"])
        consumer._subscription.assign_from_subscribed([_tp(0)])
        assert group_assignment(consumer) == frozenset()
    finally:
        consumer.close()


class _NotAConsumer:
    """Something kafkascope does not know how to read an assignment from."""


def test_a_failure_to_read_the_assignment_is_reported_once_and_not_raised(
    forgiving: None, caplog: pytest.LogCaptureFixture
) -> None:
    diffs = AssignmentDiffs(group_assignment, kafkascope_listens, None)
    odd = _NotAConsumer()
    with caplog.at_level(logging.WARNING, logger="kafkascope"):
        diffs.polled(odd)
        diffs.polled(odd)
    reports = [r for r in caplog.records if "rebalance diff" in r.getMessage()]
    assert len(reports) == 1
