from __future__ import annotations

import math
import threading
from bisect import bisect_left
from types import TracebackType

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.trace import SpanContext, TraceFlags

from kafkascope._core import histograms as _histograms
from kafkascope._core import metrics as _metrics
from kafkascope._core import semconv as sc
from kafkascope._core.histogram_streams import Offered, Stream
from kafkascope._core.single_messages import FOLD_AT, aggregate

BOUNDS = (0.005, 0.01, 0.1, 1.0, 10.0)
UNSAMPLED = SpanContext(0xABC, 0xDEF, False, TraceFlags(TraceFlags.DEFAULT))
SAMPLED = SpanContext(0xABC, 0xDEF, False, TraceFlags(TraceFlags.SAMPLED))


def _span(span_context: SpanContext) -> trace.Span:
    return trace.NonRecordingSpan(span_context)


values = st.floats(allow_nan=True, allow_infinity=True, min_value=None, max_value=None) | (
    st.floats(min_value=0.0, max_value=20.0)
)


def _measured_at_once(stream: Stream, measured: list[float], offered: list[Offered]) -> None:
    """What recording each value at once does to a stream (HistogramTable.add's rules)."""
    for value in measured:
        if not 0.0 <= value < math.inf:
            continue
        stream.counts[bisect_left(BOUNDS, value)] += 1
        stream.sum += value
        stream.min = min(stream.min, value)
        stream.max = max(stream.max, value)
    for exemplar in offered:
        if 0.0 <= exemplar[0] < math.inf:
            stream.exemplars[bisect_left(BOUNDS, exemplar[0])] = exemplar


def _state(stream: Stream) -> tuple[object, ...]:
    return (stream.counts, stream.sum, stream.min, stream.max, stream.exemplars)


@given(
    earlier=st.lists(st.floats(min_value=0.0, max_value=20.0), max_size=5),
    measured=st.lists(values, max_size=40),
    sampled=st.lists(values, max_size=5),
)
def test_a_fold_leaves_each_stream_as_measuring_each_value_at_once(
    earlier: list[float], measured: list[float], sampled: list[float]
) -> None:
    offered: list[Offered] = [(value, 7, 1, 2) for value in sampled]
    folded = Stream({}, len(BOUNDS) + 1, 0)
    at_once = Stream({}, len(BOUNDS) + 1, 0)
    _measured_at_once(folded, earlier, [])
    _measured_at_once(at_once, earlier, [])
    aggregate((BOUNDS, (folded,)), measured, offered)
    _measured_at_once(at_once, measured, offered)
    assert _state(folded) == _state(at_once)


class CountingLock:
    """A lock that counts how often it is taken."""

    def __init__(self) -> None:
        self.taken = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self.taken += 1
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


def _pipeline() -> tuple[MeterProvider, InMemoryMetricReader, _histograms.PreAggregation]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    pre = _histograms.PreAggregation(
        _metrics.PRE_AGGREGATED,
        [AggregationTemporality.CUMULATIVE],
        TraceBasedExemplarFilter(),
    )
    _histograms.register(provider, pre)
    return provider, reader, pre


def _observe(instruments: _metrics.MessagingMetrics, streams: _metrics.ProcessStreams) -> None:
    instruments.observe_message(streams, None, 0.002, "create_time", 0.5, _span(UNSAMPLED), None)


def _processed(pre: _histograms.PreAggregation) -> Stream:
    (table,) = [t for t in pre.tables[0] if t.spec.name == sc.METRIC_PROCESS_DURATION]
    (point,) = table.collect(0)
    stream = Stream(point.attributes, len(point.bucket_counts), 0)
    stream.counts = list(point.bucket_counts)
    stream.sum = point.sum
    return stream


def test_a_single_message_is_measured_without_taking_the_lock() -> None:
    provider, _, pre = _pipeline()
    instruments = _metrics.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", None, None)
    _observe(instruments, streams)  # the streams are bound on first use
    lock = CountingLock()
    pre.lock = lock  # type: ignore[assignment]
    for _ in range(FOLD_AT // 2):
        _observe(instruments, streams)
    assert lock.taken == 0


def test_pending_single_messages_are_in_the_next_collection() -> None:
    provider, reader, pre = _pipeline()
    instruments = _metrics.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", None, None)
    for _ in range(3):
        _observe(instruments, streams)
    assert sum(_processed(pre).counts) == 3
    data = reader.get_metrics_data()
    assert data is not None
    (consumed,) = [
        point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == sc.METRIC_CLIENT_CONSUMED_MESSAGES
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    ]
    assert consumed == 3


def test_single_messages_are_folded_every_fold_at_messages_without_a_collection() -> None:
    provider, _, _ = _pipeline()
    instruments = _metrics.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", None, None)
    for _ in range(FOLD_AT):
        _observe(instruments, streams)
    (singles,) = streams.singles.values()
    assert (singles.durations, singles.waits) == ([], [])
    assert sum(singles.processed[1][0].counts) == FOLD_AT


def test_pending_single_messages_are_summed_before_a_later_measurement_of_their_stream() -> None:
    provider, _, pre = _pipeline()
    instruments = _metrics.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", None, None)
    for duration in (0.1, 0.2):
        instruments.observe_message(streams, None, duration, None, None, _span(UNSAMPLED), None)
    instruments.observe_processed(
        streams=streams, error_type=None, duration=0.123456789, messages=1
    )
    assert _processed(pre).sum == (0.1 + 0.2) + 0.123456789  # the order measured


def test_a_sampled_single_message_keeps_its_exemplars() -> None:
    provider, _, pre = _pipeline()
    instruments = _metrics.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", None, None)
    context = trace.set_span_in_context(trace.NonRecordingSpan(SAMPLED))
    instruments.observe_message(streams, None, 0.002, "create_time", 0.5, _span(SAMPLED), context)
    points = [p for tables in pre.tables for table in tables for p in table.collect(0)]
    assert sorted((p.exemplars[0].value, p.exemplars[0].span_id) for p in points) == [
        (0.002, 0xDEF),
        (0.5, 0xDEF),
    ]
