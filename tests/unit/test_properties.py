"""Property tests: header carriers and record adapters take any input without breaking.

The suite runs in strict mode (``tests/conftest.py``): an internal error that production would
log and swallow raises here instead, so "no internal error" is checked by every example that
goes through a handler.
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord as AioRecord
from confluent_kafka import Message
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import ConsumerRecord as KafkaPythonRecord
from opentelemetry import baggage, trace
from opentelemetry.context import Context

from kafkascope import (
    extract_context,
    inject_headers,
    process_span,
    traced_batch_handler,
    traced_handler,
)
from kafkascope._adapters.records import view
from kafkascope._propagation.carrier import MAX_BAGGAGE_BYTES, MAX_BAGGAGE_ENTRIES, HeaderGetter

# Every example in this file goes through these settings: few enough to keep the file fast,
# no deadline (huge values make single examples slow on a loaded machine), no database
# (nothing written into the work tree).
FAST = settings(max_examples=150, deadline=None, database=None)
WITH_CAPOTEL = settings(
    FAST,
    max_examples=120,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SDK_PARSER_LOGGERS = ("opentelemetry.baggage.propagation", "opentelemetry.trace.span")


@pytest.fixture(autouse=True)
def _quiet_sdk_parsers() -> Iterator[None]:
    """The SDK logs a warning per malformed baggage entry or tracestate member (up to 180
    per message); thousands of examples of garbage would spend their time logging."""
    loggers = [logging.getLogger(name) for name in SDK_PARSER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


HEX = "0123456789abcdef"
HUGE = 100_000
"""The largest header value generated (Kafka's default message limit is 1 MB)."""

# ---------------------------------------------------------------- strategies: header values


@st.composite
def traceparents(draw: st.DrawFn) -> str:
    """Valid, truncated, oversized and garbled ``traceparent`` values."""
    version = draw(st.sampled_from(["00", "00", "00", "01", "ff", "0g", "cc"]))
    trace_id = draw(st.text(HEX, min_size=32, max_size=32))
    span_id = draw(st.text(HEX, min_size=16, max_size=16))
    flags = draw(st.sampled_from(["00", "01", "ff", "zz"]))
    value = f"{version}-{trace_id}-{span_id}-{flags}"
    mutation = draw(st.sampled_from(["none"] * 5 + ["truncate", "extend", "garble", "case", "pad"]))
    if mutation == "truncate":
        value = value[: draw(st.integers(0, len(value) - 1))]
    elif mutation == "extend":
        value += draw(st.text(max_size=40))
    elif mutation == "garble":
        at = draw(st.integers(0, len(value) - 1))
        value = value[:at] + draw(st.characters()) + value[at + 1 :]
    elif mutation == "case":
        value = value.upper()
    elif mutation == "pad":
        value = " \t" + value + " " * draw(st.integers(0, 10_000))
    return value


_TOKEN = st.text(string.ascii_lowercase + string.digits + "_-*/", min_size=1, max_size=12)


@st.composite
def tracestates(draw: st.DrawFn) -> str:
    """``tracestate`` lists: a few or many members, valid or not, small or huge."""
    members = draw(
        st.lists(
            st.tuples(_TOKEN, st.text(string.printable.replace(",", ""), max_size=30)),
            max_size=60,
        )
    )
    value = ",".join(f"{k}={v}" for k, v in members)
    repeat = draw(st.sampled_from([1, 1, 2, 500]))
    return ",".join([value] * repeat)[:HUGE]


@st.composite
def baggages(draw: st.DrawFn) -> str:
    """``baggage`` lists: many entries, huge, invalid percent-encoding, properties."""
    entry = st.one_of(
        st.tuples(_TOKEN, st.text(string.ascii_letters + "%", max_size=20)).map("=".join),
        st.just("k=%zz"),
        st.just("k=%"),
        st.just("k=%E2%82"),
        st.just("k=v;prop=1"),
        st.just("=v"),
        st.just("k"),
        st.text(max_size=20),
    )
    entries = draw(st.lists(entry, max_size=50))
    repeat = draw(st.sampled_from([1, 1, 10, 2000]))
    return ",".join(entries * repeat)[:HUGE]


def _big(pattern: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(lambda p, n: (p or b"x") * n, pattern, st.integers(1, HUGE // 4))


def _same(value: Any) -> Any:
    # Wrapping a one_of in map() makes it one branch of an enclosing one_of (Hypothesis
    # flattens nested one_of), which is how the strategies below weight valid input.
    return value


def _encodings(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    raw = text.map(lambda s: s.encode("utf-8", "surrogatepass"))
    return st.one_of(
        raw,
        raw,
        text,
        raw.map(bytearray),
        raw.map(lambda b: memoryview(b)),
        raw.map(lambda b: b[:-1]),
    )


text_values = st.one_of(traceparents(), tracestates(), baggages(), st.text(max_size=50))
header_values: st.SearchStrategy[Any] = st.one_of(
    _encodings(text_values).map(_same),
    st.binary(max_size=64),  # mostly not UTF-8
    _big(st.binary(max_size=4)),
    st.none(),
    st.integers(),
    st.floats(),
)
PROPAGATION_NAMES = ["traceparent", "tracestate", "baggage"]


def _spellings(name: str) -> st.SearchStrategy[Any]:
    return st.sampled_from([name, name, name.upper(), name.title(), name.encode()])


header_keys: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(PROPAGATION_NAMES).flatmap(_spellings),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.integers(),
    st.none(),
)
pairs = st.tuples(header_keys, header_values)


@st.composite
def propagation_headers(draw: st.DrawFn) -> list[Any]:
    """What producers send: traceparent, tracestate and baggage (each possibly duplicated,
    oddly spelled, huge or broken) among other headers, in any order."""
    headers: list[Any] = []
    if draw(st.integers(0, 4)):
        headers.append((draw(_spellings("traceparent")), draw(_encodings(traceparents()))))
    for name, values in (("tracestate", tracestates()), ("baggage", baggages())):
        for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
            headers.append((draw(_spellings(name)), draw(_encodings(values))))
        if draw(st.integers(0, 5)) == 0:  # the same header many times over
            headers.extend([(name, draw(_encodings(values)))] * draw(st.integers(9, 1000)))
    headers.extend(draw(st.lists(pairs, max_size=4)))
    return draw(st.permutations(headers))


malformed_items = st.one_of(
    st.tuples(header_keys),
    st.tuples(header_keys, header_values, header_values),
    st.none(),
    st.integers(),
    st.text(max_size=3),
)
carriers: st.SearchStrategy[Any] = st.one_of(
    propagation_headers(),
    propagation_headers(),
    propagation_headers().map(tuple),
    propagation_headers().map(dict),
    st.lists(pairs, max_size=12),
    st.dictionaries(header_keys, header_values, max_size=8),
    st.lists(st.one_of(pairs, malformed_items), max_size=8),
    st.one_of(st.none(), st.integers(), st.text(max_size=10), st.binary(max_size=10)).map(_same),
)

# ---------------------------------------------------------------- strategies: records


class _Weird:
    """A value whose comparisons, hash, truth and length raise: no field may be trusted."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparisons")

    def __hash__(self) -> int:
        raise RuntimeError("no hashing")

    def __bool__(self) -> bool:
        raise RuntimeError("no truth")

    def __len__(self) -> int:
        raise RuntimeError("no length")


class _OddStr(str):
    __hash__ = _Weird.__hash__
    __eq__ = _Weird.__eq__
    __len__ = _Weird.__len__


class _OddInt(int):
    __hash__ = _Weird.__hash__
    __eq__ = _Weird.__eq__
    __index__ = _Weird.__len__


@dataclass(frozen=True)
class Hostile:
    """Stands for a hostile value in generated data; built only inside the test, because
    Hypothesis itself hashes and compares what it generates."""

    kind: str
    payload: Any = None

    def build(self) -> Any:
        if self.kind == "str":
            return _OddStr(self.payload)
        if self.kind == "int":
            return _OddInt(self.payload)
        return _Weird()


@dataclass(frozen=True)
class RecordSpec:
    """A record to build inside the test: its client and its fields."""

    client: str
    fields: tuple[tuple[str, Any], ...]

    def build(self) -> Any:
        fields = {name: _build(value) for name, value in self.fields}
        return _BUILDERS[self.client](fields)


def _build(value: Any) -> Any:
    if isinstance(value, Hostile):
        return value.build()
    if isinstance(value, list):
        return [_build(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_build(v) for v in value)
    return value


anything: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.integers(max_value=-(2**63) + 2, min_value=-(2**70)),
    st.just(10**400),
    st.floats(),
    st.text(max_size=30),
    st.just("\ud800"),
    st.binary(max_size=30),
    st.just(Hostile("weird")),
    st.builds(Hostile, st.just("str"), st.text(max_size=10)),
    st.builds(Hostile, st.just("int"), st.integers(-5, 5)),
    st.tuples(st.integers(-2, 3), st.integers()),
    st.lists(st.integers(), max_size=3),
    carriers,
)
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
topics = st.one_of(
    st.sampled_from(["orders", "t"]),
    st.text(max_size=30),
    st.just("x" * 1000),
    anything.map(_same),
)


def _kafka_python(fields: dict[str, Any]) -> Any:
    return KafkaPythonRecord(
        topic=fields["topic"],
        partition=fields["partition"],
        leader_epoch=-1,
        offset=fields["offset"],
        timestamp=fields["timestamp"],
        timestamp_type=fields["timestamp_type"],
        key=fields["key"],
        value=fields["value"],
        headers=fields["headers"],
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        serialized_header_size=-1,
    )


def _aiokafka(fields: dict[str, Any]) -> Any:
    return AioRecord(
        fields["topic"],
        fields["partition"],
        fields["offset"],
        fields["timestamp"],
        fields["timestamp_type"],
        fields["key"],
        fields["value"],
        None,
        -1,
        -1,
        fields["headers"],
    )


def _confluent(fields: dict[str, Any]) -> Any:
    return Message(**fields)


_BUILDERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "kafka-python": _kafka_python,
    "aiokafka": _aiokafka,
    "confluent": _confluent,
    "namespace": lambda fields: SimpleNamespace(**fields),
}
FIELD_NAMES = ("topic", "partition", "offset", "timestamp", "timestamp_type", "key", "value")
record_fields = st.fixed_dictionaries(
    {
        "topic": topics,
        "partition": st.one_of(int32, anything.map(_same)),
        "offset": st.one_of(int64, anything.map(_same)),
        "timestamp": st.one_of(int64, anything.map(_same)),
        "timestamp_type": st.one_of(st.sampled_from([0, 1, -1]), anything.map(_same)),
        "key": st.one_of(header_values.map(_same), anything.map(_same)),
        "value": st.one_of(st.binary(max_size=10), anything.map(_same)),
        "headers": carriers,
    }
)
# confluent-kafka's Message checks its constructor's types: topic, key, value and headers stay
# arbitrary, partition/offset/timestamp are what its C struct holds.
confluent_fields = st.fixed_dictionaries(
    {
        "topic": topics,
        "partition": int32,
        "offset": int64,
        "key": st.one_of(header_values.map(_same), anything.map(_same)),
        "value": st.one_of(st.binary(max_size=10), anything.map(_same)),
        "headers": carriers,
        "timestamp": st.tuples(st.integers(-1, 5), int64),
    }
)


def _spec(client: str) -> Callable[[dict[str, Any]], RecordSpec]:
    return lambda fields: RecordSpec(client, tuple(fields.items()))


records: st.SearchStrategy[RecordSpec] = st.one_of(
    confluent_fields.map(_spec("confluent")),
    record_fields.map(_spec("kafka-python")),
    record_fields.map(_spec("aiokafka")),
    record_fields.map(_spec("namespace")),
    # namespaces missing any of the fields but the topic
    st.dictionaries(st.sampled_from(FIELD_NAMES[1:]), anything)
    .flatmap(lambda d: st.builds(dict, st.just(d), topic=topics))
    .map(_spec("namespace")),
)


class HandlerError(Exception):
    pass


# ---------------------------------------------------------------- carriers


def _check_context(ctx: Context) -> None:
    assert isinstance(ctx, Context)
    span_context = trace.get_current_span(ctx).get_span_context()
    event(f"remote span: {span_context.is_valid}")
    if span_context.is_valid:
        assert span_context.is_remote
        assert 0 < span_context.trace_id < 2**128
        assert 0 < span_context.span_id < 2**64
    else:
        assert span_context == trace.INVALID_SPAN_CONTEXT
    entries = baggage.get_all(ctx)
    event(f"baggage entries: {min(len(entries), 10)}{'+' if len(entries) >= 10 else ''}")
    assert len(entries) <= MAX_BAGGAGE_ENTRIES
    joined = ",".join(f"{k}={v}" for k, v in entries.items())
    assert len(joined.encode("utf-8", "surrogatepass")) <= MAX_BAGGAGE_BYTES


@FAST
@given(carriers, st.booleans())
def test_extract_context_never_raises_and_gives_a_remote_span_or_none(headers, trust):
    _check_context(extract_context(headers, trust_baggage=trust))
    if not trust:
        assert not baggage.get_all(extract_context(headers, trust_baggage=False))


@FAST
@given(carriers, st.sampled_from([*PROPAGATION_NAMES, "other", "TRACEPARENT"]))
def test_getter_returns_none_or_a_short_list_of_text(headers, key):
    getter = HeaderGetter()
    got = getter.get(headers, key)
    assert got is None or (0 < len(got) <= 8 and all(isinstance(v, str) for v in got))
    names = getter.keys(headers)
    assert isinstance(names, list)
    assert all(isinstance(n, str) for n in names)


@FAST
@given(st.lists(pairs, max_size=12), st.integers(0, 12))
@example(noise=[("baggage", "k=\ud800")], at=0)  # found: lost the trace (UnicodeEncodeError)
@example(noise=[("traceparent",)], at=1)  # found: a malformed pair hid the later ones
def test_a_valid_traceparent_survives_any_other_headers(noise, at):
    """Garbage in other headers (bad baggage and tracestate included) never costs the trace."""
    headers: list[Any] = [p for p in noise if not _is_traceparent_key(p[0])]
    headers.insert(at, ("traceparent", f"00-{'a' * 32}-{'b' * 16}-01".encode()))
    span_context = trace.get_current_span(extract_context(headers)).get_span_context()
    assert span_context.trace_id == int("a" * 32, 16)


def _is_traceparent_key(key: object) -> bool:
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    return isinstance(key, str) and key.lower() == "traceparent"


@FAST
@given(carriers)
# found: each raised something other than TypeError, or returned what clients cannot send
@example(headers=[(b"\x80", None)])
@example(headers=[("a",)])
@example(headers=[("a", b"1", b"2")])
@example(headers=["ab"])
@example(headers="traceparent")
@example(headers=[("k", "\ud800")])
@example(headers=[("\ud800", b"v")])
def test_inject_headers_returns_sendable_pairs_or_raises_type_error(headers):
    expected = _as_sent(headers)
    try:
        out = inject_headers(headers)
    except TypeError:
        event("TypeError")
        assert expected is None, f"refused headers a client can send: {headers!r:.200}"
        return
    event("sent")
    assert isinstance(out, list)
    for pair in out:
        assert isinstance(pair, tuple)
        assert len(pair) == 2
        name, value = pair
        assert type(name) is str
        name.encode("utf-8")  # sendable: Kafka clients encode header names as UTF-8
        assert value is None or type(value) is bytes
    # No span is current here, so nothing is added: the headers come back as clients send them.
    assert out == expected


def _as_sent(headers: Any) -> list[tuple[str, bytes | None]] | None:
    """``headers`` as a Kafka client sends them, or None if a client cannot send them: a list,
    tuple or dict of pairs whose keys are text (or UTF-8 bytes) and whose values are None,
    bytes-like or text, all of it encodable as UTF-8."""
    if headers is None:
        return []
    if isinstance(headers, dict):
        pairs = list(headers.items())
    elif isinstance(headers, list | tuple):
        pairs = list(headers)
    else:
        return None
    sent: list[tuple[str, bytes | None]] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            return None
        key, value = pair
        try:
            if type(key) is bytes:
                name = key.decode("utf-8")
            elif type(key) is str:
                name = key
                key.encode("utf-8")
            else:
                return None
            if value is None:
                sent.append((name, None))
            elif type(value) is str:
                sent.append((name, value.encode("utf-8")))
            elif isinstance(value, bytes | bytearray | memoryview):
                sent.append((name, bytes(value)))
            else:
                return None
        except UnicodeError:
            return None
    return sent


# ---------------------------------------------------------------- records and handlers


def _namespace_spec(**fields: Any) -> RecordSpec:
    return RecordSpec("namespace", (("topic", "t"), ("offset", 0), *fields.items()))


FOUND_RECORDS = [
    _namespace_spec(timestamp=10**400),  # OverflowError computing the time in queue
    _namespace_spec(timestamp_type=Hostile("weird")),  # __eq__ raised in the adapter
    _namespace_spec(topic=Hostile("str", "t")),  # __hash__ raised in the batch's topic set
    _namespace_spec(offset=2**64),  # an attribute no exporter can encode as int64
    _namespace_spec(topic="\ud800"),  # a topic no exporter can encode as UTF-8
]


@FAST
@given(records)
@example(spec=FOUND_RECORDS[0])
@example(spec=FOUND_RECORDS[1])
@example(spec=FOUND_RECORDS[2])
@example(spec=FOUND_RECORDS[3])
@example(spec=FOUND_RECORDS[4])
def test_every_record_shape_reads_into_a_view_without_raising(spec):
    record = spec.build()
    got = view(record)
    assert got is not None
    event(f"{spec.client}: topic {got.topic is not None}, offset {got.offset is not None}")
    assert got.topic is None or type(got.topic) is str
    for field in (got.partition, got.offset, got.timestamp_ms):
        assert field is None or (type(field) is int and -(2**63) <= field < 2**63)
    assert got.timestamp_ms is None or got.timestamp_ms >= 0
    assert type(got.log_append_time) is bool
    assert type(got.tombstone) is bool
    # What was read is what the record holds, wherever that is an int or text that fits.
    held = [_held(record, spec.client, name) for name in ("topic", "partition", "offset")]
    assert (got.topic, got.partition, got.offset) == (
        _fitting_topic(held[0]),
        _fitting_int(held[1]),
        _fitting_int(held[2]),
    )


def _held(record: Any, client: str, name: str) -> Any:
    """A field as the client's record hands it out (confluent-kafka: through a method)."""
    return getattr(record, name)() if client == "confluent" else getattr(record, name, None)


def _fitting_int(raw: Any) -> int | None:
    """An int field as telemetry should read it: its int value in int64 range, else None."""
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    value = int.__index__(raw)
    return value if -(2**63) <= value < 2**63 else None


def _fitting_topic(raw: Any) -> str | None:
    """A topic as telemetry should read it: non-empty text of at most Kafka's 249 characters
    that exporters can encode, else None."""
    if not isinstance(raw, str):
        return None
    text = str.__str__(raw)
    if not 0 < str.__len__(text) <= 249:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


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


@settings(FAST, max_examples=60)
@given(carriers)
def test_untrusted_baggage_never_reaches_the_handler(headers):
    from kafkascope._core import settings as _settings

    _settings.update(trust_baggage=False)
    seen: list[dict[str, object]] = []

    @traced_handler
    def handle(rec: object) -> None:
        seen.append(dict(baggage.get_all()))

    try:
        handle(SimpleNamespace(topic="orders", offset=1, headers=headers))
    finally:
        _settings.update(trust_baggage=True)
    assert seen == [{}]
