"""Message body sizes (opt-in): the size of a value being sent, and the body-size histogram.

Sizes are lengths the clients already know (``len`` of bytes, a record's serialized size): a
body is never copied or read. A tombstone (null value) is 0 bytes. On ``configure()``'s push
pipelines the histogram is aggregated in process (``_core/histograms.py``), like the processing
time; everywhere else it is the SDK's instrument.
"""

from __future__ import annotations

import threading
from typing import Final

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import Histogram
from opentelemetry.util.types import Attributes

from kafkascope._core import histograms as _histograms
from kafkascope._core import semconv as sc
from kafkascope._core.histograms import HistogramSpec
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for

BUCKETS: Final = (
    0.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 524288.0, 1048576.0,
    2097152.0, 5242880.0, 10485760.0,
)  # fmt: skip
"""Bytes: from empty bodies to Kafka's default 1 MiB limit and beyond (raised limits)."""
_MAX_CACHED: Final = 4096

SPEC: Final = HistogramSpec(
    sc.BODY_SIZE, "By", "Bytes of the bodies of sent and processed messages.", BUCKETS
)
"""The body-size histogram (one of the pre-aggregated ones on ``configure()``'s pipelines)."""


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
        self._pre = _histograms.registered(meter_provider)
        self._histogram: Histogram | None = None
        self._index = 0
        if self._pre is not None:
            self._index = self._pre.specs.index(SPEC)
        else:
            self._histogram = meter_for(meter_provider).create_histogram(
                SPEC.name,
                unit=SPEC.unit,
                description=SPEC.description,
                explicit_bucket_boundaries_advisory=SPEC.boundaries,
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
        if self._histogram is not None:
            self._histogram.record(size, attrs, context)
        elif self._pre is not None:
            self._pre.record(self._index, size, key, attrs, context)


_cache: Final = ProviderCache(BodySizes)


def for_provider(meter_provider: metrics.MeterProvider | None) -> BodySizes:
    """The body-size histogram of ``meter_provider`` (default: the global one)."""
    return _cache.get(meter_provider)
