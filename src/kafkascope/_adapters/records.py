"""What the telemetry needs from a consumed record, whatever client it came from.

Span and metric code only sees :class:`RecordView`; one small adapter per client reads its record
type. Adapters are found by the record's type once and cached, so the per-message cost is one
dictionary look-up and one small object.

Adapters never raise on a record's field values: a field of the wrong type (or out of Kafka's
range) reads as None, so a strange record gets a span with fewer attributes, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, Final

from kafkascope._core.headers import Headers

# Timestamp types, as kafka-python and aiokafka number them.
_KP_LOG_APPEND_TIME: Final = 1
# confluent-kafka's Message.timestamp() returns (type, ms) with these types.
_CK_NOT_AVAILABLE: Final = 0
_CK_LOG_APPEND_TIME: Final = 2
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
MAX_TOPIC_LENGTH: Final = 249
"""Kafka's own limit on topic names; a longer "topic" is not one and is not recorded."""


class RecordView:
    """The fields of one consumed record that telemetry uses (never its value).

    What an adapter given to :func:`register_record_adapter` returns.

    Args:
        topic: the record's topic, or None when unknown.
        partition: its partition.
        offset: its offset.
        key: its key as the client returned it (recorded only when it decodes as UTF-8).
        headers: its headers, as ``(name, bytes)`` pairs.
        timestamp_ms: its timestamp in milliseconds since the epoch, or None.
        log_append_time: the timestamp is the broker's (``LogAppendTime``).
        tombstone: the value is null.
    """

    __slots__ = (
        "headers",
        "key",
        "log_append_time",
        "offset",
        "partition",
        "timestamp_ms",
        "tombstone",
        "topic",
    )

    def __init__(
        self,
        *,
        topic: str | None,
        partition: int | None,
        offset: int | None,
        key: object,
        headers: Headers,
        timestamp_ms: int | None,
        log_append_time: bool,
        tombstone: bool,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.headers = headers
        self.timestamp_ms = timestamp_ms
        self.log_append_time = log_append_time
        self.tombstone = tombstone


RecordAdapter = Callable[[Any], RecordView]
_new_view = RecordView.__new__


def _int_or_none(value: object) -> int | None:
    """A plain int in Kafka's int64 range (so attributes export and arithmetic works), or None."""
    if type(value) is not int:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        value = int.__index__(value)  # a plain int, whatever a subclass overrides
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _timestamp(value: object) -> int | None:
    ts = _int_or_none(value)
    return ts if ts is not None and ts >= 0 else None


def _topic(value: object) -> str | None:
    if type(value) is not str:
        if not isinstance(value, str):
            return None
        value = str.__str__(value)
    if not value or len(value) > MAX_TOPIC_LENGTH:
        return None
    if not value.isascii():
        try:  # lone surrogates cannot be exported
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return value


_checked_topics: set[str] = set()
"""Topic names (plain strings) that passed :func:`_topic` unchanged."""
_MAX_CHECKED_TOPICS: Final = 1_024


def _checked_topic(value: object) -> str | None:
    """:func:`_topic`, remembering a topic it kept as it was (so a plain string)."""
    topic = _topic(value)
    if topic is value and topic is not None and len(_checked_topics) < _MAX_CHECKED_TOPICS:
        _checked_topics.add(topic)
    return topic


def _field(record: object, name: str) -> Any:
    try:
        return getattr(record, name, None)
    except Exception:  # a property or __getattr__ that raises: the field is unknown
        return None


def _call(record: object, name: str) -> Any:
    try:
        return getattr(record, name)()
    except Exception:
        return None


def adapt_attributes(record: Any) -> RecordView:
    """Records with attributes ``topic``, ``partition``, ``offset``, ``key``, ``value``,
    ``headers``, ``timestamp`` (ms) and optionally ``timestamp_type``: kafka-python's and
    aiokafka's ``ConsumerRecord`` and :func:`kafkascope.testing.make_record`."""
    return RecordView(
        topic=_topic(_field(record, "topic")),
        partition=_int_or_none(_field(record, "partition")),
        offset=_int_or_none(_field(record, "offset")),
        key=_field(record, "key"),
        headers=_field(record, "headers"),
        timestamp_ms=_timestamp(_field(record, "timestamp")),
        log_append_time=_int_or_none(_field(record, "timestamp_type")) == _KP_LOG_APPEND_TIME,
        tombstone=_field(record, "value") is None,
    )


def adapt_namedtuple(record: Any) -> RecordView:
    """Named tuples with the Kafka record fields (kafka-python's ``ConsumerRecord``): field
    reads cannot raise, so they skip :func:`adapt_attributes`' guards; values are still
    checked."""
    record_type = type(record)
    try:
        getter = _getters[record_type]
    except KeyError:
        getter = _getters[record_type] = _fields_getter(record_type)
    if getter is None:
        topic, partition, offset = record.topic, record.partition, record.offset
        key, value, headers = record.key, record.value, record.headers
        timestamp = getattr(record, "timestamp", None)
        timestamp_type = getattr(record, "timestamp_type", 0)
    else:  # one C call for the eight fields
        topic, partition, offset, key, value, headers, timestamp, timestamp_type = getter(record)
    # The clients' own values (plain ints in range, a topic checked before) are taken as they
    # are; anything else goes through the checks. ``n >> 63`` is 0 exactly for 0 <= n < 2**63.
    if type(topic) is not str or topic not in _checked_topics:
        topic = _checked_topic(topic)
    if type(partition) is not int or partition >> 63:
        partition = _int_or_none(partition)
    if type(offset) is not int or offset >> 63:
        offset = _int_or_none(offset)
    if type(timestamp) is not int or timestamp >> 63:
        timestamp = _timestamp(timestamp)
    if type(timestamp_type) is not int:
        timestamp_type = _int_or_none(timestamp_type)
    # RecordView(...) with its keyword arguments, without the call: this runs per message.
    view = _new_view(RecordView)
    view.topic = topic
    view.partition = partition
    view.offset = offset
    view.key = key
    view.headers = headers
    view.timestamp_ms = timestamp
    view.log_append_time = timestamp_type == _KP_LOG_APPEND_TIME
    view.tombstone = value is None
    return view


_READ: Final = (
    "topic",
    "partition",
    "offset",
    "key",
    "value",
    "headers",
    "timestamp",
    "timestamp_type",
)
_getters: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}
"""Per named-tuple record type, what reads :data:`_READ` (None: read field by field)."""


def _fields_getter(record_type: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """An ``itemgetter`` of :data:`_READ` by position, when ``record_type`` has all of them as
    fields and indexes as a tuple does."""
    fields = getattr(record_type, "_fields", ())
    if getattr(record_type, "__getitem__", None) is not tuple.__getitem__:
        return None
    if not isinstance(fields, tuple) or not all(name in fields for name in _READ):
        return None
    return itemgetter(*(fields.index(name) for name in _READ))


_NAMEDTUPLE_FIELDS: Final = frozenset({"topic", "partition", "offset", "key", "value", "headers"})


def adapt_methods(record: Any) -> RecordView:
    """confluent-kafka's ``Message``, whose fields are methods."""
    stamp = _call(record, "timestamp")
    ts_type: int | None = None
    ts: int | None = None
    if isinstance(stamp, tuple) and len(stamp) == 2:
        ts_type = _int_or_none(stamp[0])
        ts = _timestamp(stamp[1])
    return RecordView(
        topic=_topic(_call(record, "topic")),
        partition=_int_or_none(_call(record, "partition")),
        offset=_int_or_none(_call(record, "offset")),
        key=_call(record, "key"),
        headers=_call(record, "headers"),
        timestamp_ms=ts if ts_type is not None and ts_type != _CK_NOT_AVAILABLE else None,
        log_append_time=ts_type == _CK_LOG_APPEND_TIME,
        tombstone=_call(record, "value") is None,
    )


_adapters: dict[type, RecordAdapter | None] = {}
ADAPTERS_BY_TYPE: Final[Mapping[type, RecordAdapter | None]] = _adapters
"""The adapters found so far, by record type (None: not a record type), to read only: what
:func:`adapter_for_type` looks up, for a per-message path that cannot afford the call."""


def register_record_adapter(record_type: type, adapter: RecordAdapter) -> None:
    """Teach kafkascope to read records of ``record_type`` (for clients it does not know).

    Args:
        record_type: the client's record class; instances of subclasses match too.
        adapter: called with such a record, returns its :class:`RecordView`.
    """
    if not isinstance(record_type, type):
        raise TypeError(f"record_type must be a class, got {record_type!r}")
    if not callable(adapter):
        raise TypeError(f"adapter must be callable, got {adapter!r}")
    _adapters[record_type] = adapter


def _detect(record_type: type) -> RecordAdapter | None:
    topic = getattr(record_type, "topic", None)
    if callable(topic) and not isinstance(topic, property):
        return adapt_methods
    fields = getattr(record_type, "_fields", None)
    if (
        issubclass(record_type, tuple)
        and isinstance(fields, tuple)
        and _NAMEDTUPLE_FIELDS.issubset(fields)
        and record_type.__getattribute__ is tuple.__getattribute__
    ):
        return adapt_namedtuple
    if hasattr(record_type, "topic") or hasattr(record_type, "__dataclass_fields__"):
        return adapt_attributes
    return None


def adapter_for(record: object) -> RecordAdapter | None:
    """The adapter for ``record``'s type, or None when it does not look like a Kafka record."""
    record_type = type(record)
    try:
        return _adapters[record_type]
    except KeyError:
        pass
    adapter = _detect(record_type)
    if adapter is None and hasattr(record, "topic"):
        return adapt_attributes  # instances with per-object attributes (SimpleNamespace, ...)
    _adapters[record_type] = adapter
    return adapter


def adapter_for_type(record_type: type) -> RecordAdapter | None:
    """The adapter already found for instances of ``record_type``, or None (not looked up yet,
    or not a record type): a look-up that never inspects anything."""
    return _adapters.get(record_type)


def record_argument(args: tuple[Any, ...]) -> Any:
    """The record among a handler's arguments: the first, or the second for a method (after
    ``self``). A first argument with ``topic`` and ``offset`` is the record."""
    try:
        if args and hasattr(args[0], "topic") and hasattr(args[0], "offset"):
            return args[0]
    except Exception:  # a proxy whose attribute access raises is not a record
        return args[1] if len(args) > 1 else None
    if len(args) > 1:
        return args[1]
    return args[0] if args else None


def body_size(record: object) -> int | None:
    """Bytes of a consumed record's value, as its client measured it, without reading it:
    kafka-python's and aiokafka's ``serialized_value_size`` (the size before deserializing),
    ``len()`` of confluent-kafka's value; 0 for a tombstone; None when unknown."""
    try:
        serialized = getattr(record, "serialized_value_size", None)
        value = getattr(record, "value", None)
        if callable(value):
            value = value()  # confluent-kafka: the value it already holds, not a copy
        if value is None:
            return 0
        if isinstance(serialized, int) and not isinstance(serialized, bool) and serialized >= 0:
            return serialized
        if isinstance(value, bytes | bytearray):
            return len(value)
        if isinstance(value, memoryview):
            return value.nbytes
        if isinstance(value, str):
            return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    except Exception:
        return None
    return None


def view(record: object) -> RecordView | None:
    """Read ``record`` through its adapter; None when it is not a record."""
    adapter = adapter_for(record)
    return adapter(record) if adapter is not None else None
