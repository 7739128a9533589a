"""What every client's consumer reading shares: the state read, and how a consumer is held.

Readers run on threads other than the poll loop's (the metric collection thread, the health
endpoint): they read plain in-memory state only, never await and never ask the broker. What may
only be asked on the poll loop's thread happens in ``beat()``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

Partition = tuple[str, int]
"""``(topic, partition)``."""


class PartitionReading(NamedTuple):
    """One assigned partition as its client holds it."""

    position: int
    """The position now; -1 while the client has none."""
    known: int
    """The latest valid position seen (``position`` itself, except confluent-kafka's after a
    ``seek()``), -1 before any."""
    highwater: int
    """The high-water mark of the last fetch; -1 while unknown."""

    def lag(self, position: int) -> int:
        """Messages from ``position`` to the high-water mark; 0 while either is unknown."""
        if position < 0 or self.highwater < 0:
            return 0
        return max(0, self.highwater - position)


@dataclass(frozen=True)
class ConsumerState:
    """One look at a consumer."""

    partitions: Mapping[Partition, PartitionReading] = field(default_factory=dict)
    last_poll: float | None = None
    """``time.monotonic()`` of the latest poll the client itself recorded, if it records any."""
    closed: bool = False
    rebalancing: bool = False
    """The consumer is in an eager rebalance: it holds no partition until the rebalance ends."""


CLOSED: Final = ConsumerState(closed=True)


class ConsumerReader(Protocol):
    """Reads one client's consumer (one reader per consumer)."""

    polls_seen_by: str | None
    """How polls become visible when the client records none (for a stall's reason), or None."""

    def read(self, consumer: Any) -> ConsumerState:
        """The consumer's state now, on any thread."""
        ...

    def beat(self, consumer: Any, now: float) -> None:
        """The poll loop is alive, on its own thread."""
        ...


def as_int(value: object) -> int:
    """An offset as an int; -1 for None or anything not an int."""
    return value if isinstance(value, int) else -1


def hold(consumer: Any) -> Callable[[], Any]:
    """A reference to ``consumer``: weak where the client's type allows it; confluent-kafka's C
    type does not, so it is held until the holder lets go."""
    try:
        return weakref.ref(consumer)
    except TypeError:
        return lambda: consumer


def released() -> None:
    """What a holder reads once it let go of its consumer."""
    return


def text(value: object) -> str | None:
    """A non-empty ``str`` setting, else None."""
    return value if isinstance(value, str) and value else None
