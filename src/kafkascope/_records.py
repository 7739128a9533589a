"""What the telemetry needs from a consumed record, whatever client it came from.

Span and metric code only sees :class:`RecordView`; one small adapter per client reads its record
type. Adapters are found by the record's type once and cached, so the per-message cost is one
dictionary look-up and one small object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from kafkascope._carrier import Headers

# Timestamp types, as kafka-python and aiokafka number them.
_KP_LOG_APPEND_TIME: Final = 1
# confluent-kafka's Message.timestamp() returns (type, ms) with these types.
_CK_NOT_AVAILABLE: Final = 0
_CK_LOG_APPEND_TIME: Final = 2


class RecordView:
    """The fields of one consumed record that telemetry uses (never its value)."""

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


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _timestamp(value: object) -> int | None:
    ts = _int_or_none(value)
    return ts if ts is not None and ts >= 0 else None


def adapt_attributes(record: Any) -> RecordView:
    """Records with attributes ``topic``, ``partition``, ``offset``, ``key``, ``value``,
    ``headers``, ``timestamp`` (ms) and optionally ``timestamp_type``: kafka-python's and
    aiokafka's ``ConsumerRecord`` and :func:`kafkascope.testing.make_record`."""
    topic = getattr(record, "topic", None)
    return RecordView(
        topic if isinstance(topic, str) else None,
        _int_or_none(getattr(record, "partition", None)),
        _int_or_none(getattr(record, "offset", None)),
        getattr(record, "key", None),
        getattr(record, "headers", None),
        _timestamp(getattr(record, "timestamp", None)),
        getattr(record, "timestamp_type", 0) == _KP_LOG_APPEND_TIME,
        getattr(record, "value", None) is None,
    )


def adapt_methods(record: Any) -> RecordView:
    """confluent-kafka's ``Message``, whose fields are methods."""
    topic = record.topic()
    ts_type, ts = record.timestamp()
    return RecordView(
        topic if isinstance(topic, str) else None,
        _int_or_none(record.partition()),
        _int_or_none(record.offset()),
        record.key(),
        record.headers(),
        _timestamp(ts) if ts_type != _CK_NOT_AVAILABLE else None,
        ts_type == _CK_LOG_APPEND_TIME,
        record.value() is None,
    )


_adapters: dict[type, RecordAdapter | None] = {}


def register_record_adapter(record_type: type, adapter: RecordAdapter) -> None:
    """Teach kafkascope to read records of ``record_type`` (for clients it does not know)."""
    if not isinstance(record_type, type):
        raise TypeError(f"record_type must be a class, got {record_type!r}")
    if not callable(adapter):
        raise TypeError(f"adapter must be callable, got {adapter!r}")
    _adapters[record_type] = adapter


def _detect(record_type: type) -> RecordAdapter | None:
    topic = getattr(record_type, "topic", None)
    if callable(topic) and not isinstance(topic, property):
        return adapt_methods
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


def view(record: object) -> RecordView | None:
    """Read ``record`` through its adapter; None when it is not a record."""
    adapter = adapter_for(record)
    return adapter(record) if adapter is not None else None
