from __future__ import annotations

import contextlib
import logging

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import ConsumerRecord
from opentelemetry.sdk.trace import TracerProvider

from kafkascope import TracedProducer, dead_letter, traced_handler
from kafkascope._adapters.records import view
from kafkascope._core import semconv as sc
from kafkascope._core import settings as _settings
from kafkascope._core.headers import ATTEMPT, PREVIOUS_ATTEMPT
from kafkascope._propagation.poison import MAX_TRACKED, Attempts, _from_headers
from kafkascope._propagation.w3c import scan_headers
from kafkascope.testing import make_record
from tests.unit._producers import RecordingProducer


class BoomError(Exception):
    pass


def _failing(times: int):
    """A handler failing its first ``times`` calls, then succeeding."""
    calls = {"n": 0}

    @traced_handler(group="billing")
    def handle(record: object) -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            raise BoomError("bad payload")

    return handle


def _attempt_spans(capotel):
    return sorted(capotel.spans_named("process orders"), key=lambda s: s.start_time)


def _run(handle, record, times: int) -> None:
    for _ in range(times):
        with contextlib.suppress(BoomError):
            handle(record)


def test_each_retry_of_an_offset_links_to_the_previous_attempt_and_is_numbered(capotel):
    handle = _failing(2)
    _run(handle, make_record("orders", offset=7), 3)
    first, second, third = _attempt_spans(capotel)
    assert sc.MESSAGE_ATTEMPT not in first.attributes
    assert second.attributes[sc.MESSAGE_ATTEMPT] == 2
    assert third.attributes[sc.MESSAGE_ATTEMPT] == 3
    assert [link.context.span_id for link in second.links][-1] == first.context.span_id
    assert [link.context.span_id for link in third.links][-1] == second.context.span_id
    assert third.links[-1].attributes == {"kafkascope.link.type": "previous_attempt"}


def test_three_failures_in_a_row_make_a_poison_message_counted_marked_and_logged(
    capotel, caplog: pytest.LogCaptureFixture
):
    handle = _failing(10)
    with caplog.at_level(logging.WARNING, logger="kafkascope.poison"):
        _run(handle, make_record("orders", partition=1, offset=7), 4)
    spans = _attempt_spans(capotel)
    assert [s.attributes.get(sc.MESSAGE_POISON) for s in spans] == [None, None, True, True]
    assert capotel.metric(sc.POISON, {sc.MESSAGING_DESTINATION_NAME: "orders"}).value == 1
    warnings = [r for r in caplog.records if r.name == "kafkascope.poison"]
    assert len(warnings) == 1
    trace_ids = [format(s.context.trace_id, "032x") for s in spans[:3]]
    assert getattr(warnings[0], sc.POISON_TRACE_IDS) == trace_ids
    assert all(t in warnings[0].getMessage() for t in trace_ids)
    assert warnings[0].levelno == logging.WARNING


def test_a_success_forgets_the_failures(capotel):
    handle = _failing(2)
    record = make_record("orders", offset=3)
    _run(handle, record, 3)  # fails twice, then succeeds
    _run(handle, record, 1)  # read again (say, after a seek): a first attempt once more
    assert sc.MESSAGE_ATTEMPT not in _attempt_spans(capotel)[-1].attributes


def test_other_offsets_do_not_count_towards_a_message(capotel):
    handle = _failing(10)
    for offset in range(5):
        _run(handle, make_record("orders", offset=offset), 1)
    assert all(sc.MESSAGE_ATTEMPT not in s.attributes for s in _attempt_spans(capotel))
    assert all(p.name != sc.POISON for p in capotel.metrics())


def test_the_threshold_is_a_setting(capotel):
    _settings.update(poison_attempts=1)
    try:
        _run(_failing(1), make_record("orders"), 1)
    finally:
        _settings.reset()
    assert _attempt_spans(capotel)[0].attributes[sc.MESSAGE_POISON] is True


def test_a_bad_threshold_is_refused_at_configuration(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ValueError, match="POISON_ATTEMPTS"):
        _settings.Settings.from_env({_settings.ENV_POISON_ATTEMPTS: "0"})
    with pytest.raises(ValueError, match="poison_attempts"):
        _settings.check_attempts(True)
    assert _settings.Settings.from_env({_settings.ENV_POISON_ATTEMPTS: "5"}).poison_attempts == 5


def test_the_map_of_failures_is_bounded():
    attempts = Attempts("billing", None)
    tracer = TracerProvider().get_tracer("test")
    for offset in range(MAX_TRACKED + 10):
        record = view(make_record("orders", offset=offset))
        assert record is not None
        span = tracer.start_span("process orders")
        attempts.end(record, attempts.begin(record, span), span, BoomError())
        span.end()
    assert len(attempts.failed) == MAX_TRACKED
    oldest = view(make_record("orders", offset=0))
    newest = view(make_record("orders", offset=MAX_TRACKED + 9))
    assert oldest is not None
    assert newest is not None
    span = tracer.start_span("process orders")
    for record, number in ((oldest, 1), (newest, 2)):  # the oldest was forgotten first
        history = attempts.begin(record, span)
        assert (1 if history is None else history.failures + 1) == number
        attempts.end(record, history, span, None)


def test_a_retry_sent_from_a_failed_attempt_carries_the_lineage_to_the_retry_topic(capotel):
    producer = RecordingProducer()
    traced = TracedProducer(producer)

    @traced_handler(group="billing")
    def handle(record: object) -> None:
        try:
            raise BoomError("bad payload")
        except BoomError:
            traced.send("orders-retry", b"v", headers=list(record.headers))  # type: ignore[attr-defined]

    handle(make_record("orders", offset=7))
    sent = dict(producer.sent[0]["headers"])
    first = capotel.span("process orders")
    assert sent[ATTEMPT] == b"1"
    assert sent[PREVIOUS_ATTEMPT].decode().split("-")[1:3] == [
        format(first.context.trace_id, "032x"),
        format(first.context.span_id, "016x"),
    ]

    @traced_handler(group="billing")
    def retry(record: object) -> None:
        try:
            raise BoomError("still bad")
        except BoomError:
            traced.send("orders-retry", b"v", headers=list(record.headers))  # type: ignore[attr-defined]

    retry(make_record("orders-retry", headers=producer.sent[0]["headers"]))
    second = capotel.span("process orders-retry")
    assert second.attributes[sc.MESSAGE_ATTEMPT] == 2
    assert second.links[-1].context.span_id == first.context.span_id
    again = producer.sent[1]["headers"]
    assert [v for k, v in again if k == ATTEMPT] == [b"2"]  # replaced, not repeated


def test_a_send_outside_a_failure_carries_no_lineage(capotel):
    producer = RecordingProducer()
    traced = TracedProducer(producer)

    @traced_handler
    def handle(record: object) -> None:
        traced.send("out", b"v")

    handle(make_record("orders"))
    traced.send("out", b"v")
    for sent in producer.sent:
        assert ATTEMPT not in dict(sent["headers"])


def test_a_dead_letter_ends_the_lineage(capotel):
    producer = RecordingProducer()

    @traced_handler(group="billing")
    def handle(record: object) -> None:
        try:
            raise BoomError("bad payload")
        except BoomError as exc:
            dead_letter(TracedProducer(producer), record, exc)

    handle(make_record("orders", offset=7))
    assert ATTEMPT not in dict(producer.sent[0]["headers"])


_TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
_LINEAGE_NAMES = st.sampled_from(
    [
        ATTEMPT,
        ATTEMPT.upper(),
        ATTEMPT.encode(),
        bytearray(ATTEMPT.encode()),
        PREVIOUS_ATTEMPT,
        PREVIOUS_ATTEMPT.encode(),
        "traceparent",
        7,
    ]
)
_LINEAGE_VALUES = st.one_of(
    st.none(),
    st.sampled_from([b"2", "3", _TRACEPARENT]),
    st.binary(max_size=8),
)
_LINEAGE_PAIRS = st.one_of(
    st.tuples(_LINEAGE_NAMES, _LINEAGE_VALUES),
    st.tuples(_LINEAGE_NAMES, _LINEAGE_VALUES).map(list),
    st.tuples(_LINEAGE_NAMES),
    st.tuples(_LINEAGE_NAMES, _LINEAGE_VALUES, _LINEAGE_VALUES),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_LINEAGE_PAIRS, max_size=5), st.tuples(_LINEAGE_PAIRS, _LINEAGE_PAIRS)))
@example([(ATTEMPT, b"2"), (PREVIOUS_ATTEMPT, _TRACEPARENT)])
@example([(ATTEMPT.encode(), b"2"), (PREVIOUS_ATTEMPT.encode(), _TRACEPARENT)])
@example(((PREVIOUS_ATTEMPT, _TRACEPARENT), [ATTEMPT, "3"]))
@example([(bytearray(ATTEMPT.encode()), b"2"), (PREVIOUS_ATTEMPT, _TRACEPARENT)])
def test_the_header_scan_never_misses_a_lineage_the_lineage_reader_finds(headers):
    """The process span's one pass over the headers also tells whether the attempt header is
    there: when it says not, the lineage reader finds nothing either, so the retry is never
    missed for having skipped the reader."""
    _, _, _, attempt = scan_headers(headers)
    if attempt is False:
        assert _from_headers(headers) is None


def test_a_lineage_in_headers_of_three_item_pairs_is_still_read(capotel):
    headers = [(ATTEMPT, b"2", None), (PREVIOUS_ATTEMPT, _TRACEPARENT, None)]
    record = ConsumerRecord("orders", 0, -1, 5, 0, 0, b"k", b"v", headers, None, 1, 1, -1)
    traced_handler(group="billing")(lambda record: None)(record)
    span = capotel.span("process orders")
    assert span.attributes[sc.MESSAGE_ATTEMPT] == 3
    assert [format(link.context.span_id, "016x") for link in span.links] == ["b7ad6b7169203331"]
