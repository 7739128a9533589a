"""Retries and poison messages: the attempts at one message as one lineage.

Each handler keeps a small bounded map ``(topic, partition, offset) -> failed attempts`` (the
span context of each). A message that is read again after failing (the offset was not
committed, or the consumer sought back) gets an attempt number and a link to the previous
attempt's process span; after
:attr:`~kafkascope._core.settings.Settings.poison_attempts` failures in
a row it counts in ``kafkascope.messages.poison``, its span says so and one WARN record lists
the trace ids of every attempt. A success forgets the message.

A retry re-sent to a retry topic from inside a failed process span (by any traced producer)
carries the lineage in two headers, which other consumers ignore:

* ``kafkascope-attempt``: the number of the attempt that failed and re-sent it (ASCII digits);
* ``kafkascope-previous-attempt``: that attempt's process span, as a W3C ``traceparent``.

Headers already carrying these are replaced, so forwarding a record's headers is safe. A
:func:`kafkascope.dead_letter` send is the end of the lineage and carries neither.

Nothing here is kept per message that succeeds at its first attempt: a lookup in an empty map
and a look at the header names; the attempt is part of the one context variable of
:mod:`kafkascope._core.message`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from typing import Final

from opentelemetry import metrics
from opentelemetry.trace import Span, SpanContext

from kafkascope._adapters.records import RecordView
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.headers import (
    ATTEMPT,
    ATTEMPT_BYTES,
    DEAD_LETTER_PREFIX,
    PREVIOUS_ATTEMPT,
    PREVIOUS_ATTEMPT_BYTES,
    Headers,
)
from kafkascope._core.message import current_message
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for
from kafkascope._propagation.carrier import normalise_headers, pairs_of, text_of
from kafkascope._propagation.traceparent import format_traceparent, parse_traceparent

LINK_PREVIOUS: Final = {sc.LINK_TYPE: sc.LINK_PREVIOUS_ATTEMPT}
MAX_TRACKED: Final = 1024
"""Messages whose failures one handler remembers; the oldest are forgotten first."""
MAX_CONTEXTS: Final = 32
"""Span contexts remembered per message (the first and the latest ones are kept)."""

logger = logging.getLogger("kafkascope.poison")

Key = tuple[str | None, int | None, int | None]


class History:
    """The failed attempts in a row at one message."""

    __slots__ = ("contexts", "failures")

    def __init__(self, failures: int, contexts: list[SpanContext]) -> None:
        self.failures = failures
        self.contexts = contexts


class _Instruments:
    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self.poison = meter_for(meter_provider).create_counter(
            sc.POISON,
            unit="{message}",
            description="Messages whose processing failed the configured number of times in a row.",
        )


_instruments: Final[ProviderCache[_Instruments]] = ProviderCache(_Instruments)


def _key(record: RecordView) -> Key:
    return (record.topic, record.partition, record.offset)


class Attempts:
    """One handler's failed attempts, bounded to :data:`MAX_TRACKED` messages."""

    __slots__ = ("_group", "_lock", "_meter_provider", "failed")

    def __init__(self, group: str | None, meter_provider: metrics.MeterProvider | None) -> None:
        self._group = group
        self._meter_provider = meter_provider
        self.failed: OrderedDict[Key, History] = OrderedDict()
        """The messages whose last attempt failed, oldest first (read, never changed, outside
        this class): empty while every message succeeds at its first attempt."""
        self._lock = threading.Lock()

    def begin(self, record: RecordView, span: Span, lineage: bool | None = None) -> History | None:
        """The failed attempts before the one whose process ``span`` just started (None for a
        first attempt): a retry is numbered and linked to the previous attempt. ``lineage``:
        whether the record's headers name the attempt header, when the caller has looked
        (:func:`~kafkascope._propagation.w3c.scan_headers`); None to look here."""
        history = self.failed.get(_key(record)) if self.failed else None
        headers = record.headers
        if (
            history is None
            and headers
            and (lineage or (lineage is None and _may_carry_lineage(headers)))
        ):
            history = _from_headers(headers)
        if history is not None:
            span.set_attribute(sc.MESSAGE_ATTEMPT, history.failures + 1)
            span.add_link(history.contexts[-1], LINK_PREVIOUS)
        return history

    def end(
        self,
        record: RecordView,
        history: History | None,
        span: Span,
        exc: BaseException | None,
    ) -> None:
        """Record the outcome of the attempt :meth:`begin` returned ``history`` for; call before
        its ``span`` ends. Never raises."""
        try:
            if exc is None:
                if history is not None and self.failed:
                    with self._lock:
                        self.failed.pop(_key(record), None)
                return
            self._failed(record, history, span)
        except Exception as internal:
            _errors.report("poison tracking", internal)

    def _failed(self, record: RecordView, history: History | None, span: Span) -> None:
        group = self._group
        context = span.get_span_context()
        if history is None:
            history = History(0, [])
        history.failures += 1
        history.contexts.append(context)
        if len(history.contexts) > MAX_CONTEXTS:
            del history.contexts[1]
        key = _key(record)
        with self._lock:
            self.failed[key] = history
            self.failed.move_to_end(key)
            while len(self.failed) > MAX_TRACKED:
                self.failed.popitem(last=False)
        threshold = _settings.current().poison_attempts
        if history.failures < threshold:
            return
        span.set_attribute(sc.MESSAGE_POISON, True)
        if history.failures > threshold:
            return  # counted and logged once, when it became poison
        attrs = messaging_attributes(topic=record.topic, group=group)
        _instruments.get(self._meter_provider).poison.add(1, attrs)
        trace_ids = [format(c.trace_id, "032x") for c in history.contexts]
        logger.warning(
            "kafkascope: poison message %s[%s]@%s: %d failed attempts in a row (traces %s)",
            record.topic,
            record.partition,
            record.offset,
            history.failures,
            ", ".join(trace_ids),
            extra={
                name: value
                for name, value in (
                    (sc.MESSAGING_DESTINATION_NAME, record.topic),
                    (
                        sc.MESSAGING_DESTINATION_PARTITION_ID,
                        None if record.partition is None else str(record.partition),
                    ),
                    (sc.MESSAGING_KAFKA_OFFSET, record.offset),
                    (sc.MESSAGING_CONSUMER_GROUP_NAME, group),
                    (sc.MESSAGE_ATTEMPT, history.failures),
                    (sc.POISON_TRACE_IDS, trace_ids),
                )
                if value is not None
            },
        )


_ATTEMPT_NAMES: Final = frozenset({ATTEMPT, ATTEMPT_BYTES})


def _may_carry_lineage(headers: Headers) -> bool:
    """A quick look for the attempt header in the clients' list of pairs (the per-message
    path: most records carry none); other shapes are left to :func:`_from_headers`."""
    if type(headers) is not list and not isinstance(headers, tuple):
        return True
    try:
        for pair in headers:
            if pair[0] in _ATTEMPT_NAMES:
                return True
    except Exception:  # pairs of an unknown shape: the full reader decides
        return True
    return False


def _from_headers(headers: Headers) -> History | None:
    """The lineage a retry topic's record carries, if it carries one."""
    number: int | None = None
    previous: SpanContext | None = None
    try:
        for pair in pairs_of(headers):
            name = pair[0]
            if name in (ATTEMPT, ATTEMPT_BYTES):
                text = text_of(pair[1])
                number = int(text) if text is not None and text.strip().isdigit() else None
            elif name in (PREVIOUS_ATTEMPT, PREVIOUS_ATTEMPT_BYTES):
                text = text_of(pair[1])
                previous = parse_traceparent(text.encode()) if text is not None else None
    except Exception:  # headers of an unknown shape carry no lineage
        return None
    if number is None or number < 1 or previous is None:
        return None
    return History(number, [previous])


def retry_headers(headers: Headers) -> Headers:
    """``headers`` with the lineage headers when sent while a failed attempt handles its
    exception; otherwise ``headers`` itself. Raises TypeError for headers that cannot be sent
    (the caller leaves those to the client)."""
    processing = current_message.get()
    if processing is None or processing.span is None or sys.exception() is None:
        return headers
    context = processing.span.get_span_context()
    if not context.is_valid:
        return headers
    out = [
        (name, value)
        for name, value in normalise_headers(headers)
        if name not in (ATTEMPT, PREVIOUS_ATTEMPT)
    ]
    if any(name.startswith(DEAD_LETTER_PREFIX) for name, _ in out):
        return headers  # a dead letter ends the lineage: it is not another attempt
    out.append((ATTEMPT, str(processing.attempt).encode()))
    out.append((PREVIOUS_ATTEMPT, format_traceparent(context)))
    return out
