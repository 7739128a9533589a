"""End-to-end latency across a pipeline: a stamp carried from the first traced send onwards.

The first traced send of a chain (a send outside any process span, whose headers carry no valid
stamp) adds the header :data:`~kafkascope._core.headers.PIPELINE` with
``<epoch milliseconds>;<origin topic>``. A process span keeps the stamp of its record (found by
:func:`begin`) in the current message, so every traced send inside the handler carries it forward
(:func:`stamp_headers`); each process span records ``kafkascope.pipeline.latency``, from the
stamp to the handler's start, as a histogram and a span attribute.

A stamp is untrusted input: one that is not ASCII, too long, not ``digits;topic-name``, or more
than :data:`MAX_FUTURE_MS` ahead or :data:`MAX_AGE_MS` behind this host's clock is ignored.
Origin topics become a metric attribute, so at most :data:`MAX_ORIGINS` distinct ones are kept
per process; later ones are reported as ``_other``. The header is a plain ASCII value that no
propagator reads: services without kafkascope pass it on or drop it, harmlessly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Final

from opentelemetry import metrics
from opentelemetry.trace import Span
from opentelemetry.util.types import Attributes

from kafkascope._adapters.records import RecordView
from kafkascope._core import errors as _errors
from kafkascope._core import semconv as sc
from kafkascope._core.headers import PIPELINE, PIPELINE_BYTES
from kafkascope._core.message import current_message
from kafkascope._core.telemetry import ProviderCache, messaging_attributes, meter_for
from kafkascope._propagation.carrier import pairs_of
from kafkascope._propagation.w3c import NOT_SCANNED

HEADER: Final = PIPELINE
MAX_STAMP_BYTES: Final = 16 + 1 + 249
"""Longest valid stamp: 16 digits, ``;``, a topic name at Kafka's length limit."""
MAX_FUTURE_MS: Final = 5 * 60 * 1000
"""A stamp further ahead of this host's clock than this is not believed (clock skew allowed)."""
MAX_AGE_MS: Final = 30 * 24 * 3600 * 1000
"""A stamp older than this (30 days) is not believed."""
MAX_ORIGINS: Final = 64
"""Distinct origin topics used as a metric attribute; others read ``_other``."""
OTHER_ORIGIN: Final = "_other"
LATENCY_BUCKETS: Final = (
    *sc.DURATION_BUCKETS, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip

_STAMP: Final = re.compile(rb"([0-9]{1,16});([A-Za-z0-9._-]{1,249})")
_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")

Stamp = tuple[int, str, bytes]
"""``(epoch ms, origin topic, the header value as sent)``."""

_origins: set[str] = set()


def parse(value: object, now_ms: float) -> Stamp | None:
    """A stamp header's value, or None when it is missing, malformed or not believable."""
    if type(value) is not bytes:
        if isinstance(value, str):
            try:
                value = str.__str__(value).encode("ascii")
            except UnicodeEncodeError:
                return None
        elif isinstance(value, bytearray | memoryview):
            try:
                value = memoryview(value).tobytes()
            except ValueError:
                return None
        else:
            return None
    if len(value) > MAX_STAMP_BYTES:
        return None
    match = _STAMP.fullmatch(value)
    if match is None:
        return None
    ms = int(match.group(1))
    if not now_ms - MAX_AGE_MS <= ms <= now_ms + MAX_FUTURE_MS:
        return None
    return ms, match.group(2).decode("ascii"), value


def find(headers: object, now_ms: float) -> Stamp | None:
    """The stamp in ``headers`` (the last header of that name counts, as for propagation)."""
    found: object = None
    try:
        for pair in pairs_of(headers):
            if type(pair) is tuple and len(pair) == 2:
                key = pair[0]
                if key in (HEADER, PIPELINE_BYTES):
                    found = pair[1]
    except Exception:
        return None  # a hostile carrier: no stamp
    return parse(found, now_ms) if found is not None else None


def forget_origins() -> None:
    """Start counting distinct origin topics afresh (for tests: each test's topics are new)."""
    _origins.clear()


def _origin(topic: str) -> str:
    if topic in _origins:
        return topic
    if len(_origins) < MAX_ORIGINS:
        _origins.add(topic)
        return topic
    return OTHER_ORIGIN


class _Instruments:
    def __init__(self, meter_provider: metrics.MeterProvider) -> None:
        self.noop = isinstance(meter_provider, metrics.NoOpMeterProvider)
        self.latency = meter_for(meter_provider).create_histogram(
            sc.PIPELINE_LATENCY,
            unit="s",
            description="Time from the first traced send of a message's chain to the start of "
            "its processing.",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self._attributes: dict[tuple[str | None, str | None, str], Attributes] = {}

    def record(self, seconds: float, topic: str | None, group: str | None, origin: str) -> None:
        key = (topic, group, origin)
        attrs = self._attributes.get(key)
        if attrs is None:
            built = messaging_attributes(sc.OPERATION_PROCESS, topic=topic, group=group)
            built[sc.PIPELINE_ORIGIN] = origin
            attrs = built
            if len(self._attributes) < 4096:
                self._attributes[key] = attrs
        self.latency.record(seconds, attrs)


_instruments: Final = ProviderCache(_Instruments)


def begin(
    records: Sequence[RecordView],
    span: Span,
    group: str | None,
    start_ms: float,
    meter_provider: metrics.MeterProvider | None,
    first: object = NOT_SCANNED,
    *,
    on_span: bool = False,
) -> bytes | None:
    """At a process span's start: record each stamped record's latency, set the largest on the
    span (only with ``on_span``: the histogram carries it either way), and return the oldest
    stamp (None: no record has one), which the handler's sends carry on. ``first`` is the first
    record's stamp header value when a scan of its headers found it already (None: it has
    none). Never raises (an internal failure is reported and the chain not forwarded)."""
    try:
        return _begin(records, span if on_span else None, group, start_ms, meter_provider, first)
    except Exception as exc:
        _errors.report("pipeline latency", exc)
        return None


def _begin(
    records: Sequence[RecordView],
    span: Span | None,
    group: str | None,
    start_ms: float,
    meter_provider: metrics.MeterProvider | None,
    first: object,
) -> bytes | None:
    oldest: Stamp | None = None
    largest: float | None = None
    instruments: _Instruments | None = None
    for record in records:
        if first is NOT_SCANNED:
            stamp = find(record.headers, start_ms)
        else:
            stamp = parse(first, start_ms) if first is not None else None
            first = NOT_SCANNED
        if stamp is None:
            continue
        seconds = max(0.0, start_ms - stamp[0]) / 1000.0
        if instruments is None:
            instruments = _instruments.get(meter_provider)
        if not instruments.noop:
            instruments.record(seconds, record.topic, group, _origin(stamp[1]))
        if largest is None or seconds > largest:
            largest = seconds
        if oldest is None or stamp[0] < oldest[0]:
            oldest = stamp
    if oldest is None:
        return None
    if largest is not None and span is not None and span.is_recording():
        span.set_attribute(sc.PIPELINE_LATENCY, largest)
    return oldest[2]


def stamp_headers(headers: list[tuple[str, bytes | None]], topic: str) -> None:
    """Add the chain's stamp to headers being sent (in place): the current one inside a process
    span, else a valid one the headers carry already, else a new one starting at ``topic``.
    Never raises."""
    try:
        _stamp(headers, topic)
    except Exception as exc:
        _errors.report("pipeline stamp", exc)


_origin_suffix: dict[str, bytes | None] = {}
"""``;topic`` as bytes per topic sent to (None: not a topic name), so a send formats one int."""


def _suffix(topic: str) -> bytes | None:
    found = _origin_suffix.get(topic, b"")
    if found == b"":
        found = b";" + topic.encode("ascii") if _TOPIC.fullmatch(topic) else None
        if len(_origin_suffix) < 4096:
            _origin_suffix[topic] = found
    return found


def _stamp(headers: list[tuple[str, bytes | None]], topic: str) -> None:
    processing = current_message.get()
    stamp = processing.stamp if processing is not None else None
    ours = False
    for pair in headers:
        if pair[0] == HEADER:
            ours = True
            break
    if stamp is None:
        now_ms = time.time() * 1000.0
        if ours and find(headers, now_ms) is not None:
            return
        suffix = _suffix(topic)
        if suffix is None:
            return
        stamp = b"%d" % int(now_ms) + suffix
    if ours:
        headers[:] = [pair for pair in headers if pair[0] != HEADER]
    headers.append((HEADER, stamp))
