"""The direct encoder's attribute cache never changes the bytes: values it stops caching, values
equal across types, and attributes that repeat across batches encode as the SDK's encoder does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import AnyValue

from kafkascope._setup.otlp.encoder import _ATTRIBUTE_CACHE_LIMIT, SpanEncoder, _encoded


def _span(index: int, attributes: Mapping[str, AnyValue]) -> ReadableSpan:
    context = SpanContext(trace_id=index + 1, span_id=index + 1, is_remote=False)
    return ReadableSpan(name="send orders", context=context, attributes=attributes)


def test_a_key_with_more_distinct_values_than_are_cached_encodes_each_as_the_sdk_does() -> None:
    spans = [
        _span(i, {"messaging.kafka.offset": i, "messaging.kafka.message.key": f"k{i}"})
        for i in range(300)
    ]
    encoder = SpanEncoder()
    for start in range(0, 300, 100):
        batch = spans[start : start + 100]
        assert encoder.encode(batch) == encode_spans(batch).SerializeToString()


def test_values_equal_across_types_under_one_key_keep_their_own_types() -> None:
    values: list[AnyValue] = [True, 1, False, 0, "1", True, 1, 0, False]
    spans = [_span(i, {"flag": value}) for i, value in enumerate(values)]
    encoder = SpanEncoder()
    for span in spans:
        assert encoder.encode([span]) == encode_spans([span]).SerializeToString()


def test_a_repeated_attribute_after_many_distinct_keys_still_encodes_as_the_sdk_does() -> None:
    encoder = SpanEncoder()
    for i in range(5_000):  # more keys than are cached: the cache starts over
        encoder.encode([_span(i, {f"key.{i}": "value"})])
    span = _span(1, {"messaging.system": "kafka", "key.7": "value"})
    assert encoder.encode([span]) == encode_spans([span]).SerializeToString()


def test_the_cache_holds_at_most_its_limit_of_encoded_attributes() -> None:
    encoder = SpanEncoder()
    for i in range(200):  # 200 keys with 50 values each: 10,000 distinct attributes
        encoder.encode([_span(i, {f"key.{i}.{j % 50}": j for j in range(50)})])
        encoder.encode([_span(i, {f"key.{i}": j}) for j in range(50)])
    cached = sum(len(values) for by_key in _encoded.values() for values in by_key.values())
    assert cached <= _ATTRIBUTE_CACHE_LIMIT


class _Attributes(Mapping[str, AnyValue]):
    """A read-only mapping without ``copy()`` (the encoder copies what has one)."""

    def __init__(self, items: dict[str, AnyValue]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> AnyValue:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def test_attributes_in_a_mapping_without_copy_encode_as_the_sdk_does() -> None:
    span = _span(3, _Attributes({"messaging.system": "kafka", "messaging.kafka.offset": 7}))
    # A span's attributes are a proxy whose copy() is the mapping's.
    assert isinstance(span.attributes, MappingProxyType)
    assert SpanEncoder().encode([span]) == encode_spans([span]).SerializeToString()


def test_values_of_a_key_already_encoded_once_encode_as_the_sdk_does() -> None:
    # Varints of one to four bytes at their edges, int64's edges, a long str, and values the
    # SDK's encoder drops (out of int64, not UTF-8), each after the key was encoded before.
    values: list[AnyValue] = [
        *(edge + step for edge in (0, 128, 1 << 14, 1 << 21) for step in (-1, 0, 1)),
        (1 << 63) - 1,
        1 << 63,
        -(1 << 63),
        "x" * 300,
        "customer-1",
        "\ud800",
        True,
        2.5,
    ]
    encoder = SpanEncoder()
    for i, value in enumerate(values):
        span = _span(i, {"messaging.kafka.offset": i, "value": value})
        assert encoder.encode([span]) == encode_spans([span]).SerializeToString()


def test_spans_of_one_name_keep_their_own_kind_status_and_parent() -> None:
    remote = SpanContext(trace_id=9, span_id=9, is_remote=True)
    local = SpanContext(trace_id=9, span_id=8, is_remote=False)
    spans = [
        ReadableSpan(
            name="orders",
            context=SpanContext(trace_id=9, span_id=10 + i, is_remote=False),
            parent=parent,
            kind=kind,
            status=status,
        )
        for i, (kind, status, parent) in enumerate(
            [
                (SpanKind.PRODUCER, Status(StatusCode.UNSET), None),
                (SpanKind.CONSUMER, Status(StatusCode.UNSET), remote),
                (SpanKind.PRODUCER, Status(StatusCode.ERROR, "broker down"), local),
                (SpanKind.INTERNAL, Status(StatusCode.OK), remote),
                (SpanKind.PRODUCER, Status(StatusCode.UNSET), local),
            ]
        )
    ]
    encoder = SpanEncoder()
    for span in spans:
        assert encoder.encode([span]) == encode_spans([span]).SerializeToString()
