"""Reading aiokafka's producers and consumers: settings, group, member and the assignment with
positions and high-water marks, from the client's memory (never a coroutine)."""

from __future__ import annotations

import time
from typing import Any, Final

from kafkascope._adapters.consumer import (
    CLOSED,
    ConsumerState,
    Partition,
    PartitionReading,
    as_int,
    text,
)

NAME: Final = "aiokafka"


def is_client(client: object) -> bool:
    """Whether ``client`` is an instance of one of aiokafka's classes (its consumer also has
    ``_subscription`` and ``highwater()``, as kafka-python's does, but other state)."""
    return any(cls.__module__.partition(".")[0] == "aiokafka" for cls in type(client).__mro__)


def is_consumer(consumer: object) -> bool:
    """Whether ``consumer`` is an ``AIOKafkaConsumer``."""
    return is_client(consumer) and hasattr(consumer, "_subscription")


def _inner(client: Any) -> Any:
    # aiokafka keeps its settings on the inner AIOKafkaClient only, as private attributes.
    return getattr(client, "client", None) or getattr(client, "_client", None)


def bootstrap_of(client: Any) -> object:
    """The ``bootstrap_servers`` setting of an ``AIOKafkaProducer`` or ``AIOKafkaConsumer``."""
    return getattr(_inner(client), "_bootstrap_servers", None)


def client_id_of(client: Any) -> str | None:
    """The client id of an ``AIOKafkaProducer`` or ``AIOKafkaConsumer``."""
    return text(getattr(_inner(client), "_client_id", None))


def transactional_id_of(producer: Any) -> str | None:
    """The ``transactional_id`` of an ``AIOKafkaProducer`` (None: not transactional)."""
    return text(getattr(getattr(producer, "_txn_manager", None), "transactional_id", None))


def group_of(consumer: Any) -> str | None:
    """The consumer's ``group_id``."""
    return text(getattr(consumer, "_group_id", None))


def member_id_of(consumer: Any) -> str | None:
    """The consumer's member id in its group, once it joined."""
    return text(getattr(getattr(consumer, "_coordinator", None), "member_id", None))


class Reader:
    """An ``AIOKafkaConsumer``: its subscription state, which the event loop only replaces or
    assigns (a rebalance makes a new assignment object), so another thread may read it."""

    polls_seen_by: str | None = None

    def read(self, consumer: Any) -> ConsumerState:
        """Positions and high-water marks of the current assignment; the time of the last
        ``getone()``/``getmany()`` (now while one is waiting for records)."""
        if getattr(consumer, "_closed", False) is True:
            return CLOSED
        state = consumer._subscription
        subscription = state.subscription
        assignment: Any = subscription.assignment if subscription is not None else None
        partitions: dict[Partition, PartitionReading] = {}
        for tp in assignment.tps if assignment is not None else ():
            partition = assignment.state_value(tp)
            # ``position`` asserts it is set: read the field once instead of check-then-read.
            position = as_int(getattr(partition, "_position", None))
            highwater = as_int(getattr(partition, "highwater", None))
            partitions[(tp.topic, tp.partition)] = PartitionReading(position, position, highwater)
        # The idle time aiokafka itself measures for max_poll_interval_ms (0 inside a fetch);
        # last_poll_timestamp(tp) is the background fetcher's, which runs on while the loop hangs.
        last_poll = time.monotonic() - float(state.fetcher_idle_time)
        return ConsumerState(partitions, last_poll)

    def beat(self, consumer: Any, now: float) -> None:
        """Nothing to do on the poll thread."""
