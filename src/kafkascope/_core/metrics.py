"""Messaging metrics: instruments created once per meter provider, low-cardinality attributes."""

from __future__ import annotations

from collections.abc import Iterable
from time import time_ns
from typing import Final

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Span, SpanContext
from opentelemetry.util.types import Attributes

from kafkascope._core import histograms as _histograms
from kafkascope._core import semconv as sc
from kafkascope._core import sizes as _sizes
from kafkascope._core.histogram_streams import Bound, Tally
from kafkascope._core.histograms import HistogramSpec
from kafkascope._core.message_counter import MessageCounter
from kafkascope._core.single_messages import FOLD_AT, Singles
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for

TIME_IN_QUEUE_BUCKETS: Final = (*sc.DURATION_BUCKETS, 30.0, 60.0, 300.0, 900.0, 3600.0)
_MAX_CACHED_ATTRIBUTE_SETS: Final = 4096

AttrKey = tuple[str, str | None, str | None, str | None, str | None, int | None, str | None]
Stream = tuple[AttrKey, Attributes]
"""An attribute set with its key, built once and reused."""
SentBound = tuple[Bound, Tally]
"""A send stream bound once: its send-duration streams and its sent-messages total."""

PROCESS_DURATION: Final = HistogramSpec(
    sc.METRIC_PROCESS_DURATION, "s", "Duration of processing operation.", sc.DURATION_BUCKETS
)
TIME_IN_QUEUE: Final = HistogramSpec(
    sc.TIME_IN_QUEUE,
    "s",
    "Time from the record's timestamp to the start of its processing.",
    TIME_IN_QUEUE_BUCKETS,
)
OPERATION_DURATION: Final = HistogramSpec(
    sc.METRIC_CLIENT_OPERATION_DURATION,
    "s",
    "Duration of a messaging operation initiated by a client.",
    sc.DURATION_BUCKETS,
)
_MESSAGING: Final = (PROCESS_DURATION, TIME_IN_QUEUE, OPERATION_DURATION)
"""The histograms of :class:`MessagingMetrics` (in this order: a histogram's position is its
index in :data:`PRE_AGGREGATED` too)."""
PRE_AGGREGATED: Final = (*_MESSAGING, _sizes.SPEC)
"""The histograms recorded once per processed or sent message, which ``configure()``'s push
pipelines aggregate in process (the body sizes only when they are captured)."""
_PROCESS, _WAIT, _SEND = range(len(_MESSAGING))


def _histogram(meter: metrics.Meter, spec: HistogramSpec) -> Histogram:
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=spec.boundaries,
    )


class MessagingMetrics:
    """The instruments kafkascope records into, for one meter provider."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        # Nothing would be recorded: callers skip measuring altogether.
        self.noop = isinstance(meter_provider, metrics.NoOpMeterProvider)
        meter = meter_for(meter_provider)
        # On configure()'s push pipelines the per-message histograms are aggregated in process
        # (_core/histograms.py); everywhere else they are the SDK's instruments.
        self._pre = _histograms.registered(meter_provider)
        self._sdk_histograms: tuple[Histogram, ...] = ()
        if self._pre is None:
            self._sdk_histograms = tuple(_histogram(meter, spec) for spec in _MESSAGING)
        self.sent_messages = MessageCounter(
            meter,
            sc.METRIC_CLIENT_SENT_MESSAGES,
            "Number of messages producer attempted to send to the broker.",
            None if self._pre is None else self._pre.lock,
        )
        self.consumed_messages = MessageCounter(
            meter,
            sc.METRIC_CLIENT_CONSUMED_MESSAGES,
            "Number of messages that were delivered to the application.",
            None if self._pre is None else self._pre.lock,
            None if self._pre is None else self._pre.fold_locked,
        )
        self.dead_lettered = meter.create_counter(
            sc.DEAD_LETTERED,
            unit="{message}",
            description="Messages sent to a dead-letter topic after their processing failed.",
        )
        self.commits = meter.create_counter(
            sc.COMMITS,
            unit="{commit}",
            description="Offset commits of the process's consumers, one per topic a commit covers.",
        )
        self._attributes: dict[AttrKey, Attributes] = {}

    def process_streams(
        self,
        topic: str | None,
        group: str | None,
        server_address: str | None,
        server_port: int | None,
    ) -> ProcessStreams:
        """The attribute sets of one handler's messages on ``topic``, to keep and reuse."""
        return ProcessStreams(self, topic, group, server_address, server_port)

    def observe_processed(
        self,
        *,
        streams: ProcessStreams,
        error_type: str | None,
        duration: float,
        messages: int,
        waits: Iterable[tuple[Stream, float]] = (),
        context: Context | None = None,
    ) -> None:
        """One processed message or batch on ``streams``: its duration, its messages, and each
        message's time in queue as ``(attributes from streams.waited(), seconds)``.

        ``context`` is the process span's: an exemplar then leads to that message's trace.
        """
        key, attrs = streams.ok
        processed = streams.ok if error_type is None else streams.failed(error_type)
        pre = self._pre
        if pre is not None:
            measured: list[_histograms.Measured] = [
                (_PROCESS, duration, processed[0], processed[1])
            ]
            for (wait_key, wait_attrs), seconds in waits:
                measured.append((_WAIT, seconds, wait_key, wait_attrs))
            pre.record_all(measured, context)
        else:
            process_duration, time_in_queue, _ = self._sdk_histograms
            process_duration.record(duration, processed[1], context)
            for (_, wait_attrs), seconds in waits:
                time_in_queue.record(seconds, wait_attrs, context)
        # The conventions' error.type on consumed.messages means the delivery to the
        # application failed, never the handler: every message counts in the stream without it.
        self.consumed_messages.add(messages, key, attrs)

    def observe_message(
        self,
        streams: ProcessStreams,
        error_type: str | None,
        duration: float,
        timestamp_type: str | None,
        waited: float | None,
        span: Span,
        context: Context | None,
        sampled: bool | None = None,
    ) -> None:
        """One processed message: :meth:`observe_processed` for a single record whose time in
        queue (when known) is ``waited`` seconds by a timestamp of ``timestamp_type``, measured
        in ``context`` (its span ``span``, ``sampled`` or not when the caller knows). On
        ``configure()``'s pipelines it is appended to its streams'
        :class:`~kafkascope._core.single_messages.Singles` (aggregated in bulk, no lock per
        message), or, under another exemplar filter than the default, measured under a lock."""
        pre = self._pre
        if pre is not None and pre.trace_based:
            if waited is None:
                timestamp_type = None
            singles = streams.singles.get((error_type, timestamp_type))
            if singles is None:
                singles = streams.make_singles(pre, error_type, timestamp_type)
            if sampled is not False:  # a dropped span's context is not read
                span_context = span.get_span_context()
                if sampled or span_context.trace_flags.sampled:
                    ids = (span_context.span_id, span_context.trace_id)
                    singles.offered.append(
                        (
                            (duration, time_ns(), *ids),
                            None if waited is None else (waited, time_ns(), *ids),
                        )
                    )
            durations = singles.durations
            durations.append(duration)
            if waited is not None:
                singles.waits.append(waited)
            pre.waiting = True
            if len(durations) >= FOLD_AT:
                pre.fold()
            return
        if pre is None:
            waits = (
                ()
                if waited is None or timestamp_type is None
                else ((streams.waited(timestamp_type), waited),)
            )
            self.observe_processed(
                streams=streams,
                error_type=error_type,
                duration=duration,
                messages=1,
                waits=waits,
                context=context,
            )
            return
        processed = streams.bound(pre, error_type)
        if waited is None or timestamp_type is None:
            measured: tuple[tuple[Bound, float], ...] = ((processed, duration),)
        else:
            measured = ((processed, duration), (streams.bound_waited(pre, timestamp_type), waited))
        pre.record_bound(measured, span.get_span_context(), context, streams.count)

    def send_stream(
        self,
        topic: str,
        server_address: str | None,
        server_port: int | None,
        error_type: str | None,
    ) -> Stream:
        """The key and attributes of the sends to ``topic`` with this outcome, to reuse."""
        return self.attributes_of(
            sc.OPERATION_SEND, topic, None, error_type, server_address, server_port
        )

    def observe_sent(self, *, stream: Stream, duration: float) -> None:
        """One send on ``stream`` (from :meth:`send_stream`), acknowledged or failed."""
        key, attrs = stream
        pre = self._pre
        if pre is not None:
            pre.record(_SEND, duration, key, attrs, None)
        else:
            self._sdk_histograms[_SEND].record(duration, attrs)
        self.sent_messages.add(1, key, attrs)

    def bind_sent(self, stream: Stream) -> SentBound | None:
        """``stream`` (from :meth:`send_stream`) bound once for :meth:`observe_sent_bound`;
        None off ``configure()``'s pipelines (then :meth:`observe_sent`)."""
        pre = self._pre
        if pre is None:
            return None
        return pre.bind(_SEND, *stream), self.sent_messages.bind(*stream)

    def observe_sent_bound(self, bound: SentBound, duration: float, current: SpanContext) -> None:
        """:meth:`observe_sent` of a :meth:`bind_sent` stream, measured where the current
        span's context is ``current``: one lock, no look-up."""
        if self._pre is not None:
            self._pre.record_bound(((bound[0], duration),), current, None, bound[1])

    def observe_dead_letter(self, *, topic: str, source: str | None, error_type: str) -> None:
        """One message sent to the dead-letter ``topic`` from the topic ``source``."""
        attrs = messaging_attributes(topic=topic)
        attrs[sc.DEAD_LETTER_SOURCE] = str(source)
        attrs[sc.ERROR_TYPE] = error_type
        self.dead_lettered.add(1, attrs)

    def attributes_of(
        self,
        operation: str,
        topic: str | None,
        group: str | None,
        error_type: str | None,
        server_address: str | None,
        server_port: int | None,
        timestamp_type: str | None = None,
    ) -> Stream:
        """The key and metric attributes of one combination, built once and reused."""
        key: AttrKey = (
            operation,
            topic,
            group,
            error_type,
            server_address,
            server_port,
            timestamp_type,
        )
        cached = self._attributes.get(key)
        if cached is not None:
            return key, cached
        attrs = messaging_attributes(
            operation,
            topic=topic,
            group=group,
            server_address=server_address,
            server_port=server_port,
        )
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        if timestamp_type is not None:
            attrs[sc.TIMESTAMP_TYPE] = timestamp_type
        if len(self._attributes) < _MAX_CACHED_ATTRIBUTE_SETS:
            self._attributes[key] = attrs
        return key, attrs


class ProcessStreams:
    """The metric attribute sets of one handler's messages on one topic, built on first use:
    the successful stream (also the consumed-messages count's), one per error type, one per
    timestamp type for the time in queue."""

    __slots__ = (
        "_bound_failed",
        "_bound_ok",
        "_bound_waited",
        "_failed",
        "_metrics",
        "_values",
        "_waited",
        "count",
        "ok",
        "singles",
    )

    def __init__(
        self,
        metrics: MessagingMetrics,
        topic: str | None,
        group: str | None,
        server_address: str | None,
        server_port: int | None,
    ) -> None:
        self._metrics = metrics
        self._values = (topic, group, server_address, server_port)
        self.ok = metrics.attributes_of(
            sc.OPERATION_PROCESS, topic, group, None, server_address, server_port
        )
        self._failed: dict[str, Stream] = {}
        self._waited: dict[str, Stream] = {}
        self.count = metrics.consumed_messages.bind(*self.ok)
        """The consumed-messages total of the successful stream."""
        self._bound_ok: Bound | None = None
        self._bound_failed: dict[str, Bound] = {}
        self._bound_waited: dict[str, Bound] = {}
        self.singles: dict[tuple[str | None, str | None], Singles] = {}
        """Per error type and timestamp type (None: no time in queue), the single messages'
        entries (:meth:`make_singles`)."""

    def make_singles(
        self, pre: _histograms.PreAggregation, error_type: str | None, timestamp_type: str | None
    ) -> Singles:
        """The :attr:`singles` of ``error_type`` and ``timestamp_type`` in ``pre``, made (and
        kept, within the cache's bound) on first use."""
        found = pre.singles(
            self.bound(pre, error_type),
            None if timestamp_type is None else self.bound_waited(pre, timestamp_type),
            self.count,
        )
        if len(self.singles) < _MAX_CACHED_ATTRIBUTE_SETS:
            self.singles[(error_type, timestamp_type)] = found
        return found

    def failed(self, error_type: str) -> Stream:
        """The processing-time stream of a message whose handler raised ``error_type``."""
        found = self._failed.get(error_type)
        if found is None:
            topic, group, address, port = self._values
            found = self._metrics.attributes_of(
                sc.OPERATION_PROCESS, topic, group, error_type, address, port
            )
            if len(self._failed) < _MAX_CACHED_ATTRIBUTE_SETS:
                self._failed[error_type] = found
        return found

    def waited(self, timestamp_type: str) -> Stream:
        """The time-in-queue stream of records with ``timestamp_type``."""
        found = self._waited.get(timestamp_type)
        if found is None:
            topic, group, address, port = self._values
            found = self._waited[timestamp_type] = self._metrics.attributes_of(
                sc.OPERATION_PROCESS, topic, group, None, address, port, timestamp_type
            )
        return found

    def bound(self, pre: _histograms.PreAggregation, error_type: str | None) -> Bound:
        """The processing-time stream of ``error_type`` (None: success) bound in ``pre``."""
        if error_type is None:
            found = self._bound_ok
            if found is None:
                found = self._bound_ok = pre.bind(_PROCESS, *self.ok)
            return found
        found = self._bound_failed.get(error_type)
        if found is None:
            found = pre.bind(_PROCESS, *self.failed(error_type))
            if len(self._bound_failed) < _MAX_CACHED_ATTRIBUTE_SETS:
                self._bound_failed[error_type] = found
        return found

    def bound_waited(self, pre: _histograms.PreAggregation, timestamp_type: str) -> Bound:
        """The time-in-queue stream of ``timestamp_type`` bound in ``pre``."""
        found = self._bound_waited.get(timestamp_type)
        if found is None:
            found = self._bound_waited[timestamp_type] = pre.bind(
                _WAIT, *self.waited(timestamp_type)
            )
        return found


cache: Final = ProviderCache(MessagingMetrics)
"""Each meter provider's instruments."""

for_provider: Final = cache.get
"""A meter provider's instruments (None: the global one's), made once; runs per message."""
