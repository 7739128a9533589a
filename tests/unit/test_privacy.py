"""Message contents never reach telemetry: bodies, non-propagation headers and (unless asked
for) keys appear in no span, metric or log that kafkascope emits or correlates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from kafka.future import Future
from kafka.producer.future import RecordMetadata
from opentelemetry import trace

from kafkascope import (
    TracedProducer,
    inject_headers,
    process_batch_span,
    process_span,
    traced_batch_handler,
    traced_handler,
)
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope.testing import Capotel, FakeRecord, make_record
from tests.unit._producers import RecordingProducer

SECRET = "s3cr3t-card-4111111111111111"
REDACTED = "[key redacted]"
log = logging.getLogger("privacy.app")


def _upstream_headers() -> list[tuple[str, bytes | None]]:
    """A producer's headers: its trace context plus application headers carrying the secret."""
    with trace.get_tracer("upstream").start_as_current_span("send orders"):
        propagation = inject_headers()
    return [
        ("x-card", SECRET.encode()),
        (f"x-{SECRET}", b"1"),
        ("x-card-text", SECRET.encode()),
        *propagation,
    ]


def _record(offset: int = 7) -> FakeRecord:
    return make_record(
        "orders",
        value=f'{{"card": "{SECRET}"}}'.encode(),
        key=SECRET.encode(),
        headers=_upstream_headers(),
        offset=offset,
    )


def _texts(capotel: Capotel) -> list[str]:
    """Every piece of text in the captured spans, metrics and logs."""
    out: list[str] = []

    def add(*values: object) -> None:
        out.extend(repr(v) for v in values)

    def add_attrs(attrs: Any) -> None:
        for key, value in dict(attrs or {}).items():
            add(key, value)

    for span in capotel.spans:
        add(span.name, span.status.description)
        add_attrs(span.attributes)
        for event in span.events:
            add(event.name)
            add_attrs(event.attributes)
        for link in span.links:
            add_attrs(link.attributes)
            add(link.context.trace_state)
        if span.context is not None:
            add(span.context.trace_state)
    for point in capotel.metrics():
        add(point.name)
        add_attrs(point.attributes)
    for record in capotel.logs:
        add(record.log_record.body)
        add_attrs(record.log_record.attributes)
    return out


def _assert_no_secret(capotel: Capotel) -> list[str]:
    texts = _texts(capotel)
    leaks = [text for text in texts if SECRET in text]
    assert leaks == []
    assert capotel.spans, "nothing was captured: the check would be vacuous"
    assert any("handled" in str(r.log_record.body) for r in capotel.logs)
    return texts


def _handle_body(record: Any) -> str:
    log.info("handled offset %s of %s", record.offset, record.topic)
    return "done"


@pytest.fixture
def keys_off() -> None:
    _settings.update(capture_key=False)


def test_traced_handler_leaks_nothing(capotel, keys_off):
    handle = traced_handler(group="billing")(_handle_body)
    assert handle(_record()) == "done"
    _assert_no_secret(capotel)


def test_failing_traced_handler_leaks_nothing(capotel, keys_off):
    @traced_handler(group="billing")
    def handle(record: Any) -> None:
        log.warning("handled offset %s, failing", record.offset)
        raise ValueError("charge declined")

    with pytest.raises(ValueError, match="charge declined"):
        handle(_record())
    texts = _assert_no_secret(capotel)
    assert any("charge declined" in t for t in texts)  # the exception itself is recorded


def test_async_traced_handler_leaks_nothing(capotel, keys_off):
    @traced_handler(group="billing")
    async def handle(record: Any) -> str:
        await asyncio.sleep(0)
        return _handle_body(record)

    assert asyncio.run(handle(_record())) == "done"
    _assert_no_secret(capotel)


def test_traced_batch_handler_leaks_nothing(capotel, keys_off):
    @traced_batch_handler(group="billing")
    def handle(records: list[Any]) -> str:
        for record in records:
            _handle_body(record)
        return "done"

    assert handle([_record(1), _record(2)]) == "done"
    _assert_no_secret(capotel)
    (span,) = capotel.spans_named("process orders")
    assert len(span.links) == 2


@pytest.mark.parametrize("batch", [False, True])
def test_process_span_leaks_nothing(capotel, keys_off, batch):
    record = _record()
    manager = process_batch_span([record]) if batch else process_span(record, group="billing")
    with manager:
        _handle_body(record)
    _assert_no_secret(capotel)


def _ack(future: Future) -> None:
    future.success(RecordMetadata("invoices", 2, None, 17, 0, None, 1, 1, 0))


def _fail(future: Future) -> None:
    future.failure(KafkaTimeoutError("no broker"))


@pytest.mark.parametrize("resolve", [_ack, _fail])
def test_traced_producer_leaks_nothing(capotel, keys_off, resolve: Callable[[Future], None]):
    inner = RecordingProducer()
    producer = TracedProducer(inner)
    with trace.get_tracer("app").start_as_current_span("request"):
        log.info("handled request, sending")
        producer.send(
            "invoices",
            f'{{"card": "{SECRET}"}}'.encode(),
            key=SECRET.encode(),
            headers=[("x-card", SECRET.encode()), (f"x-{SECRET}", b"1")],
        )
    resolve(inner.futures[0])
    _assert_no_secret(capotel)
    assert capotel.spans_named("send invoices")
    # What goes to Kafka is the application's own, plus the trace context and the pipeline
    # stamp (a time and the topic name) only.
    sent = inner.sent[0]
    added = [k for k, _ in sent["headers"][2:]]
    assert added == ["traceparent", "kafkascope-pipeline-start"]
    assert sent["headers"][-1][1].partition(b";")[2] == b"invoices"


def test_a_key_hook_records_only_the_redacted_key(capotel):
    _settings.update(capture_key=True, key_hook=lambda key: REDACTED if SECRET in key else key)
    handle = traced_handler(group="billing")(_handle_body)
    handle(_record())
    inner = RecordingProducer()
    TracedProducer(inner).send("invoices", b"{}", key=SECRET.encode())
    _ack(inner.futures[0])
    _assert_no_secret(capotel)
    for name in ("process orders", "send invoices"):
        attributes = capotel.span(name).attributes or {}
        assert attributes[sc.MESSAGING_KAFKA_MESSAGE_KEY] == REDACTED


def test_without_capture_off_the_key_is_recorded(capotel):
    """The control for the tests above: the key is found when capture is on, so the check
    that it is absent is a real one."""
    traced_handler(_handle_body)(_record())
    assert any(SECRET in text for text in _texts(capotel))
