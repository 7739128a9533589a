from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from aiokafka.structs import ConsumerRecord as AioRecord
from confluent_kafka import Message
from kafka.consumer.fetcher import ConsumerRecord as KafkaPythonRecord

from kafkascope import RecordView, inject_headers, register_record_adapter, traced_handler
from kafkascope._adapters.records import view
from kafkascope._core import semconv as sc
from kafkascope.testing import assert_parent

NOW_MS = int(time.time() * 1000)


def _kafka_python(headers):
    return KafkaPythonRecord(
        topic="orders",
        partition=1,
        leader_epoch=-1,
        offset=5,
        timestamp=NOW_MS,
        timestamp_type=0,
        key=b"k",
        value=b"v",
        headers=headers,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        serialized_header_size=-1,
    )


def _confluent(headers):
    return Message(
        topic="orders",
        partition=1,
        offset=5,
        key=b"k",
        value=b"v",
        headers=headers,
        timestamp=(1, NOW_MS),
    )


def _aiokafka(headers):
    return AioRecord("orders", 1, 5, NOW_MS, 0, b"k", b"v", None, 1, 1, headers)


@pytest.mark.parametrize("build", [_kafka_python, _confluent, _aiokafka])
def test_every_client_record_reads_the_same(build):
    headers = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    got = view(build(headers))
    assert got is not None
    assert (got.topic, got.partition, got.offset, got.key) == ("orders", 1, 5, b"k")
    assert got.timestamp_ms == NOW_MS
    assert not got.log_append_time
    assert not got.tombstone
    assert got.headers == headers


@pytest.mark.parametrize("build", [_kafka_python, _confluent, _aiokafka])
def test_every_client_record_continues_the_trace(capotel, build):
    from opentelemetry import trace

    with trace.get_tracer("t").start_as_current_span("send orders"):
        headers = [(k, v) for k, v in inject_headers() if v is not None]

    @traced_handler
    def handle(rec):
        return None

    handle(build(headers))
    process = capotel.span("process orders")
    assert_parent(process, capotel.span("send orders"))
    assert process.attributes[sc.MESSAGING_KAFKA_OFFSET] == 5


def test_confluent_log_append_time_and_missing_timestamp():
    stamped = Message(topic="t", partition=0, offset=0, value=b"", timestamp=(2, NOW_MS))
    missing = Message(topic="t", partition=0, offset=0, value=None, timestamp=(0, -1))
    assert view(stamped).log_append_time  # type: ignore[union-attr]
    got = view(missing)
    assert got is not None
    assert got.timestamp_ms is None
    assert got.tombstone


def test_objects_without_kafka_fields_are_not_records():
    assert view(42) is None
    assert view("orders") is None


def test_records_with_per_instance_attributes_are_read():
    record = SimpleNamespace(topic="t", partition=0, offset=3, key=None, value=b"", headers=None)
    got = view(record)
    assert got is not None
    assert got.offset == 3


def test_wrongly_typed_fields_are_dropped_not_raised():
    record = SimpleNamespace(
        topic=b"bytes-topic", partition="0", offset=True, key=object(), value=b"", headers=5
    )
    got = view(record)
    assert got is not None
    assert (got.topic, got.partition, got.offset) == (None, None, None)


def test_a_registered_adapter_teaches_a_new_client(capotel):
    class Envelope:
        def __init__(self, subject: str) -> None:
            self.subject = subject

    register_record_adapter(
        Envelope,
        lambda e: RecordView(
            topic=e.subject,
            partition=0,
            offset=1,
            key=None,
            headers=None,
            timestamp_ms=None,
            log_append_time=False,
            tombstone=False,
        ),
    )

    @traced_handler
    def handle(envelope):
        return None

    handle(Envelope("payments"))
    assert capotel.span("process payments").attributes[sc.MESSAGING_KAFKA_OFFSET] == 1


def test_register_record_adapter_checks_its_arguments():
    with pytest.raises(TypeError, match="record_type"):
        register_record_adapter("Envelope", lambda e: e)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="adapter"):
        register_record_adapter(object, "nope")  # type: ignore[arg-type]


def _fields(got: RecordView) -> dict[str, object]:
    return {name: getattr(got, name) for name in RecordView.__slots__}


@pytest.mark.parametrize(
    "record",
    [
        _kafka_python([("a", b"b")]),
        _kafka_python(None)._replace(value=None, timestamp_type=1, offset=-3, timestamp=-1),
        _aiokafka([]),
    ],
    ids=["kafka-python", "kafka-python odd values", "aiokafka"],
)
def test_a_named_tuple_record_reads_as_its_fields_read_one_by_one(record):
    from kafkascope._adapters.records import adapt_attributes, adapt_namedtuple

    # Every field of the view is set by the named-tuple fast path, as the guarded path sets it.
    assert _fields(adapt_namedtuple(record)) == _fields(adapt_attributes(record))


def test_a_named_tuple_without_the_timestamp_fields_reads_field_by_field():
    from collections import namedtuple

    from kafkascope._adapters.records import adapt_namedtuple

    Bare = namedtuple("Bare", "topic partition offset key value headers")
    got = adapt_namedtuple(Bare("orders", 2, 7, b"k", None, []))
    assert (got.topic, got.partition, got.offset, got.timestamp_ms) == ("orders", 2, 7, None)
    assert got.tombstone
    assert not got.log_append_time


_EDGES = [-(2**63) - 1, -(2**63), -1, 0, 1, 2**63 - 1, 2**63, 2**64, True]


@pytest.mark.parametrize("number", _EDGES)
def test_the_fast_path_takes_exactly_the_ints_the_checks_take(number):
    """The named-tuple path passes a plain int in [0, 2**63) through unchecked: every other
    value reads as the guarded path reads it (negative partitions and offsets in int64 range
    kept, negative timestamps and anything outside int64 or not a plain int dropped)."""
    from kafkascope._adapters.records import adapt_attributes, adapt_namedtuple

    record = _kafka_python([])._replace(partition=number, offset=number, timestamp=number)
    fast, guarded = adapt_namedtuple(record), adapt_attributes(record)
    assert _fields(fast) == _fields(guarded)
    in_int64 = type(number) is int and -(2**63) <= number < 2**63
    assert (fast.partition, fast.offset) == ((number, number) if in_int64 else (None, None))
    assert fast.timestamp_ms == (number if in_int64 and number >= 0 else None)


class _Name(str):
    pass


@pytest.mark.parametrize(
    "topic",
    ["", "t" * 250, "orders\ud800", _Name("orders-sub"), b"orders"],
    ids=["empty", "too long", "lone surrogate", "str subclass", "bytes"],
)
def test_a_topic_is_remembered_only_once_it_passed_the_checks_unchanged(monkeypatch, topic):
    from kafkascope._adapters import records

    monkeypatch.setattr(records, "_checked_topics", set())
    record = _kafka_python([])._replace(topic=topic)
    first = records.adapt_namedtuple(record)
    again = records.adapt_namedtuple(record)  # read the same way the second time
    assert _fields(first) == _fields(again) == _fields(records.adapt_attributes(record))
    assert records._checked_topics == set()
    for kept in ("orders", "ordres-ü"):
        assert records.adapt_namedtuple(_kafka_python([])._replace(topic=kept)).topic == kept
    assert records._checked_topics == {"orders", "ordres-ü"}


def test_topics_read_the_same_once_the_remembered_ones_are_many(monkeypatch):
    from kafkascope._adapters import records

    monkeypatch.setattr(records, "_checked_topics", set())
    for i in range(records._MAX_CHECKED_TOPICS + 10):
        assert records.adapt_namedtuple(_kafka_python([])._replace(topic=f"t{i}")).topic == f"t{i}"
    assert len(records._checked_topics) == records._MAX_CHECKED_TOPICS
    assert records.adapt_namedtuple(_kafka_python([])._replace(topic="t" * 250)).topic is None
