from __future__ import annotations

import contextlib
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kafkascope import TracedProducer, process_span, traced_batch_handler, traced_handler
from kafkascope._core import semconv as sc
from kafkascope.testing import make_record
from tests.unit._producers import RecordingProducer, ack

PROCESS = {sc.MESSAGING_OPERATION_NAME: "process", sc.MESSAGING_DESTINATION_NAME: "orders"}


def test_process_duration_and_consumed_count_per_message(capotel):
    @traced_handler(group="billing")
    def handle(rec):
        time.sleep(0.02)

    for offset in range(4):
        handle(make_record("orders", offset=offset))
    duration = capotel.metric(sc.METRIC_PROCESS_DURATION, PROCESS)
    assert duration.count == 4
    assert duration.unit == "s"
    assert 0.08 <= duration.sum < 2.0
    assert duration.bounds == sc.DURATION_BUCKETS
    consumed = capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES, PROCESS)
    assert consumed.value == 4
    assert consumed.attributes[sc.MESSAGING_CONSUMER_GROUP_NAME] == "billing"
    assert consumed.attributes[sc.MESSAGING_SYSTEM] == "kafka"


def test_failures_carry_error_type_on_the_metrics(capotel):
    @traced_handler
    def handle(rec):
        if rec.offset % 2:
            raise ValueError("odd")

    for offset in range(4):
        with contextlib.suppress(ValueError):
            handle(make_record("orders", offset=offset))
    failed = capotel.metric(sc.METRIC_PROCESS_DURATION, {sc.ERROR_TYPE: "ValueError"})
    assert failed.count == 2
    all_streams = capotel.metric(sc.METRIC_PROCESS_DURATION, PROCESS)
    assert all_streams.count == 4


def test_metric_attributes_have_no_high_cardinality_fields(capotel):
    @traced_handler
    def handle(rec):
        return None

    handle(make_record("orders", key=b"customer-1", partition=3, offset=99))
    points = capotel.metrics()
    assert {p.name for p in points} == {
        sc.METRIC_PROCESS_DURATION,
        sc.METRIC_CLIENT_CONSUMED_MESSAGES,
    }
    for point in points:
        assert sc.MESSAGING_KAFKA_MESSAGE_KEY not in point.attributes
        assert sc.MESSAGING_KAFKA_OFFSET not in point.attributes
        assert sc.MESSAGING_DESTINATION_PARTITION_ID not in point.attributes


def test_no_messaging_metric_carries_the_partition(capotel):
    """Decided (docs, lag-and-latency guide): no ``messaging.destination.partition.id`` on the four
    messaging metrics, although Recommended: a series per partition multiplies the series of
    every service and group by the topic's partitions, and the lag gauge is per partition."""

    @traced_handler(group="billing")
    def handle(rec):
        return None

    @traced_handler(group="billing")
    def fail(rec):
        raise ValueError("no")

    for partition in range(3):
        handle(make_record("orders", partition=partition))
        with contextlib.suppress(ValueError):
            fail(make_record("orders", partition=partition))
    producer = TracedProducer(RecordingProducer())
    for partition in range(3):
        ack(producer.send("orders", b"{}", partition=partition), partition=partition)
    points = [
        p
        for p in capotel.metrics()
        if p.name
        in {
            sc.METRIC_PROCESS_DURATION,
            sc.METRIC_CLIENT_CONSUMED_MESSAGES,
            sc.METRIC_CLIENT_OPERATION_DURATION,
            sc.METRIC_CLIENT_SENT_MESSAGES,
        }
    ]
    assert {p.name for p in points} == {
        sc.METRIC_PROCESS_DURATION,
        sc.METRIC_CLIENT_CONSUMED_MESSAGES,
        sc.METRIC_CLIENT_OPERATION_DURATION,
        sc.METRIC_CLIENT_SENT_MESSAGES,
    }
    for point in points:
        assert sc.MESSAGING_DESTINATION_PARTITION_ID not in point.attributes, point
    # one series per outcome, whatever the partition
    assert len([p for p in points if p.name == sc.METRIC_PROCESS_DURATION]) == 2
    assert len([p for p in points if p.name == sc.METRIC_CLIENT_SENT_MESSAGES]) == 1


def test_consumed_messages_count_failed_handlers_without_error_type(capotel):
    """Decided (docs, lag guide): a handler that raises did not make the delivery fail, so
    ``messaging.client.consumed.messages`` carries no ``error.type``; the failure is on
    ``messaging.process.duration`` (and the span)."""

    @traced_handler(group="billing")
    def handle(rec):
        if rec.offset % 2:
            raise ValueError("odd")

    for offset in range(4):
        with contextlib.suppress(ValueError):
            handle(make_record("orders", offset=offset))
    consumed = [p for p in capotel.metrics() if p.name == sc.METRIC_CLIENT_CONSUMED_MESSAGES]
    assert [(p.value, sc.ERROR_TYPE in p.attributes) for p in consumed] == [(4, False)]
    failed = capotel.metric(sc.METRIC_PROCESS_DURATION, {sc.ERROR_TYPE: "ValueError"})
    assert failed.count == 2


def test_batch_counts_every_message_and_times_the_batch_once(capotel):
    @traced_batch_handler
    def handle(batch):
        return None

    handle([make_record("orders", offset=i) for i in range(5)])
    assert capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES, PROCESS).value == 5
    assert capotel.metric(sc.METRIC_PROCESS_DURATION, PROCESS).count == 1


def test_time_in_queue_from_create_time(capotel, span_timings):
    now_ms = int(time.time() * 1000)
    with process_span(make_record("orders", timestamp=now_ms - 1500)) as span:
        pass
    attrs = capotel.span("process orders").attributes
    assert 1.5 <= attrs[sc.TIME_IN_QUEUE] < 5.0
    assert attrs[sc.TIMESTAMP_TYPE] == "create_time"
    waited = capotel.metric(sc.TIME_IN_QUEUE, {sc.TIMESTAMP_TYPE: "create_time"})
    assert waited.count == 1
    assert 1.5 <= waited.sum < 5.0
    assert span is not None


def test_time_in_queue_from_log_append_time(capotel, span_timings):
    now_ms = int(time.time() * 1000)
    with process_span(make_record("orders", timestamp=now_ms - 200, log_append_time=True)):
        pass
    assert capotel.span("process orders").attributes[sc.TIMESTAMP_TYPE] == "log_append_time"
    assert capotel.metric(sc.TIME_IN_QUEUE, {sc.TIMESTAMP_TYPE: "log_append_time"}).count == 1


def test_time_in_queue_is_clamped_at_zero_for_clock_skew(capotel, span_timings):
    future_ms = int(time.time() * 1000) + 60_000
    with process_span(make_record("orders", timestamp=future_ms)):
        pass
    assert capotel.span("process orders").attributes[sc.TIME_IN_QUEUE] == 0.0


def test_time_in_queue_is_on_the_histogram_only_by_default(capotel):
    now_ms = int(time.time() * 1000)
    with process_span(make_record("orders", timestamp=now_ms - 1500)):
        pass
    attrs = capotel.span("process orders").attributes
    assert sc.TIME_IN_QUEUE not in attrs
    assert sc.TIMESTAMP_TYPE not in attrs
    assert capotel.metric(sc.TIME_IN_QUEUE, {sc.TIMESTAMP_TYPE: "create_time"}).count == 1


@pytest.mark.parametrize("timestamp", [None, -1])
def test_time_in_queue_is_skipped_without_a_timestamp(capotel, timestamp):
    with process_span(make_record("orders", timestamp=timestamp)):
        pass
    assert sc.TIME_IN_QUEUE not in capotel.span("process orders").attributes
    names = {p.name for p in capotel.metrics()}
    assert sc.METRIC_PROCESS_DURATION in names  # the message's other metrics were read
    assert sc.TIME_IN_QUEUE not in names


def test_batch_handler_without_metrics_leaves_counting_to_the_per_message_spans(capotel):
    @traced_batch_handler(metrics=False)
    def handle(batch):
        for record in batch:
            with process_span(record):
                pass

    handle([make_record("orders", offset=i) for i in range(3)])
    assert capotel.metric(sc.METRIC_CLIENT_CONSUMED_MESSAGES, PROCESS).value == 3
    assert capotel.metric(sc.METRIC_PROCESS_DURATION, PROCESS).count == 3
    assert len(capotel.spans_named("process orders")) == 4


def test_metrics_option_must_be_a_bool():
    with pytest.raises(TypeError, match="metrics"):
        traced_batch_handler(metrics="no")  # type: ignore[call-overload]


def _exemplars(data, name):
    return [
        exemplar
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        for exemplar in point.exemplars
    ]


@pytest.mark.parametrize("batch", [False, True])
def test_histogram_exemplars_lead_to_the_process_span(batch):
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])  # the SDK's trace-based filter
    record = make_record("orders", timestamp=int(time.time() * 1000) - 50)
    if batch:
        traced_batch_handler(tracer_provider=tracer_provider, meter_provider=meter_provider)(
            lambda records: None
        )([record])
    else:
        traced_handler(tracer_provider=tracer_provider, meter_provider=meter_provider)(
            lambda rec: None
        )(record)
    (process,) = spans.get_finished_spans()
    data = reader.get_metrics_data()  # once: a collection hands out the exemplars and resets
    for name in (sc.METRIC_PROCESS_DURATION, sc.TIME_IN_QUEUE):
        (exemplar,) = _exemplars(data, name)
        assert (exemplar.trace_id, exemplar.span_id) == (
            process.context.trace_id,
            process.context.span_id,
        ), name
    meter_provider.shutdown()
    tracer_provider.shutdown()


def test_a_stream_bound_before_its_first_message_reports_nothing_until_counted():
    from kafkascope._core import metrics as _metrics

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    instruments = _metrics.for_provider(provider)
    streams = instruments.process_streams("orders", "billing", None, None)

    def consumed() -> list[float]:
        data = reader.get_metrics_data()
        return [
            point.value
            for resource in (data.resource_metrics if data else ())
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == sc.METRIC_CLIENT_CONSUMED_MESSAGES
            for point in metric.data.data_points
            if isinstance(point, NumberDataPoint)
        ]

    assert consumed() == []
    unsampled = trace.INVALID_SPAN
    instruments.observe_message(streams, None, 0.01, None, None, unsampled, None)
    instruments.observe_message(streams, "ValueError", 0.01, None, None, unsampled, None)
    assert consumed() == [2]
