"""Hypothesis strategies for hostile input, shared by the property tests of carriers
(``propagation/test_carrier_properties.py``), records (``adapters/test_records_properties.py``)
and handlers (``consume/test_handlers_properties.py``): header values, keys and whole carriers of
every shape producers send, and records of every client with any field broken.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import ConsumerRecord as AioRecord
from confluent_kafka import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from kafka.consumer.fetcher import ConsumerRecord as KafkaPythonRecord

# Every property test of carriers, records and handlers goes through these settings: few
# enough examples to keep the files fast, no deadline (huge values make single examples slow
# on a loaded machine), no database (nothing written into the work tree).
FAST = settings(max_examples=150, deadline=None, database=None)
WITH_CAPOTEL = settings(
    FAST,
    max_examples=120,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

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


def _namespace_spec(**fields: Any) -> RecordSpec:
    return RecordSpec("namespace", (("topic", "t"), ("offset", 0), *fields.items()))


FOUND_RECORDS = [
    _namespace_spec(timestamp=10**400),  # OverflowError computing the time in queue
    _namespace_spec(timestamp_type=Hostile("weird")),  # __eq__ raised in the adapter
    _namespace_spec(topic=Hostile("str", "t")),  # __hash__ raised in the batch's topic set
    _namespace_spec(offset=2**64),  # an attribute no exporter can encode as int64
    _namespace_spec(topic="\ud800"),  # a topic no exporter can encode as UTF-8
]
