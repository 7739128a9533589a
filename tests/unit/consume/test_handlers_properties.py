"""Property tests: handlers and process spans take any record without breaking.

The suite runs in strict mode (``tests/conftest.py``): an internal error that production would
log and swallow raises here instead, so "no internal error" is checked by every example that
goes through a handler.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry import trace

from kafkascope import extract_context, process_span, traced_batch_handler, traced_handler
from kafkascope._adapters.records import view
from tests.unit._strategies import FOUND_RECORDS, WITH_CAPOTEL, records

pytestmark = pytest.mark.usefixtures("quiet_sdk_parsers")


class HandlerError(Exception):
    pass


def _expected_spans(record: object, policy: str = "producer") -> int:
    """One span, unless the producer's unsampled context is the parent (then none records)."""
    got = view(record)
    assert got is not None
    producer = trace.get_current_span(extract_context(got.headers)).get_span_context()
    unsampled = producer.is_valid and not producer.trace_flags.sampled
    return 0 if unsampled and policy == "producer" else 1


def _handlers(sentinel: object, fail: HandlerError | None, calls: list[object]) -> Any:
    def body(record: object) -> object:
        calls.append(record)
        if fail is not None:
            raise fail
        return sentinel

    return body


@WITH_CAPOTEL
@given(records, st.booleans(), st.sampled_from(["producer", "links", "ambient"]))
@example(spec=FOUND_RECORDS[0], fails=False, policy="producer")
@example(spec=FOUND_RECORDS[1], fails=False, policy="producer")
def test_traced_handler_calls_once_and_returns_or_reraises(capotel, spec, fails, policy):
    capotel.clear()
    record = spec.build()
    sentinel = object()
    error = HandlerError("boom") if fails else None
    calls: list[object] = []
    handle = traced_handler(parent=policy, group="g")(_handlers(sentinel, error, calls))
    if error is not None:
        with pytest.raises(HandlerError) as raised:
            handle(record)
        assert raised.value is error
    else:
        assert handle(record) is sentinel
    assert len(calls) == 1
    assert calls[0] is record
    assert len(capotel.spans) == _expected_spans(record, policy)


@WITH_CAPOTEL
@given(records, st.booleans())
def test_async_traced_handler_calls_once_and_returns_or_reraises(capotel, spec, fails):
    capotel.clear()
    record = spec.build()
    sentinel = object()
    error = HandlerError("boom") if fails else None
    calls: list[object] = []

    @traced_handler
    async def handle(rec: object) -> object:
        await asyncio.sleep(0)
        calls.append(rec)
        if error is not None:
            raise error
        return sentinel

    if error is not None:
        with pytest.raises(HandlerError) as raised:
            asyncio.run(handle(record))
        assert raised.value is error
    else:
        assert asyncio.run(handle(record)) is sentinel
    assert len(calls) == 1
    assert calls[0] is record
    assert len(capotel.spans) == _expected_spans(record)


@settings(WITH_CAPOTEL, max_examples=60)
@given(st.lists(records, max_size=4), st.booleans())
@example(specs=[FOUND_RECORDS[2], FOUND_RECORDS[2]], fails=False)
def test_batch_handler_calls_once_with_any_records(capotel, specs, fails):
    capotel.clear()
    batch = [spec.build() for spec in specs]
    sentinel = object()
    error = HandlerError("boom") if fails else None
    calls: list[object] = []
    handle = traced_batch_handler(_handlers(sentinel, error, calls))
    if error is not None:
        with pytest.raises(HandlerError) as raised:
            handle(batch)
        assert raised.value is error
    else:
        assert handle(batch) is sentinel
    assert len(calls) == 1
    assert calls[0] is batch
    (span,) = capotel.spans
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == len(batch)


@WITH_CAPOTEL
@given(records)
def test_process_span_records_and_reraises(capotel, spec):
    capotel.clear()
    record = spec.build()
    error = HandlerError("boom")
    with pytest.raises(HandlerError) as raised, process_span(record):
        raise error
    assert raised.value is error
    assert len(capotel.spans) == _expected_spans(record)
    for finished in capotel.spans:
        assert finished.status.is_ok is False
