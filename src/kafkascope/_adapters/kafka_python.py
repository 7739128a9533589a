"""Reading kafka-python's producers and consumers: settings, group, member, cluster and the
assignment with positions and high-water marks, all from the client's memory."""

from __future__ import annotations

import math
from typing import Any, Final

from kafkascope._adapters.consumer import (
    CLOSED,
    ConsumerState,
    Partition,
    PartitionReading,
    text,
)

NAME: Final = "kafka-python"


def is_consumer(consumer: object) -> bool:
    """Whether ``consumer`` has the shape of a ``KafkaConsumer``."""
    return hasattr(consumer, "_subscription") and hasattr(consumer, "_coordinator")


def _config(client: Any) -> dict[str, Any]:
    config = getattr(client, "config", None)
    return config if isinstance(config, dict) else {}


def bootstrap_of(client: Any) -> object:
    """The ``bootstrap_servers`` setting of a ``KafkaProducer`` or ``KafkaConsumer``."""
    return _config(client).get("bootstrap_servers")


def client_id_of(client: Any) -> str | None:
    """The ``client_id`` setting of a ``KafkaProducer`` or ``KafkaConsumer``."""
    return text(_config(client).get("client_id"))


def transactional_id_of(producer: Any) -> str | None:
    """The ``transactional_id`` setting of a ``KafkaProducer``."""
    return text(_config(producer).get("transactional_id"))


def group_of(consumer: Any) -> str | None:
    """The consumer's ``group_id``."""
    return text(_config(consumer).get("group_id"))


def member_id_of(consumer: Any) -> str | None:
    """The consumer's member id in its group, once it joined."""
    coordinator = getattr(consumer, "_coordinator", None)
    generation = getattr(coordinator, "_generation", None)
    found = getattr(generation, "member_id", None) or getattr(coordinator, "member_id", None)
    return text(found)


def cluster_id_of(client: object) -> str | None:
    """The Kafka cluster id a producer or consumer already holds from its last metadata answer
    (no request is made; None before the first answer)."""
    metadata = getattr(client, "_metadata", None)  # KafkaProducer
    if metadata is None:
        metadata = getattr(getattr(client, "_client", None), "cluster", None)  # KafkaConsumer
    return text(getattr(metadata, "cluster_id", None))


_REBALANCING: Final = "<rebalancing>"
"""kafka-python's ``MemberState.REBALANCING``."""


def in_eager_rebalance(coordinator: object) -> bool:
    """The coordinator is between JoinGroup and the end of SyncGroup, eagerly (the cooperative
    protocol keeps the partitions it is not asked to give up)."""
    if getattr(coordinator, "state", None) != _REBALANCING:
        return False
    protocol = getattr(coordinator, "_rebalance_protocol", None)
    return getattr(protocol, "name", None) != "COOPERATIVE"


def _last_poll(consumer: Any) -> float | None:
    # Kept for max.poll.interval.ms by the group coordinator: only with a group_id.
    heartbeat = getattr(getattr(consumer, "_coordinator", None), "heartbeat", None)
    last = getattr(heartbeat, "last_poll", None)
    return float(last) if isinstance(last, (int, float)) and math.isfinite(last) else None


class Reader:
    """A ``KafkaConsumer``: its subscription state and its coordinator's poll time.

    In an eager rebalance the revoked partitions stay in the subscription state until the new
    assignment replaces them; the state read says ``rebalancing`` and keeps them, for readers
    to decide.
    """

    polls_seen_by: str | None = None

    def read(self, consumer: Any) -> ConsumerState:
        """Positions and high-water marks from ``_subscription``, the last poll from the group
        heartbeat."""
        if getattr(consumer, "_closed", False) is True:
            return CLOSED
        partitions: dict[Partition, PartitionReading] = {}
        for tp, state in list(consumer._subscription.assignment.items()):
            position = state.position
            offset = -1 if position is None else int(getattr(position, "offset", position))
            highwater = state.highwater
            partitions[(tp.topic, tp.partition)] = PartitionReading(
                offset, offset, -1 if highwater is None else int(highwater)
            )
        return ConsumerState(
            partitions,
            _last_poll(consumer),
            rebalancing=in_eager_rebalance(getattr(consumer, "_coordinator", None)),
        )

    def beat(self, consumer: Any, now: float) -> None:
        """Nothing to do on the poll thread."""
