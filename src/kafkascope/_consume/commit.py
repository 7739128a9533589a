"""Commit spans: the conventions' settle operation, one ``commit {topic}`` CLIENT span per topic
an offset commit covers, linked to the process spans of the messages it settles.

:class:`Unsettled` remembers, per partition, the last few process spans whose messages are not
committed yet (a deque append per message); a :class:`CommitScope` is opened when a commit
starts and :meth:`~CommitScope.finish` writes its spans once the outcome and the offsets are
known (confluent-kafka reports both only then), with the start time of the commit. Nothing here
raises into user code.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind
from opentelemetry.util.types import AttributeValue

from kafkascope._adapters.offsets import Committed, topics
from kafkascope._adapters.records import RecordView
from kafkascope._consume.options import ProcessOptions
from kafkascope._core import errors as _errors
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core.telemetry import error_type as _error_type
from kafkascope._core.telemetry import record_error, tracer_for

LINKS_PER_PARTITION: Final = 8
"""Process spans remembered per partition until a commit settles them (the latest ones)."""
MAX_LINKS: Final = 128
"""Links on one commit span at most."""

_Key = tuple[str | None, int | None]


class Unsettled:
    """The process spans of one consumer's messages that no commit settled yet: the last
    :data:`LINKS_PER_PARTITION` per partition, with the offset each processed."""

    __slots__ = ("_spans",)

    def __init__(self) -> None:
        self._spans: dict[_Key, deque[tuple[int | None, SpanContext]]] = {}

    def note(self, records: Sequence[RecordView], span: Span) -> None:
        """Remember ``span`` as the processing of ``records`` (a batch: once per partition,
        at its highest offset). Once per message: its context is checked only when a commit
        links to it (not the span: an ended span's attributes are not kept alive)."""
        context = span.get_span_context()
        if len(records) == 1:
            record = records[0]
            where = (record.topic, record.partition)
            queue = self._spans.get(where)
            if queue is None:
                queue = self._spans[where] = deque(maxlen=LINKS_PER_PARTITION)
            queue.append((record.offset, context))
            return
        highest: dict[_Key, int] = {}
        for record in records:
            offset = record.offset
            if offset is not None:
                where = (record.topic, record.partition)
                if offset > highest.get(where, -1):
                    highest[where] = offset
        for where, offset in highest.items():
            queue = self._spans.get(where)
            if queue is None:
                queue = self._spans[where] = deque(maxlen=LINKS_PER_PARTITION)
            queue.append((offset, context))

    def settle(self, topic: str, partition: int, offset: int) -> list[SpanContext]:
        """The remembered spans of messages before ``offset`` (committed now), forgotten."""
        queue = self._spans.get((topic, partition))
        if not queue:
            return []
        settled = [context for at, context in queue if at is not None and at < offset]
        if settled:
            kept = [(at, context) for at, context in queue if at is None or at >= offset]
            queue.clear()
            queue.extend(kept)
        return [context for context in settled if context.is_valid]


class CommitScope:
    """One offset commit from its start to its outcome."""

    __slots__ = ("_context", "_options", "_start_ns", "_trigger", "_unsettled", "offsets")

    def __init__(
        self,
        options: ProcessOptions,
        unsettled: Unsettled | None,
        trigger: str,
        offsets: list[Committed] | None = None,
    ) -> None:
        self._options = options
        self._unsettled = unsettled
        self._trigger = trigger
        self.offsets = offsets
        """What is committed, when known at the start."""
        self._start_ns = time.time_ns()
        # An auto-commit belongs to no message: it starts its own trace (one per interval).
        self._context = Context() if trigger == sc.COMMIT_AUTO else otel_context.get_current()

    def finish(
        self,
        exc: BaseException | None,
        error_type: str | None = None,
        offsets: list[Committed] | None = None,
    ) -> None:
        """Write the commit's spans and counts: ``exc`` is its failure (``error_type`` its name,
        default the exception's class), ``offsets`` what it committed when only known now. A
        successful commit of nothing writes nothing. Never raises."""
        try:
            committed = offsets if offsets is not None else self.offsets
            if exc is not None and error_type is None:
                error_type = _error_type(exc)
            if exc is None and not committed:
                return
            by_topic = topics(committed or ())
            if not by_topic:
                self._span(None, [], exc, error_type)
            for topic, entries in by_topic.items():
                self._span(topic, entries, exc, error_type)
        except Exception as internal:
            _errors.report("commit span", internal)

    def _span(
        self,
        topic: str | None,
        entries: list[tuple[int, int]],
        exc: BaseException | None,
        error_type: str | None,
    ) -> None:
        options = self._options
        attrs = self._base(topic)
        if len(entries) == 1:
            partition, offset = entries[0]
            attrs[sc.MESSAGING_DESTINATION_PARTITION_ID] = str(partition)
            attrs[sc.MESSAGING_KAFKA_OFFSET] = offset
        elif entries:
            attrs[sc.COMMIT_PARTITIONS] = [str(partition) for partition, _ in entries]
            attrs[sc.COMMIT_OFFSETS] = [offset for _, offset in entries]
        attrs[sc.COMMIT_TRIGGER] = self._trigger
        links: list[Link] = []
        if exc is None and topic is not None and self._unsettled is not None:
            # A failed commit settled nothing: its messages stay for the next one to link.
            for partition, offset in entries:
                links.extend(Link(c) for c in self._unsettled.settle(topic, partition, offset))
        span = tracer_for(options.tracer_provider).start_span(
            sc.commit_span_name(topic),
            context=self._context,
            kind=SpanKind.CLIENT,
            attributes=attrs,
            links=links[-MAX_LINKS:],
            start_time=self._start_ns,
            record_exception=False,
            set_status_on_exception=False,
        )
        if exc is not None and error_type is not None:
            record_error(span, exc, error_type)
        span.end()
        instruments = _metrics.for_provider(options.meter_provider)
        if not instruments.noop:
            counted = self._base(topic, with_client=False)
            counted[sc.COMMIT_TRIGGER] = self._trigger
            counted[sc.COMMIT_OUTCOME] = sc.COMMIT_SUCCESS if exc is None else sc.COMMIT_FAILURE
            if error_type is not None:
                counted[sc.ERROR_TYPE] = error_type
            instruments.commits.add(1, counted)

    def _base(self, topic: str | None, *, with_client: bool = True) -> dict[str, AttributeValue]:
        options = self._options
        attrs: dict[str, AttributeValue] = {
            sc.MESSAGING_SYSTEM: sc.KAFKA,
            sc.MESSAGING_OPERATION_NAME: sc.OPERATION_COMMIT,
            sc.MESSAGING_OPERATION_TYPE: sc.OPERATION_SETTLE,
        }
        if topic is not None:
            attrs[sc.MESSAGING_DESTINATION_NAME] = topic
        if options.group is not None:
            attrs[sc.MESSAGING_CONSUMER_GROUP_NAME] = options.group
        if options.server_address is not None:
            attrs[sc.SERVER_ADDRESS] = options.server_address
        if options.server_port is not None:
            attrs[sc.SERVER_PORT] = options.server_port
        if with_client and options.client_id is not None:
            attrs[sc.MESSAGING_CLIENT_ID] = options.client_id
        return attrs
