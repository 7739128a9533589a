"""The message being processed in the current context: one context variable for everything
that code running inside a handler asks about it (log correlation, the pipeline stamp a send
carries on, the attempt a retry's lineage names)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Span


class Processing:
    """The message (or batch) whose handler is running.

    ``topic``, ``partition``, ``offset`` and ``group`` are its messaging fields (partition and
    offset None for a batch); ``stamp`` the pipeline stamp its sends carry on (None: none);
    ``span`` and ``attempt`` the attempt at a single message (its process span, and its number:
    1 for a first attempt); ``span`` is None for a batch.
    """

    __slots__ = ("attempt", "group", "offset", "partition", "span", "stamp", "topic")

    def __init__(
        self,
        topic: str | None,
        partition: int | None,
        offset: int | None,
        group: str | None,
        stamp: bytes | None,
        span: Span | None,
        attempt: int,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.group = group
        self.stamp = stamp
        self.span = span
        self.attempt = attempt


current_message: ContextVar[Processing | None] = ContextVar(
    "kafkascope_current_message", default=None
)
