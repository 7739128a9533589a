"""Property tests: a record of any client, with any field broken, reads into a view."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, example, given

from kafkascope._adapters.records import view
from tests.unit._strategies import FAST, FOUND_RECORDS, records

pytestmark = pytest.mark.usefixtures("quiet_sdk_parsers")


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
