"""Golden telemetry: a fixed set of inputs through kafkascope's public API, exported and normalised.

:func:`capture` runs every entry point on deterministic records (valid, unsampled and malformed
``traceparent``, ``tracestate``, baggage, extra headers, several topics, partitions and keys,
timestamps whose time in queue is exactly 0 or beyond the last bucket) and returns what was
exported, with whatever varies from run to run normalised away:

- trace and span ids become ordinal labels (``t0``, ``s3``) in order of first appearance, so
  parents, links, exemplars, injected headers and log fields keep their relationships;
- timestamps are dropped, and so are the sums and buckets of the duration histograms;
- a positive time in queue (an ancient record) becomes ``"<positive>"``; exception stacktraces
  are dropped;
- the pipeline latency (span attribute) becomes ``"<seconds>"``, and the pipeline stamp header's
  time ``"<ms>;topic"`` (its origin topic is kept).

``test_golden_telemetry`` compares it with ``data/golden_telemetry.json``. To re-record on
purpose (after a deliberate change of what kafkascope exports; this records
``data/golden_telemetry_unsampled.json`` too, the same inputs under a sampler that records
nothing)::

    .venv/bin/python -m tests.unit._golden_telemetry --record
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from aiokafka.structs import RecordMetadata as AIORecordMetadata
from aiokafka.structs import TopicPartition
from confluent_kafka import KafkaError
from kafka.errors import KafkaTimeoutError
from kafka.future import Future
from kafka.producer.future import RecordMetadata
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, DEFAULT_ON
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import kafkascope
from kafkascope._core import presampling as _presampling
from kafkascope.testing import FakeRecord, make_record

FIXTURE = Path(__file__).parent / "data" / "golden_telemetry.json"
FIXTURE_UNSAMPLED = Path(__file__).parent / "data" / "golden_telemetry_unsampled.json"
"""The same inputs with a sampler that records nothing: what an unsampled message still exports
(metric points, the ids handlers and logs see, injected headers)."""

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACEPARENT_2 = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACEPARENT_UNSAMPLED = b"00-5bf92f3577b34da6a3ce929d0e0e4736-10f067aa0ba902b7-00"
TRACEPARENT_MALFORMED = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01"
TRACEPARENT_FUTURE_VERSION = b"cc-6bf92f3577b34da6a3ce929d0e0e4736-20f067aa0ba902b7-01-extra"
TRACESTATE = b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
BAGGAGE = b"tenant=acme,request.id=r%2042;prop=1, empty="
FUTURE_MS = 4_102_444_800_000  # 2100-01-01: the time in queue is clamped to exactly 0
ANCIENT_MS = 978_307_200_000  # 2001-01-01: beyond the last time-in-queue bucket
DETERMINISTIC_HISTOGRAMS = frozenset({"kafkascope.message.time_in_queue"})
VARYING_ATTRIBUTES = frozenset({"kafkascope.message.time_in_queue"})
WALL_CLOCK_ATTRIBUTES = frozenset({"kafkascope.pipeline.latency"})

Json = dict[str, Any]


# ---------------------------------------------------------------- inputs
def _headers(traceparent: bytes | None, *extra: tuple[str, bytes]) -> list[tuple[str, bytes]]:
    headers = [("content-type", b"application/json"), ("x-source", b"checkout")]
    if traceparent is not None:
        headers.append(("traceparent", traceparent))
    headers.extend(extra)
    headers.append(("x-attempt", b"1"))
    return headers


def consumed_records() -> list[FakeRecord]:
    """Records as other services sent them: each propagation case on its own record."""
    cases: list[tuple[bytes | None, tuple[tuple[str, bytes], ...], int | None, bool]] = [
        (TRACEPARENT, (), FUTURE_MS, False),
        (TRACEPARENT, (("tracestate", TRACESTATE),), FUTURE_MS, False),
        (TRACEPARENT_2, (("baggage", BAGGAGE),), FUTURE_MS, False),
        (TRACEPARENT_UNSAMPLED, (), FUTURE_MS, False),
        (TRACEPARENT_MALFORMED, (("baggage", BAGGAGE),), None, False),
        (TRACEPARENT_FUTURE_VERSION, (), ANCIENT_MS, True),
        (None, (), ANCIENT_MS, True),
        (None, (("baggage", BAGGAGE),), FUTURE_MS, False),
    ]
    out = []
    for i, (traceparent, extra, timestamp, log_append) in enumerate(cases):
        out.append(
            make_record(
                "orders" if i % 3 else "payments",
                b'{"id": %d}' % i,
                key=f"customer-{i}".encode(),
                headers=_headers(traceparent, *extra),
                partition=i % 4,
                offset=1000 + i,
                timestamp=timestamp,
                log_append_time=log_append,
            )
        )
    out.append(make_record("orders", None, key=None, partition=2, offset=7, timestamp=FUTURE_MS))
    return out


class RecordingProducer:
    """kafka-python's ``KafkaProducer.send`` without a broker: real futures, resolved later."""

    def __init__(self) -> None:
        self.config = {"bootstrap_servers": ["kafka-1.internal:9093", "kafka-2.internal:9093"]}
        self.sent: list[dict[str, Any]] = []
        self.futures: list[Future] = []

    def send(self, topic: str, value: Any = None, key: Any = None, **kwargs: Any) -> Future:
        self.sent.append({"topic": topic, "key": key, **kwargs})
        future = Future()
        self.futures.append(future)
        return future


class RecordingConfluentProducer:
    """confluent-kafka's ``Producer.produce`` without a broker; deliveries on demand."""

    def __init__(self) -> None:
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, **kwargs})


class DeliveredMessage:
    """What a delivery report reads from confluent-kafka's ``Message``."""

    def __init__(self, partition: int, offset: int | None) -> None:
        self._partition = partition
        self._offset = offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int | None:
        return self._offset


class RecordingAIOKafkaProducer:
    """aiokafka's ``AIOKafkaProducer.send`` without a broker: futures resolved by the caller."""

    def __init__(self) -> None:
        self.client = type("Client", (), {"_bootstrap_servers": ["kafka-a.internal:9095"]})
        self.sent: list[dict[str, Any]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
        self.sent.append({"topic": topic, **kwargs})
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# ---------------------------------------------------------------- the run
@contextmanager
def _default_propagator() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


class _Run:
    """Everything one capture needs: providers, a log capture, what handlers observed."""

    def __init__(self, *, sampled: bool = True, presampled: bool = False) -> None:
        self.spans = InMemorySpanExporter()
        # Sampled: the SDK's default sampler (parent-based, always on).
        sampler = DEFAULT_ON if sampled else ALWAYS_OFF
        if presampled:
            # As configure() builds it: the sampler asked before the SDK's start_span, and each
            # send span's context decided at the send, the SDK's span made when it completes.
            deciders = (
                _presampling.Deciders(None, None, ALWAYS_OFF)
                if sampled
                else _presampling.Deciders(ALWAYS_OFF, ALWAYS_OFF, ALWAYS_OFF)
            )
            ids = _presampling.DecidingIdGenerator(RandomIdGenerator())
            self.tracer_provider = TracerProvider(sampler=sampler, id_generator=ids)
            presampler = _presampling.Presampler(deciders, ids)
            _presampling.register(self.tracer_provider, presampler)
            _presampling.register_sends(self.tracer_provider, presampler)
        else:
            self.tracer_provider = TracerProvider(sampler=sampler)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.app = self.tracer_provider.get_tracer("golden.app")
        self.logs = _LogCapture()
        self.logs.addFilter(kafkascope.MessageLogFilter())
        self.logger = logging.getLogger("kafkascope.golden")
        self.observed: list[Json] = []
        self.injected: list[Sequence[tuple[str, Any]]] = []

    @property
    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def observe(self, what: str, record: Any) -> None:
        """What a handler sees: its span, the baggage, and a log line with the message fields."""
        span = trace.get_current_span().get_span_context()
        self.observed.append(
            {
                "in": what,
                "offset": getattr(record, "offset", None),
                "span": span,
                "recording": trace.get_current_span().is_recording(),
                "baggage": dict(baggage.get_all()),
            }
        )
        self.logger.info("handled %s", what)


def _consume(run: _Run, records: list[FakeRecord]) -> None:
    @kafkascope.traced_handler(
        group="billing", server="kafka-1.internal:9093", capture_key=True, **run.providers
    )
    def handle(record: FakeRecord) -> None:
        run.observe("traced_handler", record)

    for record in records:
        handle(record)

    @kafkascope.traced_handler(group="billing", capture_key=False, **run.providers)
    def failing(record: FakeRecord) -> None:
        run.observe("failing", record)
        if record.partition % 2:
            raise json.JSONDecodeError("Expecting value", "{", 1)
        raise ValueError(f"bad amount at offset {record.offset}")

    for record in records[:3]:
        with suppress(ValueError, json.JSONDecodeError):
            failing(record)

    @kafkascope.traced_handler(group="async-billing", parent="links", **run.providers)
    async def handle_async(record: FakeRecord) -> None:
        await asyncio.sleep(0)
        run.observe("async", record)

    async def consume_async() -> None:
        for record in records[:4]:
            await handle_async(record)

    asyncio.run(consume_async())

    ambient = kafkascope.traced_handler(group="billing", parent="ambient", **run.providers)(
        lambda record: run.observe("ambient", record)
    )
    with run.app.start_as_current_span("poll loop"):
        for record in records[:3]:
            ambient(record)

    @kafkascope.traced_batch_handler(group="batcher", server="kafka-1.internal", **run.providers)
    def handle_batch(batch: Any) -> None:
        run.observe("batch", None)

    handle_batch(records[:5])
    handle_batch(
        {TopicPartition("orders", 1): records[4:6], TopicPartition("orders", 2): [records[7]]}
    )

    for record in records[5:7]:
        with kafkascope.process_span(record, group="ctx", **run.providers) as span:
            span.set_attribute("app.step", "validate")
            run.observe("process_span", record)
    try:
        with kafkascope.process_span(records[2], group="ctx", **run.providers):
            run.observe("process_span raising", records[2])
            raise KeyError("sku")
    except KeyError:
        pass
    async_ctx = records[1]

    async def process_async() -> None:
        async with kafkascope.process_span(async_ctx, group="ctx", **run.providers):
            run.observe("async process_span", async_ctx)

    asyncio.run(process_async())


def _produce(run: _Run, consumed: list[FakeRecord]) -> None:
    inner = RecordingProducer()
    producer = kafkascope.TracedProducer(inner, capture_key=True, **run.providers)
    with run.app.start_as_current_span("checkout"):
        producer.send("orders", b"{}", key=b"order-1", headers=[("x-source", b"checkout")])
        producer.send("orders", b"{}", key="order-2", partition=3)
    producer.send("payments", b"{}", key=b"\xff\xfe", headers={"x-attempt": b"2"})
    producer.send("payments", b"{}", headers=[("traceparent", TRACEPARENT)])
    inner.futures[0].success(RecordMetadata("orders", 1, None, 41, 0, None, 1, 1, 0))
    inner.futures[1].success(RecordMetadata("orders", 3, None, 42, 0, None, 1, 1, 0))
    inner.futures[2].failure(KafkaTimeoutError("no ack in 30 s"))
    inner.futures[3].success(RecordMetadata("payments", 0, None, 5, 0, None, 1, 1, 0))
    run.injected.extend(sent["headers"] or [] for sent in inner.sent)

    # The first sent record, consumed downstream: its process span continues the send span.
    downstream = kafkascope.traced_handler(group="shipping", **run.providers)(
        lambda record: run.observe("downstream", record)
    )
    downstream(make_record("orders", b"{}", key=b"order-1", headers=inner.sent[0]["headers"]))

    dlq = RecordingProducer()
    for record in consumed[:2]:
        with kafkascope.process_span(record, group="billing", **run.providers):
            try:
                raise ValueError("cannot ship")
            except ValueError as exc:
                kafkascope.dead_letter(dlq, record, exc, **run.providers)
    kafkascope.dead_letter(dlq, consumed[2], KeyError("x"), topic="all.dlq", **run.providers)
    for i, future in enumerate(dlq.futures):
        future.success(RecordMetadata("orders.dlq", 0, None, 100 + i, 0, None, 1, 1, 0))
    run.injected.extend(sent["headers"] or [] for sent in dlq.sent)

    confluent_inner = RecordingConfluentProducer()
    delivered: list[Any] = []
    confluent = kafkascope.TracedConfluentProducer(
        confluent_inner, server="broker.internal:9092", **run.providers
    )
    confluent.produce("orders", b"{}", key=b"c-1", on_delivery=lambda e, m: delivered.append(e))
    confluent.produce("orders", b"{}", key=b"c-2", headers=[("x-source", b"pos")], partition=2)
    confluent.produce("audit", b"{}")
    confluent_inner.produced[0]["on_delivery"](None, DeliveredMessage(0, 10))
    confluent_inner.produced[1]["on_delivery"](None, DeliveredMessage(2, 11))
    confluent_inner.produced[2]["on_delivery"](
        KafkaError(KafkaError._MSG_TIMED_OUT), DeliveredMessage(1, None)
    )
    run.injected.extend(sent["headers"] or [] for sent in confluent_inner.produced)

    aio_inner = RecordingAIOKafkaProducer()

    async def produce_async() -> None:
        aio = kafkascope.TracedAIOKafkaProducer(aio_inner, **run.providers)
        ok = await aio.send("orders", b"{}", key=b"a-1", headers=[("x-source", b"app")])
        failed = await aio.send("orders", b"{}", key=b"a-2", partition=1)
        ok.set_result(AIORecordMetadata("orders", 0, TopicPartition("orders", 0), 7, 0, 0, 0))
        failed.set_exception(TimeoutError("request timed out"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        with suppress(TimeoutError):
            await failed

    asyncio.run(produce_async())
    run.injected.extend(sent["headers"] or [] for sent in aio_inner.sent)


def _capture_run(*, sampled: bool, presampled: bool) -> _Run:
    run = _Run(sampled=sampled, presampled=presampled)
    run.logger.addHandler(run.logs)
    run.logger.setLevel(logging.INFO)
    run.logger.propagate = False
    try:
        with _default_propagator():
            consumed = consumed_records()
            _consume(run, consumed)
            _produce(run, consumed)
    finally:
        run.logger.removeHandler(run.logs)
    return run


# ---------------------------------------------------------------- normalisation
class _Labels:
    """Stable names for random ids, by order of first appearance."""

    def __init__(self) -> None:
        self._traces: dict[int, str] = {}
        self._spans: dict[int, str] = {}

    def trace(self, trace_id: int) -> str:
        return self._traces.setdefault(trace_id, f"t{len(self._traces)}")

    def span(self, span_id: int) -> str:
        return self._spans.setdefault(span_id, f"s{len(self._spans)}")

    def context(self, ctx: SpanContext | None) -> Json | None:
        if ctx is None:
            return None
        if not ctx.is_valid:
            return {"valid": False}
        return {
            "trace": self.trace(ctx.trace_id),
            "span": self.span(ctx.span_id),
            "remote": ctx.is_remote,
            "flags": int(ctx.trace_flags),
            "trace_state": ctx.trace_state.to_header(),
        }

    def traceparent(self, value: str) -> str:
        parts = value.split("-")
        if len(parts) != 4:
            return value
        return (
            f"{parts[0]}-{self.trace(int(parts[1], 16))}-{self.span(int(parts[2], 16))}-{parts[3]}"
        )


def _value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    return value


def _attributes(attributes: Mapping[str, Any] | None) -> Json:
    out: Json = {}
    for key, value in sorted((attributes or {}).items()):
        if key in VARYING_ATTRIBUTES and value:
            out[key] = "<positive>"
        elif key in WALL_CLOCK_ATTRIBUTES:
            out[key] = "<seconds>"
        elif key != "exception.stacktrace":
            out[key] = _value(value)
    return out


def _span(span: ReadableSpan, labels: _Labels) -> Json:
    scope = span.instrumentation_scope
    return {
        "name": span.name,
        "kind": span.kind.name,
        "scope": {"name": scope.name, "schema_url": scope.schema_url} if scope else None,
        "context": labels.context(span.get_span_context()),
        "parent": labels.context(span.parent),
        "links": [
            {"context": labels.context(link.context), "attributes": _attributes(link.attributes)}
            for link in span.links
        ],
        "attributes": _attributes(span.attributes),
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "events": [
            {"name": event.name, "attributes": _attributes(event.attributes)}
            for event in span.events
        ],
    }


def _exemplars(point: Any, labels: _Labels) -> list[Json]:
    out = []
    for exemplar in point.exemplars:
        out.append(
            {
                "trace": labels.trace(exemplar.trace_id) if exemplar.trace_id else None,
                "span": labels.span(exemplar.span_id) if exemplar.span_id else None,
                "filtered_attributes": _attributes(exemplar.filtered_attributes),
            }
        )
    return sorted(out, key=lambda e: json.dumps(e, sort_keys=True))


def _point(metric: Metric, point: Any, labels: _Labels) -> Json:
    out: Json = {"attributes": _attributes(point.attributes)}
    if isinstance(point, HistogramDataPoint):
        out["count"] = point.count
        out["bounds"] = list(point.explicit_bounds)
        if metric.name in DETERMINISTIC_HISTOGRAMS:
            out["bucket_counts"] = list(point.bucket_counts)
            out["sum"] = point.sum if point.sum == 0 else "<positive>"
            out["exemplars"] = _exemplars(point, labels)
        else:
            # Which bucket a duration falls in varies, and so does which measurement a bucket
            # keeps as its exemplar: only whether there is one is deterministic.
            out["has_exemplars"] = bool(point.exemplars)
    elif isinstance(point, NumberDataPoint):
        out["value"] = point.value
        out["exemplars"] = _exemplars(point, labels)
    return out


def _metric(metric: Metric, labels: _Labels) -> Json:
    data = metric.data
    out: Json = {
        "name": metric.name,
        "unit": metric.unit,
        "description": metric.description,
        "type": type(data).__name__,
    }
    if isinstance(data, Sum | Histogram):
        out["temporality"] = data.aggregation_temporality.name
    if isinstance(data, Sum):
        out["monotonic"] = data.is_monotonic
    points = [_point(metric, p, labels) for p in data.data_points]
    out["points"] = sorted(points, key=lambda p: json.dumps(p["attributes"], sort_keys=True))
    return out


def _observed(item: Json, labels: _Labels) -> Json:
    ctx: SpanContext = item["span"]
    return {**item, "span": labels.span(ctx.span_id) if ctx.is_valid else None}


def _log(record: logging.LogRecord, labels: _Labels) -> Json:
    fields = {}
    for name in (
        "messaging.destination.name",
        "messaging.destination.partition.id",
        "messaging.kafka.offset",
        "messaging.consumer.group.name",
    ):
        if name in record.__dict__:
            fields[name] = record.__dict__[name]
    trace_id = record.__dict__.get("trace_id")
    span_id = record.__dict__.get("span_id")
    return {
        "message": record.getMessage(),
        "trace": labels.trace(int(trace_id, 16)) if trace_id else None,
        "span": labels.span(int(span_id, 16)) if span_id else None,
        "fields": fields,
    }


def _injected(headers: Sequence[tuple[str, Any]], labels: _Labels) -> list[list[Any]]:
    out = []
    for key, value in headers:
        text = value.decode() if isinstance(value, bytes) else value
        if key == "traceparent" and isinstance(text, str):
            text = labels.traceparent(text)
        elif key == "kafkascope-pipeline-start" and isinstance(text, str):
            text = "<ms>;" + text.partition(";")[2]
        out.append([key, text])
    return out


def capture(*, sampled: bool = True, presampled: bool = False) -> Json:
    """Run the golden inputs through kafkascope and return the normalised telemetry (with
    ``sampled=False``, under a sampler that records no span; with ``presampled``, the sampler
    is asked before the SDK's ``start_span``, as on the providers ``configure()`` builds)."""
    run = _capture_run(sampled=sampled, presampled=presampled)
    labels = _Labels()
    spans = [_span(s, labels) for s in run.spans.get_finished_spans()]
    data = run.reader.get_metrics_data()
    metrics = [
        _metric(metric, labels)
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    ]
    return {
        "spans": spans,
        "metrics": sorted(metrics, key=lambda m: str(m["name"])),
        "observed_in_handlers": [_observed(item, labels) for item in run.observed],
        "logs": [_log(record, labels) for record in run.logs.records],
        "injected_headers": [_injected(headers, labels) for headers in run.injected],
    }


def dumps(telemetry: Json) -> str:
    """The fixture's text: stable key order, one value per line, so diffs read well."""
    return json.dumps(telemetry, indent=1, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``--record`` writes the fixture from the code as it is now; without it, print."""
    parser = argparse.ArgumentParser(description="Record or print the golden telemetry.")
    parser.add_argument("--record", action="store_true", help=f"overwrite {FIXTURE.name}")
    args = parser.parse_args(argv)
    settings = sorted(name for name in os.environ if name.startswith("OTEL_PYTHON_KAFKASCOPE_"))
    if settings:
        print(f"unset {', '.join(settings)} first: the fixture is of the defaults", file=sys.stderr)
        return 2
    for fixture, sampled in ((FIXTURE, True), (FIXTURE_UNSAMPLED, False)):
        text = dumps(capture(sampled=sampled))
        if args.record:
            fixture.write_text(text)
            print(f"wrote {fixture}")
        elif sampled:
            sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
