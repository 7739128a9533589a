"""The message being processed in the current context, for log correlation."""

from __future__ import annotations

from contextvars import ContextVar
from typing import NamedTuple


class MessageFields(NamedTuple):
    """Messaging fields of the message (or batch) whose handler is running."""

    topic: str | None
    partition: int | None
    offset: int | None
    group: str | None


current_message: ContextVar[MessageFields | None] = ContextVar(
    "kafkascope_current_message", default=None
)
