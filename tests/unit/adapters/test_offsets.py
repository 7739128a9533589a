"""Committed offsets read from the three clients' structures, without a broker."""

from __future__ import annotations

from aiokafka import TopicPartition as AIOPartition
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from kafkascope._adapters import offsets


def test_kafka_python_offsets_and_metadata():
    given = {TopicPartition("orders", 1): OffsetAndMetadata(5, "", -1)}
    assert offsets.from_mapping(given) == [("orders", 1, 5)]


def test_aiokafka_plain_offsets_and_pairs():
    given = {AIOPartition("orders", 0): 3, AIOPartition("orders", 1): (9, "meta")}
    assert offsets.from_mapping(given) == [("orders", 0, 3), ("orders", 1, 9)]


def test_confluent_partitions_without_a_set_offset_are_left_out():
    given = [ConfluentPartition("orders", 0, 4), ConfluentPartition("orders", 1)]
    assert offsets.from_partitions(given) == [("orders", 0, 4)]


def test_unreadable_offsets_are_none_or_left_out():
    assert offsets.from_mapping(["orders"]) is None
    assert offsets.from_partitions({"orders": 1}) is None
    assert offsets.from_mapping({object(): 1}) == []
