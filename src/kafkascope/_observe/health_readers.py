"""What a health probe reads from a consumer: one small reader per client.

A reader's ``read()`` runs on the health endpoint's thread, while the consumer is being polled on
the application's thread (or event loop): it reads plain in-memory state only, never awaits and
never asks the broker. ``beat()`` runs on the poll loop's thread, from
:meth:`~kafkascope.ConsumerHealth.beat`, for what may only be asked there.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from kafkascope._adapters.confluent import ConfluentSnapshot, is_confluent, snapshot_for
from kafkascope._observe.lag import _is_aiokafka

Partition = tuple[str, int]


@dataclass(frozen=True)
class Reading:
    """One look at a consumer."""

    positions: dict[Partition, int] = field(default_factory=dict)
    """Position of each assigned partition, -1 where the client has none yet."""
    lag: int = 0
    """Summed lag of the partitions whose position and high-water mark are known."""
    last_poll: float | None = None
    """``time.monotonic()`` of the latest poll the client itself recorded, if it records any."""
    closed: bool = False
    rebalancing: bool = False
    """The consumer is in an eager rebalance: it holds no partition until the rebalance ends."""


CLOSED: Final = Reading(closed=True)


class Reader(Protocol):
    """Reads one client's consumer."""

    polls_seen_by: str | None
    """How polls become visible when the client records none (for the stall reason), or None."""

    def read(self, consumer: Any) -> Reading:
        """The consumer's state now (on the probe's thread)."""
        ...

    def beat(self, consumer: Any, now: float) -> None:
        """The poll loop is alive (on its own thread)."""
        ...


def _lag(highwater: object, position: int) -> int:
    """Lag at ``position``; 0 while the high-water mark is unknown (None, or negative)."""
    if not isinstance(highwater, int) or highwater < 0:
        return 0
    return max(0, highwater - position)


class KafkaPythonReader:
    """kafka-python ``KafkaConsumer``: its subscription state and its coordinator's poll time."""

    polls_seen_by: str | None = None

    def read(self, consumer: Any) -> Reading:
        """Positions and lag from ``_subscription``, the last poll from the group heartbeat."""
        if getattr(consumer, "_closed", False) is True:
            return CLOSED
        if _in_eager_rebalance(getattr(consumer, "_coordinator", None)):
            # The listener was told they are revoked; they stay in the subscription state only
            # until the new assignment replaces them. A member stuck here holds nothing.
            return Reading(last_poll=self._last_poll(consumer), rebalancing=True)
        positions: dict[Partition, int] = {}
        lag = 0
        for tp, state in list(consumer._subscription.assignment.items()):
            position = state.position
            offset = -1 if position is None else int(getattr(position, "offset", position))
            positions[(tp.topic, tp.partition)] = offset
            if offset >= 0:
                lag += _lag(state.highwater, offset)
        return Reading(positions, lag, self._last_poll(consumer))

    @staticmethod
    def _last_poll(consumer: Any) -> float | None:
        # Kept for max.poll.interval.ms by the group coordinator: only with a group_id.
        heartbeat = getattr(getattr(consumer, "_coordinator", None), "heartbeat", None)
        last = getattr(heartbeat, "last_poll", None)
        return float(last) if isinstance(last, (int, float)) and math.isfinite(last) else None

    def beat(self, consumer: Any, now: float) -> None:
        """Nothing to do on the poll thread."""


def _in_eager_rebalance(coordinator: object) -> bool:
    """kafka-python's coordinator is between JoinGroup and the end of SyncGroup, eagerly (the
    cooperative protocol keeps the partitions it is not asked to give up)."""
    if getattr(coordinator, "state", None) != _REBALANCING:
        return False
    protocol = getattr(coordinator, "_rebalance_protocol", None)
    return getattr(protocol, "name", None) != "COOPERATIVE"


_REBALANCING: Final = "<rebalancing>"
"""kafka-python's ``MemberState.REBALANCING``."""


class AiokafkaReader:
    """aiokafka ``AIOKafkaConsumer``: its subscription state, which the event loop only replaces
    or assigns (a rebalance makes a new assignment object), so another thread may read it."""

    polls_seen_by: str | None = None

    def read(self, consumer: Any) -> Reading:
        """Positions and high-water marks of the current assignment; the time of the last
        ``getone()``/``getmany()`` (now while one is waiting for records)."""
        if getattr(consumer, "_closed", False) is True:
            return CLOSED
        state = consumer._subscription
        subscription = state.subscription
        assignment: Any = subscription.assignment if subscription is not None else None
        positions: dict[Partition, int] = {}
        lag = 0
        for tp in assignment.tps if assignment is not None else ():
            partition = assignment.state_value(tp)
            # ``position`` asserts it is set: read the field once instead of check-then-read.
            position = getattr(partition, "_position", None)
            offset = position if isinstance(position, int) else -1
            positions[(tp.topic, tp.partition)] = offset
            if offset >= 0:
                lag += _lag(partition.highwater, offset)
        # The idle time aiokafka itself measures for max_poll_interval_ms (0 inside a fetch);
        # last_poll_timestamp(tp) is the background fetcher's, which runs on while the loop hangs.
        last_poll = time.monotonic() - float(state.fetcher_idle_time)
        return Reading(positions, lag, last_poll)

    def beat(self, consumer: Any, now: float) -> None:
        """Nothing to do on the poll thread."""


class ConfluentReader:
    """confluent-kafka ``Consumer``: assignment, local positions and cached high-water marks from
    the snapshot its poll loop's thread took (:mod:`kafkascope._adapters.confluent`), which the
    probe reads without ever calling the consumer.

    confluent-kafka records no poll time either: the beats are the polls (kafkascope's
    instrumented ``Consumer`` beats as each ``poll()``/``consume()`` returns). A position lost to
    a ``seek()`` counts as the latest one seen: a consumer retrying one message by seeking back
    is still there.
    """

    polls_seen_by: str | None = "seen only through beat() or kafkascope's instrumented Consumer"

    def __init__(self, snapshot: ConfluentSnapshot) -> None:
        self._snapshot = snapshot

    def beat(self, consumer: Any, now: float) -> None:
        """Take a new snapshot when the last one is due for renewal."""
        self._snapshot.beat(consumer, now)

    def read(self, consumer: Any) -> Reading:
        """The last beat's snapshot (nothing assigned before the first beat)."""
        taken = self._snapshot.current
        if taken.closed:
            return CLOSED
        positions = {key: state.known for key, state in taken.partitions.items()}
        lag = sum(_lag(s.highwater, s.known) for s in taken.partitions.values() if s.known >= 0)
        return Reading(positions, lag)


def reader_for(consumer: Any) -> Reader:
    """The reader of ``consumer``'s client.

    Raises:
        TypeError: the consumer is of no client kafkascope can read.
    """
    if _is_aiokafka(consumer) and hasattr(consumer, "_subscription"):
        return AiokafkaReader()
    if hasattr(consumer, "_subscription") and hasattr(consumer, "_coordinator"):
        return KafkaPythonReader()
    if is_confluent(consumer):
        return ConfluentReader(snapshot_for(consumer))
    raise TypeError(
        f"observe_health does not know how to read {type(consumer).__qualname__}; supported: "
        "kafka-python KafkaConsumer, confluent-kafka Consumer, aiokafka AIOKafkaConsumer"
    )
