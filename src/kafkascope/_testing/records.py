"""The fake records of :mod:`kafkascope.testing`: what a handler under test is given."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafkascope._core.headers import PIPELINE, Headers


@dataclass
class FakeRecord:
    """A consumed record with kafka-python's fields, for unit tests of handlers.

    :func:`make_record` checks what it is given; build one directly for a record no client
    would return.

    Attributes:
        topic: the record's topic.
        partition: its partition.
        offset: its offset.
        key: its key.
        value: its value.
        headers: ``(name, bytes)`` pairs.
        timestamp: milliseconds since the epoch, or None.
        timestamp_type: 0 for ``CreateTime``, 1 for ``LogAppendTime`` (kafka-python's codes).
    """

    topic: str
    partition: int = 0
    offset: int = 0
    key: bytes | str | None = None
    value: Any = b""
    headers: Headers = field(default_factory=list)
    timestamp: int | None = None
    timestamp_type: int = 0


def make_record(
    topic: str = "test-topic",
    value: Any = b"",
    *,
    key: bytes | str | None = None,
    headers: Headers = None,
    partition: int = 0,
    offset: int = 0,
    timestamp: int | None = None,
    log_append_time: bool = False,
) -> FakeRecord:
    """Build a record like one kafka-python's consumer returns.

    Pass ``headers=inject_headers()`` inside a span to continue that span's trace.
    ``timestamp`` is in milliseconds since the epoch. ``key`` and ``value`` are taken as they are
    (a consumer's deserializers may return anything); for a record no client would return, build
    a :class:`FakeRecord` directly.

    Args:
        topic: the record's topic.
        value: its value, as the consumer's deserializer would return it.
        key: its key, likewise.
        headers: ``(name, bytes)`` pairs or a mapping, e.g. ``inject_headers()``.
        partition: its partition.
        offset: its offset.
        timestamp: milliseconds since the epoch, or None for a record without one.
        log_append_time: the timestamp is the broker's (``LogAppendTime``), not the producer's.

    Returns:
        The record, which every kafkascope entry point reads as kafka-python's.

    Raises:
        TypeError: ``topic`` is not a ``str``, ``partition``/``offset`` not an ``int``,
            ``timestamp`` not an ``int`` or None, or ``headers`` not a mapping or ``(name,
            value)`` pairs.
    """
    if not isinstance(topic, str):
        raise TypeError(f"make_record: topic must be a str, not {topic!r}")
    _check_int("partition", partition)
    _check_int("offset", offset)
    if timestamp is not None:
        _check_int("timestamp", timestamp, "an int (milliseconds since the epoch) or None")
    return FakeRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=_header_pairs(headers),
        timestamp=timestamp,
        timestamp_type=1 if log_append_time else 0,
    )


def _check_int(option: str, value: object, kind: str = "an int") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"make_record: {option} must be {kind}, not {value!r}")


def _header_pairs(headers: object) -> Any:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    pairs = (
        list(headers)
        if isinstance(headers, Iterable) and not isinstance(headers, str | bytes | bytearray)
        else None
    )
    if pairs is None or not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
        raise TypeError(
            "make_record: headers must be a mapping or a list of (name, value) pairs, "
            f"not {headers!r}"
        )
    return pairs


def pipeline_stamp(sent_ms: float, origin: str) -> tuple[str, bytes]:
    """The header a chain's first traced send adds: the chain started at ``sent_ms``
    (milliseconds since the epoch) by a send to the topic ``origin``. Add it to a record's
    ``headers`` to test a handler's ``kafkascope.pipeline.latency``.

    Args:
        sent_ms: when the chain started, in milliseconds since the epoch.
        origin: the topic of the chain's first send.

    Returns:
        The ``(name, value)`` header."""
    return PIPELINE, b"%d;%s" % (int(sent_ms), origin.encode("ascii"))
