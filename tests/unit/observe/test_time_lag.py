"""Consumer lag in seconds, estimated from processed timestamps and caught-up observations."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from kafkascope import observe_lag, process_batch_span, process_span
from kafkascope._adapters.records import view
from kafkascope._core import semconv as sc
from kafkascope._observe import time_lag
from kafkascope._observe.time_lag import TimeLagEstimator, note_processed
from kafkascope.testing import make_record

NOW_MS = 1_800_000_000_000.0


def _note(group: str, topic: str, partition: int, timestamp: int) -> None:
    record = view(make_record(topic, partition=partition, timestamp=timestamp))
    assert record is not None
    note_processed(group, [record])


def test_caught_up_reads_zero():
    assert TimeLagEstimator().estimates("g0", [("t0", 0, 0)], NOW_MS) == [("t0", 0, 0.0)]


def test_behind_reads_the_age_of_the_newest_processed_record():
    _note("g1", "t1", 0, int(NOW_MS) - 42_000)
    assert TimeLagEstimator().estimates("g1", [("t1", 0, 5)], NOW_MS) == [("t1", 0, 42.0)]


def test_an_older_record_processed_later_does_not_move_the_estimate_back():
    _note("g2", "t2", 0, int(NOW_MS) - 10_000)
    _note("g2", "t2", 0, int(NOW_MS) - 50_000)  # CreateTime out of order
    assert TimeLagEstimator().estimates("g2", [("t2", 0, 1)], NOW_MS) == [("t2", 0, 10.0)]


def test_a_partition_behind_since_it_was_last_caught_up_reads_the_time_since_then():
    estimator = TimeLagEstimator()
    _note("g3", "t3", 0, int(NOW_MS) - 600_000)
    estimator.estimates("g3", [("t3", 0, 0)], NOW_MS - 3_000)
    # Records written after the consumer was seen caught up are at most 3 s old.
    assert estimator.estimates("g3", [("t3", 0, 2)], NOW_MS) == [("t3", 0, 3.0)]


def test_a_stalled_consumer_reads_a_growing_time_lag():
    estimator = TimeLagEstimator()
    _note("g4", "t4", 1, int(NOW_MS) - 1_000)
    first = estimator.estimates("g4", [("t4", 1, 9)], NOW_MS)
    later = estimator.estimates("g4", [("t4", 1, 9)], NOW_MS + 20_000)
    assert first == [("t4", 1, 1.0)]
    assert later == [("t4", 1, 21.0)]


def test_nothing_known_gives_no_value_rather_than_an_invented_age():
    assert TimeLagEstimator().estimates("g5", [("t5", 0, 3)], NOW_MS) == []


def test_a_timestamp_ahead_of_this_clock_reads_zero():
    _note("g6", "t6", 0, int(NOW_MS) + 5_000)
    assert TimeLagEstimator().estimates("g6", [("t6", 0, 3)], NOW_MS) == [("t6", 0, 0.0)]


def test_groups_and_partitions_are_kept_apart():
    _note("g7", "t7", 0, int(NOW_MS) - 7_000)
    assert TimeLagEstimator().estimates("other", [("t7", 0, 3)], NOW_MS) == []
    assert TimeLagEstimator().estimates("g7", [("t7", 1, 3)], NOW_MS) == []


def test_a_revoked_partition_forgets_its_caught_up_time():
    estimator = TimeLagEstimator()
    estimator.estimates("g8", [("t8", 0, 0)], NOW_MS)
    estimator.estimates("g8", [], NOW_MS)
    assert estimator.estimates("g8", [("t8", 0, 4)], NOW_MS + 1_000) == []


@pytest.mark.asyncio
async def test_time_lag_gauge_from_a_consumers_state_and_its_process_spans(capotel):
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="billing-tl")
    observer = observe_lag(consumer)
    try:
        tp = TopicPartition("orders-tl", 0)
        consumer.assign([tp])
        state = consumer._subscription.subscription.assignment.state_value(tp)
        state.seek(4)
        state.highwater = 10
        written = int(time.time() * 1000) - 30_000
        with process_span(
            make_record("orders-tl", offset=3, timestamp=written), group="billing-tl"
        ):
            pass
        assert 30.0 <= capotel.time_lag("orders-tl", 0) < 40.0
        point = capotel.metric(sc.CONSUMER_TIME_LAG, {sc.MESSAGING_DESTINATION_NAME: "orders-tl"})
        assert point.unit == "s"
        assert point.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing-tl"
        state.seek(10)
        assert capotel.time_lag("orders-tl", 0) == 0.0
    finally:
        await consumer.stop()
        observer.close()


def test_process_spans_note_nothing_until_a_lag_observer_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time_lag, "noting", False)
    first = make_record("t-noting", partition=0, offset=1, timestamp=1_000)
    with process_span(first, group="g-noting"):
        pass
    with process_batch_span([first], group="g-noting-batch"):
        pass
    assert ("g-noting", "t-noting", 0) not in time_lag._newest
    assert ("g-noting-batch", "t-noting", 0) not in time_lag._newest
    TimeLagEstimator()  # what a lag observer makes
    with process_span(
        make_record("t-noting", partition=0, offset=2, timestamp=2_000), group="g-noting"
    ):
        pass
    with process_batch_span([first], group="g-noting-batch"):
        pass
    assert time_lag._newest[("g-noting", "t-noting", 0)] == 2_000
    assert time_lag._newest[("g-noting-batch", "t-noting", 0)] == 1_000
