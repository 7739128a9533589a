"""Send spans made when the send completes, on providers that decide their context at the send
(as ``configure()``'s do): the SDK's span does not exist while the send is in flight, the
``traceparent`` sent names the span exported, and what is exported is what the SDK's span made
at the send would have exported, whatever is set on the span meanwhile."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, DEFAULT_ON, Sampler
from opentelemetry.trace import Status, StatusCode

from kafkascope import TracedProducer
from kafkascope._core import presampling
from kafkascope._produce.deferred_span import DeferredSpan
from tests.unit._producers import RecordingProducer, ack


class Started(SpanProcessor):
    """Counts the spans the SDK starts and ends."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started += 1

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1


class Provider:
    """An SDK tracer provider, deferring its send spans as ``configure()``'s does or not."""

    def __init__(self, *, deferred: bool, sampler: Sampler = DEFAULT_ON) -> None:
        self.exporter = InMemorySpanExporter()
        self.started = Started()
        ids = presampling.DecidingIdGenerator(RandomIdGenerator()) if deferred else None
        self.provider = TracerProvider(sampler=sampler, id_generator=ids, shutdown_on_exit=False)
        if ids is not None:
            deciders = presampling.Deciders(None, None, ALWAYS_OFF)
            if sampler is ALWAYS_OFF:
                deciders = presampling.Deciders(ALWAYS_OFF, ALWAYS_OFF, ALWAYS_OFF)
            presampling.register_sends(self.provider, presampling.Presampler(deciders, ids))
        self.provider.add_span_processor(self.started)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app = self.provider.get_tracer("app")


class Serializing(RecordingProducer):
    """A producer whose send runs application code (a serializer) that writes to the span
    current while it runs, and may fail."""

    def __init__(self, fail: BaseException | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.current: list[trace.Span] = []
        self.sent_at: list[int] = []

    def send(self, topic, value=None, key=None, headers=None, partition=None, timestamp_ms=None):
        self.sent_at.append(time.time_ns())
        span = trace.get_current_span()
        self.current.append(span)
        span.set_attribute("app.serializer", "json")
        span.set_attribute("messaging.kafka.message.key", "rewritten")  # set again: moves last
        span.add_event("serialized", {"bytes": 12})
        if self.fail is not None:
            span.set_status(Status(StatusCode.ERROR, "serializer failed"))
            raise self.fail
        return super().send(topic, value, key, headers, partition, timestamp_ms)


def _sends(provider: Provider) -> Serializing:
    """The same sends on either provider: a root send acknowledged, one under the
    application's span with a partition chosen, one the broker fails, one the serializer
    fails, and one still in flight."""
    raw = Serializing()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    ack(producer.send("orders", b"v", key=b"k1", headers=[("x-id", b"1")]), partition=1)
    with provider.app.start_as_current_span("handle"):
        ack(producer.send("orders", b"v", key=b"k2", partition=2), partition=2, offset=5)
    producer.send("payments", None, key=b"k3").failure(KafkaTimeoutError("no ack"))
    raw.fail = ValueError("cannot serialize")
    with pytest.raises(ValueError, match="cannot serialize"):
        producer.send("orders", b"v", key=b"k4")
    raw.fail = None
    producer.send("audit", b"v")  # still in flight: exported by neither
    return raw


def _exported(provider: Provider) -> list[tuple[Any, ...]]:
    by_id = {s.context.span_id: s.name for s in provider.exporter.get_finished_spans()}
    out = []
    for s in provider.exporter.get_finished_spans():
        out.append(
            (
                s.name,
                s.kind,
                list((s.attributes or {}).items()),  # in order
                by_id.get(s.parent.span_id) if s.parent is not None else None,
                [(e.name, dict(e.attributes or {})) for e in s.events],
                (s.status.status_code, s.status.description),
                len(s.links),
            )
        )
    return out


def test_deferred_send_spans_export_what_spans_made_at_the_send_do():
    immediate, deferred = Provider(deferred=False), Provider(deferred=True)
    assert not any(isinstance(span, DeferredSpan) for span in _sends(immediate).current)
    assert all(isinstance(span, DeferredSpan) for span in _sends(deferred).current)
    assert len(immediate.exporter.get_finished_spans()) == 5  # "handle" and 4 sends
    assert _exported(deferred) == _exported(immediate)


def test_the_sdk_span_is_made_when_the_send_completes():
    provider = Provider(deferred=True)
    raw = Serializing()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    future = producer.send("orders", b"v", key=b"k")
    assert isinstance(raw.current[0], DeferredSpan)
    assert raw.current[0].is_recording()  # the application's writes are kept
    assert provider.started.started == 0
    ack(future)
    assert (provider.started.started, provider.started.ended) == (1, 1)
    (span,) = provider.exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["app.serializer"] == "json"


@pytest.mark.parametrize("parent", ["none", "sampled", "unsampled"])
def test_the_traceparent_sent_names_the_span_exported(parent: str):
    provider = Provider(deferred=True)
    raw = RecordingProducer()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    context = Context()
    if parent != "none":
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if parent == "sampled" else 0)
        remote = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags)
        context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    token = otel_context.attach(context)
    try:
        future = producer.send("orders", b"v")
    finally:
        otel_context.detach(token)
    ack(future)
    traceparent = dict(raw.sent[0]["headers"])["traceparent"].decode()
    spans = provider.exporter.get_finished_spans()
    if parent == "unsampled":
        assert spans == ()
        assert traceparent.startswith(f"00-{0xABC:032x}-")
        assert traceparent.endswith("-00")
        return
    (span,) = spans
    ids = span.context
    assert traceparent == f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"
    if parent == "sampled":
        assert span.parent is not None
        assert (span.context.trace_id, span.parent.span_id) == (0xABC, 0xDEF)


def test_the_span_starts_at_the_send_and_ends_at_its_completion():
    provider = Provider(deferred=True)
    raw = Serializing()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    before = time.time_ns()
    future = producer.send("orders", b"v")
    time.sleep(0.01)
    acked = time.time_ns()
    ack(future)
    (span,) = provider.exporter.get_finished_spans()
    assert span.start_time is not None
    assert span.end_time is not None
    assert before <= span.start_time <= raw.sent_at[0] < acked <= span.end_time


def test_sends_the_sampler_drops_make_no_span():
    provider = Provider(deferred=True, sampler=ALWAYS_OFF)
    raw = Serializing()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    ack(producer.send("orders", b"v"))
    assert not raw.current[0].is_recording()
    assert provider.started.started == 0
    assert provider.exporter.get_finished_spans() == ()


def test_what_is_set_after_the_span_is_made_goes_to_the_sdks_span():
    provider = Provider(deferred=True)
    raw = Serializing()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    ack(producer.send("orders", b"v"))
    deferred = raw.current[0]
    assert isinstance(deferred, DeferredSpan)
    made = deferred.made()
    assert deferred.get_span_context() == made.get_span_context()
    assert not deferred.is_recording()  # ended, as the SDK's span is
    assert provider.started.started == 1  # made once


def test_a_send_in_flight_keeps_its_parent_span_context_not_the_parent_span():
    provider = Provider(deferred=True)
    raw = RecordingProducer()
    producer = TracedProducer(raw, tracer_provider=provider.provider)
    with provider.app.start_as_current_span("handle") as handle:
        future = producer.send("orders", b"v")
    parent = handle.get_span_context()
    gone = weakref.ref(handle)
    del handle
    gc.collect()
    assert gone() is None  # the handler's span is freed while its send is in flight
    ack(future)
    send = next(s for s in provider.exporter.get_finished_spans() if s.name == "send orders")
    assert send.parent == parent
    assert send.context.trace_id == parent.trace_id
