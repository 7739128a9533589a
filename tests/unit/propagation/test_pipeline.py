from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace

from kafkascope import (
    TracedAIOKafkaProducer,
    TracedConfluentProducer,
    TracedProducer,
    dead_letter,
    extract_context,
    process_batch_span,
    process_span,
    traced_handler,
)
from kafkascope._core import semconv as sc
from kafkascope._propagation.pipeline import MAX_ORIGINS, OTHER_ORIGIN, find, parse
from kafkascope._propagation.w3c import scan_headers
from kafkascope.testing import make_record, pipeline_stamp
from tests.unit._producers import (
    RecordingAIOKafkaProducer,
    RecordingConfluentProducer,
    RecordingProducer,
)

HEADER = "kafkascope-pipeline-start"


def _stamps(headers: Any) -> list[bytes]:
    return [value for key, value in headers or () if key == HEADER]


def _sent_with(kind: str, headers: Any = None) -> Any:
    """Send one message to ``enriched`` through the producer ``kind``; its outbound headers."""
    if kind == "kafka-python":
        inner = RecordingProducer()
        TracedProducer(inner).send("enriched", b"{}", headers=headers)
        return inner.sent[0]["headers"]
    if kind == "confluent":
        confluent = RecordingConfluentProducer()
        TracedConfluentProducer(confluent).produce("enriched", b"{}", headers=headers)
        return confluent.produced[0]["headers"]
    aio = RecordingAIOKafkaProducer()

    async def send() -> None:
        await TracedAIOKafkaProducer(aio).send("enriched", b"{}", headers=headers)

    asyncio.run(send())
    return aio.sent[0]["headers"]


PRODUCERS = ["kafka-python", "confluent", "aiokafka"]


@pytest.mark.parametrize("kind", PRODUCERS)
def test_the_first_traced_send_stamps_its_time_and_topic(capotel, kind):
    before = int(time.time() * 1000)
    (stamp,) = _stamps(_sent_with(kind))
    after = int(time.time() * 1000)
    ms, _, origin = stamp.partition(b";")
    assert before <= int(ms) <= after
    assert origin == b"enriched"


@pytest.mark.parametrize("kind", PRODUCERS)
def test_a_send_inside_a_process_span_carries_the_inbound_stamp_forward(capotel, kind):
    inbound = pipeline_stamp(time.time() * 1000 - 2500, "orders")
    record = make_record("orders", headers=[inbound, ("x", b"1")])
    with process_span(record, group="enricher"):
        headers = _sent_with(kind, headers=[("x", b"1"), (HEADER, b"999;stale")])
    assert _stamps(headers) == [inbound[1]]
    assert ("x", b"1") in headers


def test_dead_letter_carries_the_stamp_of_the_failed_message(capotel):
    inbound = pipeline_stamp(time.time() * 1000 - 1000, "orders")
    record = make_record("orders", headers=[inbound])
    inner = RecordingProducer()
    with process_span(record, group="billing"):
        dead_letter(TracedProducer(inner), record, ValueError("declined"))
    assert _stamps(inner.sent[0]["headers"]) == [inbound[1]]


def test_a_send_after_the_process_span_starts_a_new_chain(capotel):
    record = make_record("orders", headers=[pipeline_stamp(time.time() * 1000 - 9000, "orders")])
    with process_span(record):
        pass
    (stamp,) = _stamps(_sent_with("kafka-python"))
    assert stamp.endswith(b";enriched")


def test_forwarded_headers_outside_a_span_keep_their_valid_stamp(capotel):
    inbound = pipeline_stamp(time.time() * 1000 - 4000, "orders")
    assert _stamps(_sent_with("kafka-python", headers=[inbound])) == [inbound[1]]


def test_the_handler_records_the_latency_as_histogram_and_span_attribute(capotel, span_timings):
    sent = time.time() * 1000 - 1500
    handler = traced_handler(group="billing")(lambda record: None)
    handler(make_record("enriched", headers=[pipeline_stamp(sent, "orders")]))
    span = capotel.span("process enriched")
    latency = span.attributes[sc.PIPELINE_LATENCY]
    assert 1.5 <= latency < 5.0
    point = capotel.pipeline_latency(
        **{
            sc.MESSAGING_DESTINATION_NAME: "enriched",
            sc.MESSAGING_CONSUMER_GROUP_NAME: "billing",
            sc.PIPELINE_ORIGIN: "orders",
        }
    )
    assert point.count == 1
    assert point.sum == pytest.approx(latency)
    assert point.unit == "s"
    assert point.bounds[-1] == 3600.0


def test_the_latency_is_on_the_histogram_only_by_default(capotel):
    handler = traced_handler(group="billing")(lambda record: None)
    handler(make_record("enriched", headers=[pipeline_stamp(time.time() * 1000 - 700, "orders")]))
    assert sc.PIPELINE_LATENCY not in capotel.span("process enriched").attributes
    assert capotel.pipeline_latency(**{sc.MESSAGING_DESTINATION_NAME: "enriched"}).count == 1


def test_the_latency_exemplar_is_the_process_span_of_the_message(capotel):
    handler = traced_handler(group="billing")(lambda record: None)
    handler(make_record("enriched", headers=[pipeline_stamp(time.time() * 1000 - 700, "orders")]))
    span = capotel.span("process enriched")
    exemplars = capotel.exemplars(sc.PIPELINE_LATENCY)
    assert [trace_id for trace_id, _ in exemplars] == [format(span.context.trace_id, "032x")]


def test_a_batch_records_each_message_and_forwards_the_oldest_stamp(capotel, span_timings):
    now = time.time() * 1000
    old, young = pipeline_stamp(now - 8000, "orders"), pipeline_stamp(now - 1000, "refunds")
    records = [make_record("enriched", headers=[young]), make_record("enriched", headers=[old])]
    inner = RecordingProducer()
    with process_batch_span(records, group="audit"):
        TracedProducer(inner).send("archive", b"{}")
    assert _stamps(inner.sent[0]["headers"]) == [old[1]]
    assert capotel.pipeline_latency().count == 2
    assert capotel.span("process enriched").attributes[sc.PIPELINE_LATENCY] >= 8.0


def test_a_record_without_a_stamp_records_no_latency(capotel):
    traced_handler()(lambda record: None)(make_record("enriched"))
    assert sc.PIPELINE_LATENCY not in capotel.span("process enriched").attributes
    assert not [p for p in capotel.metrics() if p.name == sc.PIPELINE_LATENCY]


def test_origins_beyond_the_bound_are_reported_as_other(capotel):
    handler = traced_handler(group="g")(lambda record: None)
    now = time.time() * 1000
    for i in range(MAX_ORIGINS + 5):
        handler(make_record("enriched", headers=[pipeline_stamp(now, f"origin-{i}")]))
    origins = {
        p.attributes[sc.PIPELINE_ORIGIN] for p in capotel.metrics() if p.name == sc.PIPELINE_LATENCY
    }
    assert OTHER_ORIGIN in origins
    assert len(origins) <= MAX_ORIGINS + 1


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"abc;orders",
        b"1700000000000",
        b"1700000000000;",
        b"1700000000000;bad topic",
        b"1700000000000;orders;extra",
        b"-5;orders",
        b"99999999999999999;orders",  # too many digits
        b"1;orders",  # 1970: older than any believable chain
        b"%d;orders" % (time.time() * 1000 + 3_600_000),  # an hour ahead
        b"\xff\xfe;orders",
        "1700000000000;ördèrs",
        b"1" * 10_000,
        None,
        12345,
    ],
)
def test_a_malformed_or_hostile_stamp_is_ignored(capotel, value):
    traced_handler()(lambda record: None)(make_record("enriched", headers=[(HEADER, value)]))
    assert sc.PIPELINE_LATENCY not in capotel.span("process enriched").attributes


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_any_stamp_value_either_parses_to_a_believable_time_or_is_ignored(value):
    now = time.time() * 1000
    stamp = parse(value, now)
    if stamp is not None:
        ms, origin, raw = stamp
        assert now - 30 * 86400 * 1000 <= ms <= now + 300_000
        digits, _, topic = raw.partition(b";")
        assert (int(digits), topic.decode("ascii")) == (ms, origin)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([HEADER, b"kafkascope-pipeline-start", "x"]),
            st.one_of(st.none(), st.binary(max_size=64), st.text(max_size=64)),
        ),
        max_size=6,
    )
)
def test_any_headers_leave_the_handler_and_its_sends_working(headers):
    inner = RecordingProducer()
    calls = []

    @traced_handler(group="g")
    def handle(record: Any) -> None:
        calls.append(record)
        TracedProducer(inner).send("out", b"{}")

    handle(make_record("in", headers=headers))
    assert len(calls) == 1
    assert len(_stamps(inner.sent[0]["headers"])) == 1


def test_services_without_kafkascope_read_no_context_from_the_stamp():
    ctx = extract_context([pipeline_stamp(time.time() * 1000, "orders")])
    assert not trace.get_current_span(ctx).get_span_context().is_valid
    assert baggage.get_all(ctx) == {}


def test_the_processing_time_exemplar_is_the_process_span_of_the_message(capotel):
    traced_handler(group="billing")(lambda record: None)(make_record("enriched"))
    span = capotel.span("process enriched")
    exemplars = capotel.exemplars(sc.METRIC_PROCESS_DURATION)
    assert [trace_id for trace_id, _ in exemplars] == [format(span.context.trace_id, "032x")]


_NAMES = st.sampled_from(
    [HEADER, HEADER.upper(), HEADER.encode(), bytearray(HEADER.encode()), "traceparent", 7]
)
_VALID = [
    b"%d;%s" % (int(time.time() * 1000) - ago, topic)
    for ago, topic in ((5, b"a"), (60_000, b"b"), (3_600_000, b"c"))
]
_VALUES = st.one_of(
    st.none(), st.sampled_from(_VALID), st.binary(max_size=32), st.text(max_size=32)
)
_PAIRS = st.one_of(
    st.tuples(_NAMES, _VALUES),
    st.tuples(_NAMES, _VALUES).map(list),
    st.tuples(_NAMES),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_PAIRS, max_size=6), st.tuples(_PAIRS, _PAIRS), st.none()))
def test_the_process_spans_header_scan_finds_the_stamp_the_stamp_reader_finds(headers):
    """The single pass that extracts the trace context also picks up the stamp: on any headers
    it is the value the pipeline latency's own reader takes."""
    now = time.time() * 1000
    _, _, scanned, _ = scan_headers(headers)
    expected = find(headers, now)
    assert (parse(scanned, now) if scanned is not None else None) == expected
