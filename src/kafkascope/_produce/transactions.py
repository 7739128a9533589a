"""A transactional producer's transactions: a span for each commit and abort, and their count.

Each traced producer holds one :class:`Transactions`. While a transaction is open (from a
traced ``begin_transaction`` to a commit or abort that returned) its :class:`OpenTransaction`
notes the send spans made in it and the process spans current at those sends and at
``send_offsets_to_transaction``; the ``commit_transaction`` or ``abort_transaction`` span links to
the sends and to those process spans whose offsets the transaction commits (both bounded). With
no transaction open a send pays one attribute check.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, TypeGuard, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TracerProvider
from opentelemetry.util.types import AttributeValue

from kafkascope._adapters.confluent import error_name
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core import telemetry as _telemetry
from kafkascope._core.message import current_message
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for, tracer_for

T = TypeVar("T")

MAX_LINKS: Final = 128
"""Send spans, and process spans, one transaction's commit or abort span links to (each)."""

_SEND_LINK: Final = {sc.LINK_TYPE: sc.LINK_TRANSACTION_SEND}
_OFFSETS_LINK: Final = {sc.LINK_TYPE: sc.LINK_TRANSACTION_OFFSETS}


class OpenTransaction:
    """What one open transaction has done so far: its sends, the messages being processed
    while it sent, and the offsets it will commit."""

    __slots__ = ("_batches", "_offsets", "_processed", "sends", "transactional_id")

    def __init__(self, transactional_id: str | None) -> None:
        self.transactional_id = transactional_id
        self.sends: list[SpanContext] = []
        self._processed: dict[tuple[str, int, int], SpanContext] = {}
        self._batches: dict[int, tuple[str | None, SpanContext]] = {}
        self._offsets: dict[tuple[str, int], int] = {}

    def sent(self, span: Span) -> None:
        """A send span started inside the transaction: mark it, note it (and the message
        being processed)."""
        try:
            if span.is_recording():
                if self.transactional_id is not None:
                    span.set_attribute(sc.TRANSACTION_ID, self.transactional_id)
                if len(self.sends) < MAX_LINKS:
                    self.sends.append(span.get_span_context())
            self.note_processing()
        except Exception as exc:
            _errors.report("transaction send", exc)

    def note_processing(self) -> None:
        """Note the process span of the message (or batch) being processed now, if any."""
        processing = current_message.get()
        if processing is None:
            return
        span = processing.span
        if span is None:  # a batch: its process span is the current one
            batch = trace.get_current_span()
            context = batch.get_span_context()
            if (
                batch.is_recording()
                and context.span_id not in self._batches
                and len(self._batches) < MAX_LINKS
            ):
                self._batches[context.span_id] = (processing.topic, context)
            return
        partition, offset = processing.partition, processing.offset
        if processing.topic is None or partition is None or offset is None:
            return
        key = (processing.topic, partition, offset)
        if key not in self._processed and len(self._processed) < MAX_LINKS and span.is_recording():
            self._processed[key] = span.get_span_context()

    def offsets_sent(self, offsets: object) -> None:
        """``send_offsets_to_transaction(offsets, ...)`` returned: the transaction commits them."""
        try:
            self.note_processing()
            for topic, partition, offset in committed_offsets(offsets):
                known = self._offsets.get((topic, partition))
                if known is None or offset > known:
                    self._offsets[(topic, partition)] = offset
        except Exception as exc:
            _errors.report("transaction offsets", exc)

    def links(self) -> list[Link]:
        """Links to the sends, then to the process spans whose offsets are committed."""
        links = [Link(ctx, _SEND_LINK) for ctx in self.sends]
        for (topic, partition, offset), ctx in self._processed.items():
            committed = self._offsets.get((topic, partition))
            if committed is not None and offset < committed:
                links.append(Link(ctx, _OFFSETS_LINK))
        if self._batches and self._offsets:
            topics = {committed_topic for committed_topic, _ in self._offsets}
            for batch_topic, ctx in self._batches.values():
                # A batch span does not say which offsets it held: one of its topic's will do.
                if batch_topic is None or batch_topic in topics:
                    links.append(Link(ctx, _OFFSETS_LINK))
        return links


def committed_offsets(offsets: object) -> Iterable[tuple[str, int, int]]:
    """``(topic, partition, next offset)`` of each of the clients' offset shapes: confluent's
    list of ``TopicPartition``, kafka-python's and aiokafka's mapping of ``TopicPartition`` to
    ``OffsetAndMetadata``, an ``(offset, metadata)`` pair or an int. Unreadable entries are
    skipped."""
    if isinstance(offsets, Mapping):
        pairs: Iterable[tuple[Any, Any]] = offsets.items()
    elif isinstance(offsets, list | tuple):
        pairs = ((tp, getattr(tp, "offset", None)) for tp in offsets)
    else:
        return
    for tp, value in pairs:
        topic, partition = getattr(tp, "topic", None), getattr(tp, "partition", None)
        offset = value if isinstance(value, int) else getattr(value, "offset", None)
        if offset is None and isinstance(value, tuple) and value:
            offset = value[0]
        if isinstance(topic, str) and _whole(partition) and _whole(offset) and offset >= 0:
            yield topic, partition, offset


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class _Instruments:
    """The transactions counter, for one meter provider."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self.noop = isinstance(meter_provider, metrics.NoOpMeterProvider)
        self.transactions = meter_for(meter_provider).create_counter(
            sc.TRANSACTIONS,
            unit="{transaction}",
            description="Transactions a transactional producer committed, aborted, or failed "
            "to end.",
        )


_instruments: Final = ProviderCache(_Instruments)


class Transactions:
    """One producer's transactions: the open one (None: none), and how to trace their end."""

    __slots__ = ("_base", "_meter_provider", "_tracer_provider", "open", "transactional_id")

    def __init__(
        self,
        transactional_id: str | None,
        tracer_provider: TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        server_address: str | None,
        server_port: int | None,
        client_id: str | None,
    ) -> None:
        self.transactional_id = transactional_id
        self.open: OpenTransaction | None = None
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._base = messaging_attributes(
            server_address=server_address, server_port=server_port, client_id=client_id
        )

    def begun(self) -> None:
        """``begin_transaction()`` returned."""
        self.open = OpenTransaction(self.transactional_id)

    def offsets_sent(self, offsets: object) -> None:
        """``send_offsets_to_transaction(offsets, ...)`` returned."""
        found = self.open
        if found is None:  # begun before kafkascope was instrumenting
            found = self.open = OpenTransaction(self.transactional_id)
        found.offsets_sent(offsets)

    def ending(self, commit: bool) -> Ending | None:
        """Start the span of a commit (or abort); None if that failed (reported)."""
        try:
            name = sc.COMMIT_TRANSACTION if commit else sc.ABORT_TRANSACTION
            attributes: dict[str, AttributeValue] = dict(self._base)
            attributes[sc.MESSAGING_OPERATION_NAME] = name
            if self.transactional_id is not None:
                attributes[sc.TRANSACTION_ID] = self.transactional_id
            found = self.open
            span = tracer_for(self._tracer_provider).start_span(
                name,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                links=found.links() if found is not None else (),
                record_exception=False,
                set_status_on_exception=False,
            )
            return Ending(self, span, commit)
        except Exception as exc:
            _errors.report("transaction span start", exc)
            return None

    def count(self, outcome: str, error_type: str | None) -> None:
        """One transaction ended with ``outcome``."""
        instruments = _instruments.get(self._meter_provider)
        if instruments.noop:
            return
        attributes = {
            k: v
            for k, v in self._base.items()
            if k in (sc.MESSAGING_SYSTEM, sc.SERVER_ADDRESS, sc.SERVER_PORT)
        }
        attributes[sc.TRANSACTION_OUTCOME] = outcome
        if error_type is not None:
            attributes[sc.ERROR_TYPE] = error_type
        instruments.transactions.add(1, attributes)


class Ending:
    """One commit or abort call: its span, ended with the outcome."""

    __slots__ = ("_commit", "_start", "_transactions", "span")

    def __init__(self, transactions: Transactions, span: Span, commit: bool) -> None:
        self._transactions = transactions
        self.span = span
        self._commit = commit
        self._start = time.perf_counter()

    def finish(self, exc: BaseException | None) -> None:
        """The call returned (``exc`` None) or raised ``exc``."""
        try:
            error_type = None
            if exc is None:
                outcome = sc.TRANSACTION_COMMITTED if self._commit else sc.TRANSACTION_ABORTED
                self._transactions.open = None  # a failed end leaves it open for the abort
            else:
                outcome = sc.TRANSACTION_FAILED
                error_type = error_name(exc) or _telemetry.error_type(exc)
                _telemetry.record_error(self.span, exc, error_type)
            if self.span.is_recording():
                self.span.set_attribute(sc.TRANSACTION_OUTCOME, outcome)
            self.span.end()
            self._transactions.count(outcome, error_type)
        except Exception as internal:
            _errors.report("transaction span end", internal)


def begin(transactions: Transactions | None, call: Callable[[], T]) -> T:
    """``call`` (a ``begin_transaction``), then note the open transaction."""
    result = call()
    if transactions is not None:
        transactions.begun()
    return result


def send_offsets(transactions: Transactions | None, offsets: object, call: Callable[[], T]) -> T:
    """``call`` (a ``send_offsets_to_transaction`` of ``offsets``), then note the offsets."""
    result = call()
    if transactions is not None:
        transactions.offsets_sent(offsets)
    return result


def end(transactions: Transactions | None, commit: bool, call: Callable[[], T]) -> T:
    """``call`` (a commit, or an abort) inside its span; its exception recorded and re-raised."""
    ending = _ending(transactions, commit)
    if ending is None:
        return call()
    token = otel_context.attach(trace.set_span_in_context(ending.span))
    try:
        result = call()
    except BaseException as exc:
        ending.finish(exc)
        raise
    finally:
        otel_context.detach(token)
    ending.finish(None)
    return result


async def begin_async(transactions: Transactions | None, call: Callable[[], Awaitable[T]]) -> T:
    """:func:`begin` of an async client."""
    result = await call()
    if transactions is not None:
        transactions.begun()
    return result


async def send_offsets_async(
    transactions: Transactions | None, offsets: object, call: Callable[[], Awaitable[T]]
) -> T:
    """:func:`send_offsets` of an async client."""
    result = await call()
    if transactions is not None:
        transactions.offsets_sent(offsets)
    return result


async def end_async(
    transactions: Transactions | None, commit: bool, call: Callable[[], Awaitable[T]]
) -> T:
    """:func:`end` of an async client."""
    ending = _ending(transactions, commit)
    if ending is None:
        return await call()
    token = otel_context.attach(trace.set_span_in_context(ending.span))
    try:
        result = await call()
    except BaseException as exc:
        ending.finish(exc)
        raise
    finally:
        otel_context.detach(token)
    ending.finish(None)
    return result


def _ending(transactions: Transactions | None, commit: bool) -> Ending | None:
    if transactions is None or not is_instrumentation_enabled():
        return None
    return transactions.ending(commit)
