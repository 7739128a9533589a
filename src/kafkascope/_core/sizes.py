"""Message body sizes (opt-in): the size of a value being sent, and the body-size histogram.

Sizes are lengths the clients already know (``len`` of bytes, a record's serialized size): a
body is never copied or read. A tombstone (null value) is 0 bytes.
"""

from __future__ import annotations

import threading
from typing import Final

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.util.types import Attributes

from kafkascope._core import semconv as sc
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for

BUCKETS: Final = (
    0.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 524288.0, 1048576.0,
    2097152.0, 5242880.0, 10485760.0,
)  # fmt: skip
"""Bytes: from empty bodies to Kafka's default 1 MiB limit and beyond (raised limits)."""
_MAX_CACHED: Final = 4096


def value_size(value: object) -> int | None:
    """Bytes of a value handed to a producer: ``len`` of bytes, UTF-8 length of a str (as the
    clients encode it), 0 for None (a tombstone); None when the client's serializer decides."""
    if value is None:
        return 0
    if type(value) is bytes or isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, str):
        # isascii() is O(1) in CPython: only non-ASCII text is encoded to be measured.
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    return None


class BodySizes:
    """The body-size histogram of one meter provider, with its attribute sets."""

    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self.noop = isinstance(meter_provider, metrics.NoOpMeterProvider)
        self._histogram: Histogram = meter_for(meter_provider).create_histogram(
            sc.BODY_SIZE,
            unit="By",
            description="Bytes of the bodies of sent and processed messages.",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self._attributes: dict[tuple[str, str | None, str | None], Attributes] = {}
        self._lock = threading.Lock()

    def record(
        self,
        size: int,
        operation: str,
        topic: str | None,
        group: str | None = None,
        context: Context | None = None,
    ) -> None:
        """One message of ``size`` bytes sent or processed (``operation``) on ``topic``."""
        key = (operation, topic, group)
        attrs = self._attributes.get(key)
        if attrs is None:
            attrs = messaging_attributes(operation, topic=topic, group=group)
            with self._lock:
                if len(self._attributes) < _MAX_CACHED:
                    self._attributes[key] = attrs
        self._histogram.record(size, attrs, context)


_cache: Final = ProviderCache(BodySizes)


def for_provider(meter_provider: metrics.MeterProvider | None) -> BodySizes:
    """The body-size histogram of ``meter_provider`` (default: the global one)."""
    return _cache.get(meter_provider)
