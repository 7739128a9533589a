"""Histograms aggregated in process for the push pipelines ``configure()`` builds.

The SDK's ``Histogram.record`` re-cleans and re-hashes the attributes of every measurement;
here a stream is found by a key the caller already holds, the bucket by one bisect, under one
lock. The points are the ones the SDK's explicit-bucket aggregation exports (counts, sum,
min, max, start and end times, per-bucket exemplars of ``AlignedHistogramBucketExemplarReservoir``
kept only where the provider's exemplar filter samples), built with the SDK's public data
classes and added to each export by ``_setup.preaggregation``. A handler's single messages
are appended without the lock and aggregated in bulk (:mod:`~kafkascope._core.single_messages`).
"""

from __future__ import annotations

import math
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from time import time_ns
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.metrics import Exemplar, ExemplarFilter, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import AggregationTemporality, HistogramDataPoint
from opentelemetry.trace import INVALID_SPAN, SpanContext
from opentelemetry.util.types import Attributes

from kafkascope._core.histogram_streams import Bound, Offered, Stream, Tally
from kafkascope._core.single_messages import Singles

_CUMULATIVE: Final = AggregationTemporality.CUMULATIVE

Measured = tuple[int, float, Hashable, Attributes]
"""One measurement: the histogram's position in the specs, the value, its stream's key and
attributes."""


@dataclass(frozen=True)
class HistogramSpec:
    """What an SDK histogram instrument would have been created with."""

    name: str
    unit: str
    description: str
    boundaries: tuple[float, ...]


class HistogramTable:
    """One histogram's streams for one reader, with the reader's temporality."""

    def __init__(
        self,
        spec: HistogramSpec,
        temporality: AggregationTemporality,
        lock: threading.Lock | None = None,
        before_collect: Callable[[], None] | None = None,
    ) -> None:
        """``before_collect``: called under ``lock`` before each collection (what is pending
        elsewhere is counted first)."""
        self.spec = spec
        self.temporality = temporality
        self._buckets = len(spec.boundaries) + 1
        self._streams: dict[Hashable, Stream] = {}
        self._lock = lock or threading.Lock()
        self._before_collect = before_collect

    def stream(self, key: Hashable, attributes: Attributes) -> Stream:
        """The stream ``key`` with ``attributes``, made (empty) if it has none yet; a stream,
        once made, lives as long as the table (a delta collection empties it in place)."""
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = Stream(
                    dict(attributes or {}), self._buckets, time_ns()
                )
            return stream

    def add(
        self,
        key: Hashable,
        attributes: Attributes,
        value: float,
        index: int,
        exemplar: Offered | None,
    ) -> None:
        """Count ``value`` (in bucket ``index``) in the stream ``key`` with ``attributes``."""
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                # Copied: the SDK keeps its own copy of a measurement's attributes too.
                stream = self._streams[key] = Stream(
                    dict(attributes or {}), self._buckets, time_ns()
                )
            stream.counts[index] += 1
            stream.sum += value
            if value < stream.min:
                stream.min = value
            if value > stream.max:
                stream.max = value
            if exemplar is not None:
                stream.exemplars[index] = exemplar

    def collect(self, now_ns: int) -> list[HistogramDataPoint]:
        """The points of a collection at ``now_ns``: every stream when cumulative; when delta,
        the streams measured since the last collection, each of which then starts afresh."""
        points = []
        bounds = self.spec.boundaries
        delta = self.temporality is not _CUMULATIVE
        with self._lock:
            if self._before_collect is not None:
                self._before_collect()
            for stream in self._streams.values():
                counts = stream.counts
                count = sum(counts)
                if count:
                    points.append(
                        HistogramDataPoint(
                            attributes=stream.attributes,
                            start_time_unix_nano=stream.start_ns,
                            time_unix_nano=now_ns,
                            count=count,
                            sum=stream.sum,
                            bucket_counts=tuple(counts),
                            explicit_bounds=bounds,
                            min=stream.min,
                            max=stream.max,
                            exemplars=_exemplars(stream.exemplars),
                        )
                    )
                # Exemplars are per collection in either temporality, as the SDK's reservoir's.
                stream.exemplars = {}
                if delta:
                    # As the SDK's: the next delta point starts at this collection, whether or
                    # not this one had a point.
                    stream.start_ns = now_ns
                    stream.counts = [0] * self._buckets
                    stream.sum = 0.0
                    stream.min = math.inf
                    stream.max = -math.inf
        return points


class PreAggregation:
    """The histograms of one meter provider built by ``configure()``, aggregated in process
    for each of its push readers (one table per reader and histogram)."""

    def __init__(
        self,
        specs: Sequence[HistogramSpec],
        temporalities: Sequence[AggregationTemporality],
        exemplar_filter: ExemplarFilter,
    ) -> None:
        self.specs = tuple(specs)
        self._filter = exemplar_filter
        # The default filter's test, inlined: the sampled flag of the span in the context.
        self.trace_based = type(exemplar_filter) is TraceBasedExemplarFilter
        # One lock for every table: a message's measurements are taken under it once.
        self.lock = threading.Lock()
        # tables[reader][histogram]
        self.tables = [
            [HistogramTable(spec, temporality, self.lock, self.fold_locked) for spec in self.specs]
            for temporality in temporalities
        ]
        self._singles: list[Singles] = []
        self.waiting = False
        """Set after an entry is appended to a :meth:`singles`: something may be pending."""
        self._by_histogram = [
            [tables[index] for tables in self.tables] for index in range(len(self.specs))
        ]

    def record(
        self,
        histogram: int,
        value: float,
        key: Hashable,
        attributes: Attributes,
        context: Context | None,
    ) -> None:
        """Record ``value`` into the histogram at position ``histogram`` of the specs."""
        if not self.tables or not 0.0 <= value < math.inf:
            return  # no reader; or a value the SDK ignores too (negative, not finite)
        if self.waiting:
            self.fold()
        spec = self.specs[histogram]
        index = bisect_left(spec.boundaries, value)
        if context is None:
            context = get_current()
        exemplar: Offered | None = None
        if self.trace_based:
            span_context = trace.get_current_span(context).get_span_context()
            if span_context.trace_flags.sampled:
                exemplar = (value, time_ns(), span_context.span_id, span_context.trace_id)
        elif self._filter.should_sample(value, 0, attributes, context):
            exemplar = _offered(value, context)
        for table in self._by_histogram[histogram]:
            table.add(key, attributes, value, index, exemplar)

    def record_all(
        self,
        measurements: Iterable[Measured],
        context: Context | None,
    ) -> None:
        """Record each ``(histogram, value, key, attributes)``, ``histogram`` being a position
        in the specs, all measured in ``context`` (default: the current one): :meth:`record`
        for several measurements, with the exemplar filter's span look-up done once."""
        if not self.tables:
            return  # no reader
        if self.waiting:
            self.fold()
        if context is None:
            context = get_current()
        trace_based = self.trace_based
        ids: tuple[int, int] | None = None
        if trace_based:
            # Once for all the measurements: the sampled flag of the span in the context.
            span_context = trace.get_current_span(context).get_span_context()
            if span_context.trace_flags.sampled:
                ids = (span_context.span_id, span_context.trace_id)
        for histogram, value, key, attributes in measurements:
            if not 0.0 <= value < math.inf:
                continue  # a value the SDK ignores too (negative, not finite)
            index = bisect_left(self.specs[histogram].boundaries, value)
            exemplar: Offered | None = None
            if trace_based:
                if ids is not None:
                    exemplar = (value, time_ns(), *ids)
            elif self._filter.should_sample(value, 0, attributes, context):
                exemplar = _offered(value, context)
            for table in self._by_histogram[histogram]:
                table.add(key, attributes, value, index, exemplar)

    def bind(self, histogram: int, key: Hashable, attributes: Attributes) -> Bound:
        """The attribute set ``key`` of the histogram at position ``histogram``, for
        :meth:`record_bound`: its stream in each reader's table, found once."""
        return (
            self.specs[histogram].boundaries,
            tuple(table.stream(key, attributes) for table in self._by_histogram[histogram]),
        )

    def record_bound(
        self,
        measured: Sequence[tuple[Bound, float]],
        span_context: SpanContext,
        context: Context | None,
        count: Tally | None = None,
    ) -> None:
        """Record each ``(bound, value)`` (one message's processing time and time in queue),
        measured in ``context``, whose span's is ``span_context``: what :meth:`record_all` does,
        without finding the streams; and, under the same lock, count one message in ``count``
        (a :class:`~kafkascope._core.message_counter.MessageCounter` entry sharing :attr:`lock`)."""
        if not self.tables:
            return  # no reader
        ids: tuple[int, int] | None = None
        check: ExemplarFilter | None = None
        if self.trace_based:
            if span_context.trace_flags.sampled:
                ids = (span_context.span_id, span_context.trace_id)
        else:
            check = self._filter
        where = get_current() if context is None and check is not None else context
        with self.lock:
            if self.waiting:
                self.fold_locked()
            for (boundaries, streams), value in measured:
                if not 0.0 <= value < math.inf:
                    continue  # a value the SDK ignores too (negative, not finite)
                index = bisect_left(boundaries, value)
                exemplar: Offered | None = None
                if ids is not None:
                    exemplar = (value, time_ns(), *ids)
                elif (
                    check is not None
                    and where is not None
                    and check.should_sample(value, 0, streams[0].attributes, where)
                ):
                    exemplar = _offered(value, where)
                # HistogramTable.add's count, inlined: a call per measurement would cost this
                # path about 2 % of an unsampled message (callgrind).
                for stream in streams:
                    stream.counts[index] += 1
                    stream.sum += value
                    if value < stream.min:
                        stream.min = value
                    if value > stream.max:
                        stream.max = value
                    if exemplar is not None:
                        stream.exemplars[index] = exemplar
            if count is not None:
                count.total += 1
                count.counted = True

    def singles(self, processed: Bound, waited: Bound | None, count: Tally | None) -> Singles:
        """A new :class:`~kafkascope._core.single_messages.Singles` of these streams: its
        entries are folded before any other measurement and every collection (a trace-based
        exemplar filter only: its entries carry their exemplars)."""
        singles = Singles(processed, waited, count if self.tables else None)
        with self.lock:
            self._singles.append(singles)
        return singles

    def fold(self) -> None:
        """Aggregate every :meth:`singles`' pending entries."""
        with self.lock:
            self.fold_locked()

    def fold_locked(self) -> None:
        """:meth:`fold`, under :attr:`lock` already."""
        self.waiting = False
        for singles in self._singles:
            if singles.durations or singles.offered or singles.waits:
                singles.fold()


def _offered(value: float, context: Context) -> Offered:
    span = trace.get_current_span(context)
    if span is INVALID_SPAN:
        return (value, time_ns(), None, None)
    span_context = span.get_span_context()
    return (value, time_ns(), span_context.span_id, span_context.trace_id)


def _exemplars(offered: dict[int, Offered]) -> list[Exemplar]:
    # filtered_attributes: the measurement's attributes that the point lacks; without views
    # none are filtered, which the SDK writes as an empty dict.
    return [Exemplar({}, *offered[bucket]) for bucket in sorted(offered)]


_registry: weakref.WeakKeyDictionary[metrics.MeterProvider, PreAggregation] = (
    weakref.WeakKeyDictionary()
)


def register(meter_provider: metrics.MeterProvider, pre_aggregation: PreAggregation) -> None:
    """Make ``meter_provider``'s kafkascope histograms record into ``pre_aggregation``."""
    _registry[meter_provider] = pre_aggregation


def registered(meter_provider: metrics.MeterProvider) -> PreAggregation | None:
    """The pre-aggregation of ``meter_provider``, if ``configure()`` built one for it."""
    return _registry.get(meter_provider)
