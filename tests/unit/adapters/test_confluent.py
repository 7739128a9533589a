"""The snapshot of a confluent-kafka consumer taken on its poll loop's thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafkascope._adapters.confluent import CLOSED, ConfluentSnapshot, PartitionState


@dataclass
class Partition:
    topic: str
    partition: int
    offset: int = -1001


@dataclass
class Consumer:
    """confluent-kafka's shape: one partition at ``at``, high-water mark 10."""

    at: int = 4
    closed: bool = False
    asked: int = field(default=0)

    def assignment(self) -> list[Partition]:
        if self.closed:
            raise RuntimeError("Consumer closed")
        self.asked += 1
        return [Partition("orders", 0)]

    def position(self, partitions: list[Partition]) -> list[Partition]:
        return [Partition(p.topic, p.partition, self.at) for p in partitions]

    def get_watermark_offsets(self, tp: Any, cached: bool = False) -> tuple[int, int]:
        assert cached  # never a broker request
        return 0, 10


def test_a_snapshot_is_taken_at_most_once_a_second():
    consumer, snapshot = Consumer(), ConfluentSnapshot()
    snapshot.beat(consumer, 100.0)
    snapshot.beat(consumer, 100.9)
    assert consumer.asked == 1
    snapshot.beat(consumer, 101.0)
    assert consumer.asked == 2
    assert snapshot.current.partitions == {("orders", 0): PartitionState(4, 4, 10)}


def test_a_position_lost_to_a_seek_keeps_the_latest_one_seen():
    consumer, snapshot = Consumer(), ConfluentSnapshot()
    snapshot.beat(consumer, 0.0)
    consumer.at = -1001  # after seek(), until the next message
    snapshot.beat(consumer, 1.0)
    assert snapshot.current.partitions[("orders", 0)] == PartitionState(-1001, 4, 10)


def test_a_partition_without_a_position_yet_is_looked_at_again_sooner():
    consumer, snapshot = Consumer(at=-1001), ConfluentSnapshot()
    snapshot.beat(consumer, 0.0)
    snapshot.beat(consumer, ConfluentSnapshot.RETRY)
    assert consumer.asked == 2


def test_a_closed_consumer_stays_closed_and_is_not_asked_again():
    consumer, snapshot = Consumer(closed=True), ConfluentSnapshot()
    snapshot.beat(consumer, 0.0)
    assert snapshot.current is CLOSED
    consumer.closed = False
    snapshot.beat(consumer, 1e9)
    assert (snapshot.current, consumer.asked) == (CLOSED, 0)
