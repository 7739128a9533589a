"""ConsumerTracker without a broker: a span per handed-out record, ended at the next call."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

from kafkascope._consume.tracker import ConsumerTracker
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope.testing import Capotel, make_record


class Consumer:
    """Any object the tracker can key by: a client's consumer stands here."""


def _describe(consumer: Any) -> tuple[str | None, str | None, str | None]:
    return "billing", "kafka.internal:9094", "billing-1"


@pytest.fixture
def tracker() -> ConsumerTracker:
    _settings.update(lag=False)  # a stand-in consumer has no lag to read
    return ConsumerTracker(None, None)


def _offsets(capotel: Capotel) -> list[Any]:
    return [(s.attributes or {}).get(sc.MESSAGING_KAFKA_OFFSET) for s in capotel.spans]


def _fetch(tracker: ConsumerTracker, consumer: Consumer, offset: int) -> Any:
    record = make_record("orders", offset=offset)
    return tracker.call(consumer, True, _describe, lambda: record, (), {})


def test_a_fetched_record_is_processed_until_the_consumers_next_call(capotel: Capotel, tracker):
    consumer = Consumer()
    _fetch(tracker, consumer, 1)
    assert capotel.spans == []  # still open: the application's loop body runs now
    _fetch(tracker, consumer, 2)
    (first,) = capotel.spans
    assert first.name == "process orders"
    assert (
        dict(first.attributes or {}).items()
        >= {
            sc.MESSAGING_KAFKA_OFFSET: 1,
            sc.MESSAGING_CONSUMER_GROUP_NAME: "billing",
            sc.SERVER_ADDRESS: "kafka.internal",
        }.items()
    )
    tracker.end_all()
    assert _offsets(capotel) == [1, 2]


def test_a_call_nested_in_a_traced_call_opens_no_span(capotel: Capotel, tracker):
    consumer = Consumer()

    def outer() -> Any:
        _fetch(tracker, consumer, 7)  # kafka-python's __next__ calls poll() on itself
        return make_record("orders", offset=8)

    tracker.call(consumer, True, _describe, outer, (), {})
    tracker.end_all()
    assert _offsets(capotel) == [8]


def test_a_call_that_raises_propagates_and_the_next_call_is_traced(capotel: Capotel, tracker):
    consumer = Consumer()

    def failing() -> Any:
        raise TimeoutError("no broker")

    with pytest.raises(TimeoutError, match="no broker"):
        tracker.call(consumer, True, _describe, failing, (), {})
    _fetch(tracker, consumer, 3)
    tracker.end_all()
    assert _offsets(capotel) == [3]


def test_a_batch_fetch_opens_one_span_and_commit_ends_it(capotel: Capotel, tracker):
    consumer = Consumer()
    batch = [make_record("orders", offset=i) for i in range(3)]
    tracker.call(consumer, False, _describe, lambda: batch, (), {})
    tracker.call(consumer, None, _describe, lambda: None, (), {})
    (span,) = capotel.spans
    assert (span.attributes or {}).get(sc.MESSAGING_BATCH_MESSAGE_COUNT) == 3


def test_nothing_is_traced_inside_suppress_instrumentation(capotel: Capotel, tracker):
    with suppress_instrumentation():
        _fetch(tracker, Consumer(), 1)
    tracker.end_all()
    assert capotel.spans == []


@pytest.mark.asyncio
async def test_an_awaited_fetch_is_processed_until_the_next_call(capotel: Capotel, tracker):
    consumer = Consumer()

    async def getone(offset: int) -> Any:
        return make_record("orders", offset=offset)

    await tracker.call_async(consumer, True, _describe, getone, (4,), {})
    await tracker.call_async(consumer, None, _describe, getone, (5,), {})
    assert _offsets(capotel) == [4]
