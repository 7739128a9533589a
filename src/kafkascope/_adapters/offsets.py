"""Committed offsets as the three clients hold them, read as ``(topic, partition, offset)``.

kafka-python and aiokafka take ``{TopicPartition: OffsetAndMetadata}`` (aiokafka also plain
ints and ``(offset, metadata)`` pairs); confluent-kafka a list of ``TopicPartition`` or one
message (whose next offset is committed). Anything unreadable is left out: telemetry never
fails a commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Committed = tuple[str, int, int]
"""``(topic, partition, offset)``: the offset committed, the next one to read."""


def _offset_of(value: object) -> int | None:
    if isinstance(value, tuple) and value:
        value = value[0]  # aiokafka's (offset, metadata); OffsetAndMetadata is a tuple too
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    found = getattr(value, "offset", None)
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def _entry(topic: object, partition: object, offset: int | None) -> Committed | None:
    if not isinstance(topic, str) or not isinstance(partition, int) or offset is None:
        return None
    return topic, partition, offset


def from_mapping(offsets: object) -> list[Committed] | None:
    """kafka-python's or aiokafka's ``{TopicPartition: offset}``; None when not a mapping."""
    if not isinstance(offsets, Mapping):
        return None
    found = (
        _entry(getattr(tp, "topic", None), getattr(tp, "partition", None), _offset_of(value))
        for tp, value in offsets.items()
    )
    return [entry for entry in found if entry is not None]


def from_partitions(partitions: object) -> list[Committed] | None:
    """confluent-kafka's list of ``TopicPartition`` (those reporting an error left out);
    None when not a list."""
    if not isinstance(partitions, list | tuple):
        return None
    found: list[Committed] = []
    for tp in partitions:
        try:
            if tp.error is not None:
                continue
            entry = _entry(tp.topic, tp.partition, _offset_of(tp.offset))
        except Exception:
            continue
        if entry is not None and entry[2] >= 0:
            found.append(entry)
    return found


def from_message(message: Any) -> list[Committed] | None:
    """The offset a confluent-kafka ``commit(message=...)`` commits: the message's next."""
    try:
        entry = _entry(message.topic(), message.partition(), message.offset() + 1)
    except Exception:
        return None
    return None if entry is None else [entry]


def consumed(consumer: Any) -> list[Committed] | None:
    """What ``commit()`` without offsets commits: the positions of the records a kafka-python
    or aiokafka consumer handed out (what the client itself reads for it)."""
    try:
        subscription = consumer._subscription
        if hasattr(subscription, "all_consumed_offsets"):  # kafka-python
            return from_mapping(subscription.all_consumed_offsets())
        assignment = subscription.subscription.assignment  # aiokafka
        return from_mapping(assignment.all_consumed_offsets()) if assignment else None
    except Exception:
        return None


def topics(offsets: Iterable[Committed]) -> dict[str, list[tuple[int, int]]]:
    """``{topic: [(partition, offset), ...]}`` sorted by partition."""
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for topic, partition, offset in offsets:
        by_topic.setdefault(topic, []).append((partition, offset))
    for entries in by_topic.values():
        entries.sort()
    return by_topic
