"""The message being processed in the current context: one context variable for everything
that code running inside a handler asks about it (log correlation, the pipeline stamp a send
carries on, the attempt a retry's lineage names)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

from opentelemetry import context as otel_context

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


CONTEXT_KEY: Final = otel_context.create_key("kafkascope-current-message")
"""The same :class:`Processing` in the OpenTelemetry context that the process span is current
in: what carries it on where only that context is copied (contrib's threading instrumentation
into a thread pool's worker). Put there only once :func:`carry_in_context` was called."""

carried = False
"""Whether process spans put their message under :data:`CONTEXT_KEY` (read per message)."""


def carry_in_context() -> None:
    """From now on, put each message in its process span's OpenTelemetry context too. Called
    when something will read it from there (a log correlation filter is created); until then
    no message pays for it."""
    global carried
    carried = True


def message_in_context() -> Processing | None:
    """The message being processed here: :data:`current_message`, else the one whose process
    span's OpenTelemetry context was carried here (work handed off to another thread, also after
    the handler returned). For log correlation; the hot paths read :data:`current_message`."""
    found = current_message.get()
    if found is None:
        carried = otel_context.get_value(CONTEXT_KEY)
        if isinstance(carried, Processing):
            return carried
    return found
