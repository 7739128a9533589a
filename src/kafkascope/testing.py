"""Test kit for kafkascope users: the ``capotel`` pytest fixture, fake records, assertions.

Installing kafkascope registers this module as a pytest plugin (``pytest11`` entry point), so
``capotel`` is available in every test. It captures the spans, metrics and logs emitted through
the global OpenTelemetry providers during one test, in memory::

    def test_handler(capotel):
        handle(make_record(topic="orders", headers=inject_headers()))
        span = capotel.span("process orders")
        assert_messaging_attributes(span, operation="process")
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics.export import (
    Gauge,
    HistogramDataPoint,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan

from kafkascope._core import semconv as sc
from kafkascope._setup.capture import Backend, install_backend
from kafkascope._setup.logs import instrument_logging
from kafkascope._testing.assertions import (
    assert_linked,
    assert_messaging_attributes,
    assert_parent,
    assert_same_trace,
)
from kafkascope._testing.plugin import pytest_configure as pytest_configure
from kafkascope._testing.plugin import (
    pytest_load_initial_conftests as pytest_load_initial_conftests,
)
from kafkascope._testing.records import FakeRecord, make_record, pipeline_stamp

__all__ = [
    "Capotel",
    "FakeRecord",
    "MetricPoint",
    "assert_linked",
    "assert_messaging_attributes",
    "assert_parent",
    "assert_same_trace",
    "capotel",
    "make_record",
    "pipeline_stamp",
]


# ---------------------------------------------------------------- metric read model
@dataclass(frozen=True)
class MetricPoint:
    """One metric stream (name + attributes) summed over the test.

    ``value`` is the sum for counters and the last value for gauges; histograms have
    ``count``, ``sum``, ``bucket_counts`` and ``bounds``.

    Attributes:
        name: the instrument's name.
        unit: its unit.
        attributes: the stream's attributes.
        value: the sum (counters) or last value (gauges); None for histograms.
        count: how many measurements a histogram took; 0 for counters and gauges.
        sum: their sum; 0 for counters and gauges.
        bucket_counts: measurements per bucket; empty for counters and gauges.
        bounds: the buckets' upper bounds; empty for counters and gauges.
    """

    name: str
    unit: str
    attributes: Mapping[str, Any]
    value: float | None = None
    count: int = 0
    sum: float = 0.0
    bucket_counts: tuple[int, ...] = ()
    bounds: tuple[float, ...] = ()


def _merge(old: MetricPoint | None, new: MetricPoint, gauge: bool) -> MetricPoint:
    if old is None or gauge:
        return new
    if new.bounds:
        counts = tuple(a + b for a, b in zip(old.bucket_counts, new.bucket_counts, strict=True))
        return MetricPoint(
            new.name,
            new.unit,
            new.attributes,
            None,
            old.count + new.count,
            old.sum + new.sum,
            counts,
            new.bounds,
        )
    return MetricPoint(
        new.name, new.unit, new.attributes, (old.value or 0) + (new.value or 0), 0, 0.0, (), ()
    )


class Capotel:
    """Spans, metrics and logs captured during one test. Use through the ``capotel`` fixture."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._spans: list[ReadableSpan] = []
        self._points: dict[tuple[str, frozenset[tuple[str, Any]]], MetricPoint] = {}
        self._exemplars: dict[str, list[tuple[str, float]]] = {}
        self._start()

    def _start(self) -> None:
        self._backend.span_capture.spans = self._spans
        self._backend.logs.clear()
        if self._backend.reader is not None:
            self._backend.reader.get_metrics_data()  # drop what earlier tests left

    def _stop(self) -> None:
        self._backend.span_capture.spans = None

    # -- spans
    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self._spans)

    def spans_named(self, name: str) -> list[ReadableSpan]:
        """Finished spans called ``name``."""
        return [s for s in self._spans if s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; fails listing the spans found otherwise."""
        found = self.spans_named(name)
        if len(found) != 1:
            names = [s.name for s in self._spans]
            raise AssertionError(f"expected one span named {name!r}, found {len(found)}: {names}")
        return found[0]

    # -- logs
    @property
    def logs(self) -> list[ReadableLogRecord]:
        """Log records emitted through OpenTelemetry logs (stdlib logging included)."""
        return list(self._backend.logs.get_finished_logs())

    def log(self, text: str) -> ReadableLogRecord:
        """The one log record whose body contains ``text``."""
        found = [r for r in self.logs if text in str(r.log_record.body)]
        if len(found) != 1:
            bodies = [str(r.log_record.body) for r in self.logs]
            raise AssertionError(f"expected one log containing {text!r}, found: {bodies}")
        return found[0]

    # -- metrics
    def metrics(self) -> list[MetricPoint]:
        """Every metric stream recorded during the test, summed."""
        reader = self._backend.reader
        if reader is None:
            raise RuntimeError(
                "capotel cannot read metrics: a MeterProvider was made global before capotel "
                "started; make the test's process configure OpenTelemetry after the fixture"
            )
        data = reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    gauge = isinstance(metric.data, Gauge)
                    for point in metric.data.data_points:
                        for exemplar in getattr(point, "exemplars", None) or ():
                            if exemplar.trace_id:
                                self._exemplars.setdefault(metric.name, []).append(
                                    (format(exemplar.trace_id, "032x"), float(exemplar.value))
                                )
                        new = _point(metric.name, metric.unit or "", point)
                        key = (metric.name, frozenset(new.attributes.items()))
                        old = self._points.get(key)
                        if old is None and not gauge and not (new.value or new.count):
                            continue  # a stream from an earlier test, unchanged in this one
                        self._points[key] = _merge(old, new, gauge)
        return list(self._points.values())

    def metric(self, name: str, attributes: Mapping[str, Any] | None = None) -> MetricPoint:
        """The stream(s) of ``name`` whose attributes include ``attributes``, summed.

        Fails listing the metric names recorded when none is called ``name``, and listing the
        streams of ``name`` when none has ``attributes``.
        """
        wanted = dict(attributes or {})
        recorded = self.metrics()
        points = [p for p in recorded if p.name == name]
        if not points:
            names = sorted({p.name for p in recorded})
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AssertionError(
                f"no metric {name!r} was recorded in this test{hint}; metrics recorded: {names}"
            )
        matching = [p for p in points if all(p.attributes.get(k) == v for k, v in wanted.items())]
        if not matching:
            found = [dict(p.attributes) for p in points]
            raise AssertionError(f"no {name!r} stream with {wanted}; streams: {found}")
        total: MetricPoint | None = None
        for point in matching:
            total = _merge(total, point, gauge=False)
        assert total is not None
        common = {
            k: v
            for k, v in total.attributes.items()
            if all(p.attributes.get(k) == v for p in matching)
        }
        return replace(total, attributes=common)

    def pipeline_latency(self, **attributes: Any) -> MetricPoint:
        """The ``kafkascope.pipeline.latency`` histogram, summed over the streams whose
        attributes include ``attributes`` (say ``{"kafkascope.pipeline.origin": "orders"}``
        passed as ``**{...}``)."""
        return self.metric(sc.PIPELINE_LATENCY, attributes)

    def time_lag(self, topic: str, partition: int) -> float:
        """The last ``kafkascope.consumer.time_lag`` of one partition, in seconds (collects
        metrics now). Fails when the partition has no value."""
        point = self.metric(
            sc.CONSUMER_TIME_LAG,
            {
                sc.MESSAGING_DESTINATION_NAME: topic,
                sc.MESSAGING_DESTINATION_PARTITION_ID: str(partition),
            },
        )
        assert point.value is not None
        return point.value

    def exemplars(self, name: str) -> list[tuple[str, float]]:
        """``(trace id as 32 hex digits, value)`` of every exemplar of the metric ``name``
        exported so far (collects metrics now)."""
        self.metrics()
        return list(self._exemplars.get(name, ()))

    def clear(self) -> None:
        """Forget everything captured so far."""
        self._spans.clear()
        self._points.clear()
        self._exemplars.clear()
        self._start()


def _point(name: str, unit: str, point: Any) -> MetricPoint:
    attrs = dict(point.attributes or {})
    if isinstance(point, HistogramDataPoint):
        return MetricPoint(
            name,
            unit,
            attrs,
            None,
            point.count,
            point.sum,
            tuple(point.bucket_counts),
            tuple(point.explicit_bounds),
        )
    if isinstance(point, NumberDataPoint):
        return MetricPoint(name, unit, attrs, float(point.value))
    raise TypeError(f"unsupported data point {type(point).__name__} for {name}")


@pytest.fixture
def capotel() -> Iterator[Capotel]:
    """Capture the spans, metrics and logs the code under test emits, in memory.

    A pytest fixture, registered by installing kafkascope: ask for ``capotel`` in a test.

    Yields:
        The capture of this test: ``spans``, ``span(name)``, ``metric(name)``, ``logs``, ...

    Examples:
        ```python
        def test_charge(capotel):
            charge(make_record("orders", b'{"id": 1}', key=b"A-1"))
            assert capotel.span("process orders").attributes["messaging.kafka.offset"] == 0
        ```
    """
    backend = install_backend()
    root = logging.getLogger()
    had_handlers = list(root.handlers)
    handler = instrument_logging(backend.logger_provider)
    level = root.level
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    cap = Capotel(backend)
    try:
        yield cap
    finally:
        cap._stop()
        root.setLevel(level)
        if handler not in had_handlers:
            root.removeHandler(handler)
