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

from kafkascope._lag import _is_aiokafka

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
    """confluent-kafka ``Consumer``: assignment, local positions and cached high-water marks,
    read on the poll loop's own thread.

    confluent-kafka serializes the calls into one ``Consumer`` across threads (2.16 waits at a
    gate until the thread inside leaves it, which a busy poll loop hardly ever does for long
    enough), and librdkafka's ``assignment()`` also waits for a ``poll()`` in progress. So the
    probe never calls the consumer: :meth:`beat`, on the poll loop's thread, takes a snapshot
    (``assignment()``, ``position()`` and ``get_watermark_offsets(cached=True)``, all answered
    from local state) once per ``REFRESH`` seconds, every ``RETRY`` while a position is
    unknown, and :meth:`read` returns it. confluent-kafka records no poll time either: the
    beats are the polls (kafkascope's instrumented ``Consumer`` beats as each
    ``poll()``/``consume()`` returns).
    """

    REFRESH: Final = 1.0
    RETRY: Final = 0.1
    """Sooner while a partition's position is unknown: a loop retrying one message by seeking
    back has one only between the poll that returns it and the seek."""
    polls_seen_by: str | None = "seen only through beat() or kafkascope's instrumented Consumer"

    def __init__(self) -> None:
        self._snapshot = Reading()
        self._due = -math.inf
        self._known: dict[Partition, int] = {}

    def beat(self, consumer: Any, now: float) -> None:
        """Take a new snapshot when the last one is due for renewal."""
        if now < self._due:
            return
        try:
            self._snapshot = self._take(consumer)
        except RuntimeError:  # "Consumer closed"
            self._snapshot = CLOSED
        unknown = any(offset < 0 for offset in self._snapshot.positions.values())
        self._due = now + (self.RETRY if unknown else self.REFRESH)

    def _take(self, consumer: Any) -> Reading:
        positions: dict[Partition, int] = {}
        lag = 0
        for tp in consumer.position(consumer.assignment()):
            key = (tp.topic, tp.partition)
            # OFFSET_INVALID before the first message, and again after each seek() until the
            # next one: a consumer retrying one message by seeking back is still there.
            offset = tp.offset if tp.offset >= 0 else self._known.get(key, -1)
            positions[key] = offset
            if offset >= 0:
                _, high = consumer.get_watermark_offsets(tp, cached=True)  # -1001 before a fetch
                lag += _lag(high, offset)
        self._known = {key: offset for key, offset in positions.items() if offset >= 0}
        return Reading(positions, lag)

    def read(self, consumer: Any) -> Reading:
        """The last beat's snapshot (empty before the first beat)."""
        return self._snapshot


def reader_for(consumer: Any) -> Reader:
    """The reader of ``consumer``'s client.

    Raises:
        TypeError: the consumer is of no client kafkascope can read.
    """
    if _is_aiokafka(consumer) and hasattr(consumer, "_subscription"):
        return AiokafkaReader()
    if hasattr(consumer, "_subscription") and hasattr(consumer, "_coordinator"):
        return KafkaPythonReader()
    if all(hasattr(consumer, name) for name in ("get_watermark_offsets", "position", "memberid")):
        return ConfluentReader()
    raise TypeError(
        f"observe_health does not know how to read {type(consumer).__qualname__}; supported: "
        "kafka-python KafkaConsumer, confluent-kafka Consumer, aiokafka AIOKafkaConsumer"
    )
