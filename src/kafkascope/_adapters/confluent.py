"""What kafkascope knows of a confluent-kafka ``Consumer``: a snapshot taken on its poll loop's
thread, for the readers that run on other threads (the lag gauges on the metric collection
thread, the health endpoint, the assigned-partitions gauge).

confluent-kafka serializes the calls into one ``Consumer`` across threads: 2.16 makes a second
thread wait at a gate until the polling thread leaves it, which a busy poll loop hardly ever
does for long enough, and librdkafka's ``assignment()`` also waits for a ``poll()`` in progress.
A blocked observable callback would stall every metric export of the process, so no reader calls
the consumer: :meth:`ConfluentSnapshot.beat`, on the poll loop's thread, takes the snapshot
(``assignment()``, ``position()`` and ``get_watermark_offsets(cached=True)``, all answered from
local state) when it is due, and readers use :attr:`ConfluentSnapshot.current`.

kafkascope's instrumented ``Consumer`` (:mod:`kafkascope._clients.confluent`) owns one snapshot,
beaten as each ``poll()``/``consume()`` returns and closed by its ``close()``, shared by every
reader of that consumer. A plain ``Consumer`` cannot carry one (a C type without attributes):
each handle that reads it (``LagObserver``, ``ConsumerHealth``) owns its own, beaten through the
handle's ``beat()``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from kafkascope._adapters.consumer import (
    CLOSED as CLOSED_STATE,
)
from kafkascope._adapters.consumer import (
    ConsumerState,
    Partition,
    PartitionReading,
    text,
)
from kafkascope._core import errors as _errors

NAME: Final = "confluent-kafka"
DESCRIBED: Final = "_kafkascope_described"
"""The attribute through which kafkascope's instrumented ``Consumer`` carries its group,
bootstrap servers and client id, read from its configuration when it was made."""

OWN: Final = "_kafkascope_snapshot"
"""The attribute through which kafkascope's instrumented ``Consumer`` carries its snapshot."""


class PartitionState(NamedTuple):
    """One assigned partition, as the poll loop's thread saw it."""

    position: int
    """``position()`` then; negative while the client has none (before the partition's first
    message, and after a ``seek()`` until the next one)."""
    known: int
    """The latest valid position seen (``position`` itself when valid), -1 before any."""
    highwater: int
    """The cached high-water mark; negative before the partition's first fetch."""


@dataclass(frozen=True)
class Snapshot:
    """A consumer's assignment with positions and high-water marks, or that it was closed."""

    partitions: Mapping[Partition, PartitionState] = field(default_factory=dict)
    closed: bool = False


NOT_TAKEN: Final = Snapshot()
"""Before the first beat: nothing is known (readers report nothing assigned)."""
CLOSED: Final = Snapshot(closed=True)


class ConfluentSnapshot:
    """The latest snapshot of one consumer, renewed by :meth:`beat` on the poll loop's thread.

    A beat costs a clock comparison unless the snapshot is due: once per ``REFRESH`` seconds,
    every ``RETRY`` while a partition has had no position yet. :attr:`current` is replaced
    whole, never mutated, so any thread may read it.
    """

    REFRESH: Final = 1.0
    RETRY: Final = 0.1
    """Sooner while a partition has had no position yet: a loop retrying one message by seeking
    back has one only between the poll that returns it and the seek, so the first one seen is
    carried (:attr:`PartitionState.known`) while later snapshots find none."""

    def __init__(self) -> None:
        self.current: Snapshot = NOT_TAKEN
        self._due = -math.inf

    def beat(self, consumer: Any, now: float | None = None) -> None:
        """On the poll loop's thread: take a new snapshot of ``consumer`` if one is due.

        Args:
            consumer: the confluent-kafka ``Consumer`` this snapshot is of.
            now: ``time.monotonic()`` if the caller has it already.

        Never raises: a failure is reported once and the last snapshot kept.
        """
        if now is None:
            now = time.monotonic()
        if now < self._due:
            return
        try:
            self.current = self._take(consumer)
        except RuntimeError:  # confluent-kafka's "Consumer closed"
            self.closing()
            return
        except Exception as exc:
            _errors.report("confluent-kafka consumer snapshot", exc)
        unknown = any(p.known < 0 for p in self.current.partitions.values())
        self._due = now + (self.RETRY if unknown else self.REFRESH)

    def closing(self) -> None:
        """The consumer is closed, or about to be: report it closed from now on."""
        self.current = CLOSED
        self._due = math.inf

    def _take(self, consumer: Any) -> Snapshot:
        before = self.current.partitions
        partitions: dict[Partition, PartitionState] = {}
        for tp in consumer.position(consumer.assignment()):
            key = (tp.topic, tp.partition)
            position = int(tp.offset)
            if position >= 0:
                known = position
            else:
                previous = before.get(key)
                known = previous.known if previous is not None else -1
            marks = consumer.get_watermark_offsets(tp, cached=True)  # -1001 before a fetch
            high = marks[1] if marks is not None else None
            highwater = high if isinstance(high, int) else -1
            partitions[key] = PartitionState(position, known, highwater)
        return Snapshot(partitions)


def own_snapshot(consumer: Any) -> ConfluentSnapshot | None:
    """The snapshot kafkascope's instrumented ``Consumer`` carries; None for a plain one."""
    found = getattr(consumer, OWN, None)
    return found if isinstance(found, ConfluentSnapshot) else None


def snapshot_for(consumer: Any) -> ConfluentSnapshot:
    """The consumer's own snapshot if it carries one, else a new one for the caller to beat."""
    found = own_snapshot(consumer)
    return found if found is not None else ConfluentSnapshot()


def kafka_error_name(err: Any) -> str | None:
    """librdkafka's name of a ``KafkaError`` (``MSG_SIZE_TOO_LARGE``, ...); None if unreadable."""
    name = getattr(err, "name", None)
    try:
        found = name() if callable(name) else None
    except Exception:
        return None
    return found if isinstance(found, str) and found else None


def error_name(exc: BaseException) -> str | None:
    """librdkafka's error name of a ``KafkaException``; None for other exceptions."""
    args: tuple[object, ...] = exc.args
    return kafka_error_name(args[0]) if len(args) == 1 else None


def is_consumer(consumer: object) -> bool:
    """Whether ``consumer`` has the shape of a confluent-kafka ``Consumer``."""
    return all(hasattr(consumer, name) for name in ("get_watermark_offsets", "position"))


def _described(consumer: object, index: int) -> str | None:
    described = getattr(consumer, DESCRIBED, None)
    return text(described[index]) if isinstance(described, tuple) else None


def group_of(consumer: Any) -> str | None:
    """The ``group.id`` of kafkascope's instrumented ``Consumer`` (a plain one cannot tell)."""
    return _described(consumer, 0)


def client_id_of(consumer: Any) -> str | None:
    """The ``client.id`` of kafkascope's instrumented ``Consumer`` (librdkafka's default
    ``rdkafka`` when none was set; a plain one cannot tell)."""
    return _described(consumer, 2)


def member_id_of(consumer: Any) -> str | None:
    """The consumer's member id in its group (asks the consumer: call it on the poll loop's
    thread, as the rebalance callbacks run)."""
    try:
        return text(consumer.memberid())
    except Exception:  # closed, or not in a group yet
        return None


class Reader:
    """A confluent-kafka ``Consumer``: assignment, local positions and cached high-water marks
    from the snapshot its poll loop's thread took, which is read without ever calling the
    consumer.

    confluent-kafka records no poll time: the beats are the polls (kafkascope's instrumented
    ``Consumer`` beats as each ``poll()``/``consume()`` returns).
    """

    polls_seen_by: str | None = "seen only through beat() or kafkascope's instrumented Consumer"

    def __init__(self, consumer: Any) -> None:
        self.snapshot = snapshot_for(consumer)

    def beat(self, consumer: Any, now: float) -> None:
        """Take a new snapshot when the last one is due for renewal."""
        self.snapshot.beat(consumer, now)

    def read(self, consumer: Any) -> ConsumerState:
        """The last beat's snapshot (nothing assigned before the first beat)."""
        taken = self.snapshot.current
        if taken.closed:
            return CLOSED_STATE
        return ConsumerState(
            {
                key: PartitionReading(state.position, state.known, state.highwater)
                for key, state in taken.partitions.items()
            }
        )


def exception_of(err: Any) -> BaseException:
    """A ``KafkaException`` for a ``KafkaError``, to record on a span."""
    from confluent_kafka import KafkaException

    return KafkaException(err)
